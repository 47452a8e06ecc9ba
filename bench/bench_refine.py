"""Refine throughput and the per-language keep table on the real-web sample.

    python bench/bench_refine.py [--extracted DIR] [--workers N] [--out DIR] [--extractor NAME ...] [--repeats N] [--reference]

Without --extracted, the realweb WARC (../shared/data/realweb/realweb.warc.gz) is first run
through ``python -m pipelines extract``.  Prints each round's CPU-s (all worker processes
counted) of the whole refine and of a one-document refine (the fixed start-up, which a Dataflow
worker pays once, not per WARC), the pages per CPU-second at the margin, and per
language: documents, what our defaults keep, the main removal reasons, and how many pages
datatrove's English-only stop-word rule (>= 2 of the, be, to, of, and, that, have, with) would
drop.  The margin of one run scatters widely (it is ~4 of ~11 CPU-s on realweb): ``--repeats N``
takes the median of N rounds, and ``--extractor trafilatura --extractor resiliparse`` extracts
realweb with each and interleaves their refines, so both figures see the same machine load.
``--reference`` adds ``bench.reference``'s loop to every round and prints the margins in the cost
model's reference units (configs/cost.yaml ``refine_pages_per_cpu_s`` is in those units).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from filters import text_units  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

ENGLISH_STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(cmd: list[str]) -> tuple[float, float]:
    cpu0, t0 = cpu_seconds(), time.monotonic()
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0, cpu_seconds() - cpu0


def margin_rounds(extracts: dict[str, Path], cfg: Path, work: Path, beam: list[str], repeats: int,
                  reference_warc: Path | None = None) -> dict:
    """Refine each extract, then its first row alone (the fixed start-up), ``repeats`` rounds with
    the extracts interleaved (a change in machine load hits each alike); per extract: every
    round's (documents, whole-run CPU-s, one-row CPU-s) and the median pages/CPU-s at the margin.
    With ``reference_warc``, each round also runs ``bench.reference``'s loop over it, and the
    medians are printed in the cost model's reference units too (``reference`` in the result)."""
    import pyarrow.parquet as pq

    from bench import reference

    rounds: dict[str, list[tuple[int, float, float]]] = {name: [] for name in extracts}
    loops: list[dict] = []
    for name, extracted in extracts.items():
        one = work / f"one-doc-{name}"
        one.mkdir(exist_ok=True)
        first = sorted(extracted.glob("*.parquet"))[0]
        pq.write_table(pq.read_table(first).slice(0, 1), one / "one.parquet")
    for i in range(repeats):
        if reference_warc is not None:
            loops.append(reference.reference_run(reference_warc))
            print(f"[{i + 1}] reference loop: {loops[-1]['pages_per_cpu_s']:.1f} pages/CPU-s", flush=True)
        for name, extracted in extracts.items():
            out = work / f"refined-{name}"
            wall, cpu = run([sys.executable, "-m", "pipelines", "refine", "--input", str(extracted), "--output",
                             str(out), "--config", str(cfg), "--overwrite", *beam])
            _, cpu1 = run([sys.executable, "-m", "pipelines", "refine", "--input", str(work / f"one-doc-{name}"),
                           "--output", str(work / f"refined-one-{name}"), "--config", str(cfg), "--overwrite", *beam])
            n = json.loads((out / "summary.json").read_text())["documents_in"]
            rounds[name].append((n, cpu, cpu1))
            rate = f"{(n - 1) / (cpu - cpu1):.1f}" if cpu > cpu1 else "-"
            print(f"[{i + 1}] {name}: {n} pages, {cpu:.1f} CPU-s ({wall:.1f}s wall), 1 page {cpu1:.1f} CPU-s, "
                  f"at the margin {rate} pages/CPU-s", flush=True)
    medians = {}
    for name, runs in rounds.items():
        rates = sorted((n - 1) / (cpu - cpu1) for n, cpu, cpu1 in runs if cpu > cpu1)
        if rates:
            medians[name] = statistics.median(rates)
            print(f"{name}: at the margin {medians[name]:.1f} pages/CPU-s (median of {len(rates)}, "
                  f"range {rates[0]:.0f}-{rates[-1]:.0f}); whole run median "
                  f"{statistics.median(c for _, c, _ in runs):.1f} CPU-s")
    result = {"rounds": rounds, "median_pages_per_cpu_s": medians}
    if loops:
        ref = reference.reference_pages_per_cpu_s()
        print(reference.describe(loops, ref))
        converted = {}
        for name, runs in rounds.items():
            rates = sorted(reference.per_round([(n - 1) / (cpu - cpu1) if cpu > cpu1 else None
                                                for n, cpu, cpu1 in runs], loops, ref))
            if rates:
                converted[name] = rates
                print(f"{name}: at the margin in reference units, per round: {', '.join(f'{r:.0f}' for r in rates)}; "
                      f"median {statistics.median(rates):.0f}, lower quartile {reference.lower_quartile(rates):.0f}")
        result["reference"] = {"loops": loops, "converted": converted}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extracted", help="directory of extracted Parquet (default: extract realweb first)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default=None, help="keep outputs here (default: a temp dir)")
    ap.add_argument("--extractor", choices=("trafilatura", "resiliparse"), action="append", default=None,
                    help="extract.extractor of the shared config (resiliparse: the documented fast configuration), "
                         "the one the --extracted output was made with; given twice (without --extracted), "
                         "realweb is extracted with each and their refines are interleaved")
    ap.add_argument("--reference", action="store_true",
                    help="also run bench.reference's loop each round and print the margins in the cost model's "
                         "reference units (needs the realweb WARC)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="rounds of (refine, one-row refine) per extract; the margin printed is their median")
    args = ap.parse_args()
    import pyarrow.parquet as pq

    extractors = args.extractor or [None]
    if args.extracted and len(extractors) > 1:
        ap.error("--extracted takes one extract: give --extractor once")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    work = Path(args.out or tempfile.mkdtemp(prefix="bench-refine-"))
    work.mkdir(parents=True, exist_ok=True)
    beam = [f"--direct_num_workers={args.workers}"] if args.workers else []
    warc = shared_data_dir() / "realweb" / "realweb.warc.gz"
    if args.reference and not warc.is_file():
        print(f"error: --reference needs {warc} (set CORPUS_SHARED_DATA)", file=sys.stderr)
        return 2
    if not args.extracted:
        if not warc.is_file():
            print(f"skip: {warc} not found (set CORPUS_SHARED_DATA)")
            return 0
    # One config for extract and refine: with the same signals_version refine reuses the stored
    # signals (a different one makes it recompute every signal, which is extract's cost, not refine's).
    # The extractor is not part of signals_version, so the first one's config refines every extract.
    badwords = shared_data_dir() / "badwords"
    base = f"toxicity:\n  wordlists: {json.dumps(str(badwords))}\n" if badwords.is_dir() else ""
    extracts: dict[str, Path] = {}
    for extractor in extractors:
        name = extractor or "default"
        cfg = work / f"bench-{name}.yaml"
        cfg.write_text(base + (f"extract:\n  extractor: {extractor}\n" if extractor else ""))
        extracts[name] = Path(args.extracted) if args.extracted else work / f"extracted-{name}"
        if not args.extracted:
            wall, cpu = run([sys.executable, "-m", "pipelines", "extract", "--input", str(warc),
                             "--output", str(extracts[name]), "--config", str(cfg), "--overwrite", *beam])
            print(f"extract ({name}): {wall:.1f}s wall, {cpu:.1f} CPU-s")
    cfg = work / f"bench-{extractors[0] or 'default'}.yaml"
    margin_rounds(extracts, cfg, work, beam, args.repeats, warc if args.reference else None)
    for name in extracts:
        summary = json.loads((work / f"refined-{name}" / "summary.json").read_text())
        recomputed = (summary.get("signals") or {}).get("computed", 0)
        if recomputed:
            print(f"note: refine recomputed the signals of {recomputed} documents of the {name} extract (their "
                  "signals_version is not this config's): its figures above include that")
    name = next(iter(extracts))
    out = work / f"refined-{name}"
    summary = json.loads((out / "summary.json").read_text())
    extracted = extracts[name]
    print(f"\nper language, the {name} extract:")

    # English-only stop-word rule on the same input text, per identified language.
    lang_of = {}
    for f in sorted(out.glob("*.parquet")) + sorted((out / "removed").glob("*.parquet")):
        for row in pq.read_table(f, columns=["doc_id", "lang"]).to_pylist():
            lang_of[row["doc_id"]] = row["lang"]
    en_only_drop = Counter()
    for f in sorted(extracted.glob("*.parquet")):
        for row in pq.read_table(f, columns=["doc_id", "text"]).to_pylist():
            hits = sum(1 for w in text_units.words(row["text"], None) if w.lower() in ENGLISH_STOP_WORDS)
            if hits < 2:
                en_only_drop[lang_of.get(row["doc_id"], "?")] += 1
    print()
    print(f"{'lang':<5}{'docs':>6}{'kept':>6}{'kept%':>7}  {'EN-only stop-word rule drops':>28}  "
          f"{'ours: stop_words fails':>22}  main removal reasons (ours)")
    total = Counter()
    for lang, per in sorted(summary["per_language"].items(), key=lambda kv: -kv[1]["documents"]):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(per["removed_by_rule"].items(),
                                                          key=lambda kv: -kv[1])[:4])
        ours_stop = per["would_fail"].get("gopher_quality.stop_words", 0)
        print(f"{lang:<5}{per['documents']:>6}{per['kept']:>6}{100 * per['kept_share']:>6.0f}%  "
              f"{en_only_drop[lang]:>28}  {ours_stop:>22}  {reasons}")
        total.update(docs=per["documents"], kept=per["kept"], en=en_only_drop[lang], ours=ours_stop)
    print(f"{'all':<5}{total['docs']:>6}{total['kept']:>6}{100 * total['kept'] / max(1, total['docs']):>6.0f}%  "
          f"{total['en']:>28}  {total['ours']:>22}")
    print()
    print("removed by filter:", json.dumps(summary["removed_by"], sort_keys=True))
    print("toxicity audit:", json.dumps({l: {"removed": a["removed"], "share": a["share_of_language"]}
                                         for l, a in summary["toxicity_audit"].items()}, sort_keys=True))
    print(f"C4 lines removed from kept pages: {summary['c4_lines_removed']}; PII redacted: "
          f"{json.dumps(summary['pii_redacted'], sort_keys=True)}")
    if "dedup" in summary:
        print(f"dedup after the filters: {summary['kept_before_dedup']} -> {summary['kept']} kept "
              f"({json.dumps(summary['dedup'], sort_keys=True)})")
    print(f"outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
