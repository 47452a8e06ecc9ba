"""Decontamination on the real-web sample: which pages share 13-grams with a benchmark, why, and
what it costs per document next to the filters.

    python bench/bench_decontamination.py --extracted DIR [--benchmark FILE] [--ngram 13]

DIR holds extracted Parquet (``python -m pipelines extract --input
../shared/data/realweb/realweb.warc.gz --output DIR``); the benchmark defaults to
../shared/data/text/wikitext-2-test.txt.  For each precision setting (raw: every n-gram indexed,
min_matches 1; the shipped defaults; defaults + min_matches 2) it prints the flagged pages with
their matched spans, then the index build time/size and the per-document cost of ``find`` next to
the per-document cost of the filter signals (``filters.signals.SignalComputer``) on the same pages.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from filters.decontamination import BenchmarkIndex, load_benchmark_texts  # noqa: E402
from filters.text_units import stop_words  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402


def read_docs(extracted: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for f in sorted(extracted.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return [r for r in rows if isinstance(r.get("text"), str)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extracted", required=True, help="directory of extracted Parquet")
    ap.add_argument("--benchmark", default=str(shared_data_dir() / "text" / "wikitext-2-test.txt"))
    ap.add_argument("--ngram", type=int, default=13)
    ap.add_argument("--signals-docs", type=int, default=200, help="pages timed through the filter signals")
    args = ap.parse_args()
    cfg = load_config()
    d = cfg["decontamination"]
    docs = read_docs(Path(args.extracted))
    words = sum(len(r["text"].split()) for r in docs)
    print(f"{len(docs)} pages, {words} whitespace words; benchmark {args.benchmark}")

    t0 = time.perf_counter()
    passages = load_benchmark_texts(args.benchmark)
    load_s = time.perf_counter() - t0
    settings = [("raw (no stop-word rule), min_matches 1", None, 1),
                (f"defaults (max_stopword_frac {d['max_stopword_frac']}), min_matches {d['min_matches']}",
                 d["max_stopword_frac"], int(d["min_matches"])),
                (f"defaults, min_matches 2", d["max_stopword_frac"], 2)]
    for label, frac, min_matches in settings:
        t0 = time.perf_counter()
        index = BenchmarkIndex.build((("wikitext", p) for p in passages), n=args.ngram, max_stopword_frac=frac,
                                     stop_words=stop_words(d["stopword_language"]) if frac is not None else frozenset())
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        flagged = [(r, m) for r in docs for m in index.find(r["text"], min_matches)]
        find_s = time.perf_counter() - t0
        print(f"\n== {label}: {len(flagged)} of {len(docs)} pages flagged")
        print(f"   index: {len(passages)} passages, {len(index)} n-grams, {index.nbytes / 2**20:.1f} MiB, "
              f"stop-word n-grams dropped {index.stopword_dropped}; read {load_s:.2f}s + build {build_s:.2f}s")
        print(f"   find: {find_s:.2f}s = {1000 * find_s / len(docs):.2f} ms/page, "
              f"{1e6 * find_s / max(words, 1):.2f} us/word")
        for r, m in flagged:
            print(f"   - {r['url']}  ({m.ngrams} n-grams, {len(m.spans)} region(s))")
            for a, b in m.spans[:3]:
                print(f"       [{a}:{b}] {r['text'][a:b][:240]!r}")

    from filters.signals import SignalComputer

    computer = SignalComputer(cfg)
    sample = docs[:args.signals_docs]
    computer(dict(sample[0]))   # load models outside the timing
    t0 = time.perf_counter()
    for r in sample:
        computer(dict(r))
    sig_s = time.perf_counter() - t0
    print(f"\nfilter signals (language, quality, toxicity, PII...): {1000 * sig_s / len(sample):.2f} ms/page "
          f"over the first {len(sample)} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
