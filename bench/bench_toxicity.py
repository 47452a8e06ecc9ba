"""Toxicity classifier cost: scikit-learn ``profanity_check`` against its arrays (filters/toxicity.py).

Prints, in one run: the CPU seconds to load each path in a fresh process (the old path imports
scikit-learn and unpickles; the new path reads the .npz cache, or converts when it is missing), and
the CPU seconds to score the realweb pages' extracted texts (the pages the extract stage keeps;
English pages as in the default config, and every page), median of interleaved repeats.  The scores
of both paths are compared and must be the same floats.

    .venv/bin/python bench/bench_toxicity.py [--pages-cache FILE.jsonl] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_WARC = ROOT.parent / "shared" / "data" / "realweb" / "realweb.warc.gz"

_LOAD_OLD = """
import sys, time
import numpy  # imported by every worker anyway (pyarrow, the other signals)
t = time.process_time()
from profanity_check import predict_prob
predict_prob(["warm up"])
print(time.process_time() - t, "sklearn" in sys.modules)
"""
_LOAD_NEW = """
import sys, time
import numpy  # imported by every worker anyway (pyarrow, the other signals)
from filters.toxicity import load_profanity_model  # the word lists' module, imported anyway
t = time.process_time()
load_profanity_model(sys.argv[1]).predict(["warm up"])
print(time.process_time() - t, "sklearn" in sys.modules)
"""


def _load_cpu(code: str, *args: str) -> tuple[float, bool]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=str(ROOT), check=True)
    cpu, sk = done.stdout.split()
    return float(cpu), sk == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--pages-cache", type=Path, default=None,
                        help="jsonl of extracted pages (written when missing; see bench/bench_signals.py)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from bench.bench_signals import load_pages
    from filters import toxicity
    from filters.language import LanguageIdentifier
    from pipelines.config import load_config

    pages = load_pages(args.warc, args.pages_cache)
    lid = LanguageIdentifier(load_config()["language"]["model_path"])
    texts = [p["text"] for p in pages]
    en = [t for t in texts if lid.identify(t)[0] == "en"]
    n_lines = sum(len(toxicity._scored_lines(t)) for t in texts)

    with tempfile.TemporaryDirectory() as cache:
        cold = [_load_cpu(_LOAD_NEW, str(Path(cache) / f"cold{i}")) for i in range(args.repeat)]
        _load_cpu(_LOAD_NEW, cache)
        loads = {"old": [], "new": []}
        for _ in range(args.repeat):   # interleaved
            loads["old"].append(_load_cpu(_LOAD_OLD))
            loads["new"].append(_load_cpu(_LOAD_NEW, cache))
        new = toxicity.ToxicityClassifier.__new__(toxicity.ToxicityClassifier)
        new.kind, new._predict = "profanity_check", toxicity.load_profanity_model(cache).predict

    from profanity_check import predict_prob

    old = toxicity.ToxicityClassifier.__new__(toxicity.ToxicityClassifier)
    old.kind, old._predict = "profanity_check", lambda lines: [float(p) for p in predict_prob(list(lines))]

    def run(clf, docs, many):
        t = time.process_time()
        out = clf.score_many(docs) if many else [clf.score(d) for d in docs]
        return time.process_time() - t, out

    print(f"{len(pages)} pages ({len(en)} English), {len(texts)} texts with {n_lines} scored lines; "
          f"repeat {args.repeat}, median CPU seconds")
    print(f"load, fresh process:   sklearn+joblib {statistics.median(c for c, _ in loads['old']):.3f}   "
          f"arrays from cache {statistics.median(c for c, _ in loads['new']):.3f} "
          f"(sklearn imported: {any(s for _, s in loads['new'])})   "
          f"convert (no cache) {statistics.median(c for c, _ in cold):.3f}")
    for label, docs, many in (("score() per English page", en, False), ("score() per page, all pages", texts, False),
                              ("score_many(all pages)", texts, True)):
        times = {"old": [], "new": []}
        outs = {}
        for _ in range(args.repeat):
            for name, clf in (("old", old), ("new", new)):
                cpu, outs[name] = run(clf, docs, many)
                times[name].append(cpu)
        assert outs["old"] == outs["new"], f"{label}: scores differ"
        o, n = statistics.median(times["old"]), statistics.median(times["new"])
        print(f"{label:30s} sklearn {o:.3f} s ({1000 * o / len(docs):.2f} ms/page)   "
              f"arrays {n:.3f} s ({1000 * n / len(docs):.2f} ms/page)   x{o / n:.1f}   identical: True")


if __name__ == "__main__":
    main()
