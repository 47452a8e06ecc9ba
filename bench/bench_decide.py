"""CPU of one per-row step in two code trees, interleaved: what a change to that step saved.

    python bench/bench_decide.py --before TREE [--after TREE] --extracted DIR [--config FILE]
                                 [--step decide|pii_counts] [--repeats 5]

Refine's marginal CPU is a small difference of two noisy whole-process figures (bench_refine.py),
too noisy to show a change of a few tenths of a CPU-second.  A change confined to ``DecideFn``
(decisions, C4 line rules, PII redaction) can be measured directly: for each repeat, in the
before tree and then in the after tree, a fresh process reads the extracted Parquet with
refine's reader (``read_parquet_rows``, so stored maps come back as dicts as in the stage),
sets up ``DecideFn`` with the config and times one pass of ``DecideFn.process`` over every row
(signals marked reused, as in production).  ``--step pii_counts`` times the PII signal instead
(``filters.families.pii.pii_counts`` of every row's text, with its url and language: the extract
stage's PII cost).  Prints each run, the medians, the saving per 1,000
rows, and whether both trees produced the same outputs (sha256 of the pickled outputs).
``TREE`` is a checkout with its ``.venv`` (``git worktree add ../before REV`` + a symlink).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import hashlib, json, pickle, sys, time
from pathlib import Path
tree, extracted, config, step = sys.argv[1], sys.argv[2], sys.argv[3] or None, sys.argv[4]
sys.path.insert(0, tree)
from filters.families.pii import pii_counts
from pipelines.config import load_config
from pipelines.refine import DecideFn
from pipelines.refine_io import read_parquet_rows
cfg = load_config(config)
fn = DecideFn(cfg)
fn.setup()
if step == "pii_counts":
    def run(row):
        return [pii_counts(row["text"] or "", row.get("url"), row.get("lang"), cfg)]
else:
    def run(row):
        return list(fn.process(row))
rows = [v for path in sorted(Path(extracted).glob("*.parquet")) for k, v in read_parquet_rows(str(path)) if k == "row"]
for row in rows:
    row["_signals"] = "reused"
start = time.process_time()
out = [run(row) for row in rows]
cpu = time.process_time() - start
digest = hashlib.sha256(pickle.dumps([[(getattr(i, "tag", None), getattr(i, "value", i)) for i in o] for o in out])).hexdigest()
print(json.dumps({"rows": len(rows), "cpu_s": cpu, "sha256": digest}))
"""


def run(tree: Path, extracted: Path, config: str, step: str) -> dict:
    python = tree / ".venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", CHILD, str(tree), str(extracted), config, step],
                          cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--extracted", type=Path, required=True, help="an extract output directory")
    parser.add_argument("--config", default="", help="config file (the one the extract ran with)")
    parser.add_argument("--step", choices=("decide", "pii_counts"), default="decide")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    if not any(args.extracted.glob("*.parquet")):
        raise SystemExit(f"{args.extracted}: no Parquet files")
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for i in range(args.repeats):
        for name, tree in (("before", args.before), ("after", args.after)):
            r = run(tree.resolve(), args.extracted.resolve(), args.config, args.step)
            runs[name].append(r)
            print(f"repeat {i + 1} {name:6s} {r['cpu_s']:.3f} CPU-s for {r['rows']} rows", flush=True)
    before = statistics.median(r["cpu_s"] for r in runs["before"])
    after = statistics.median(r["cpu_s"] for r in runs["after"])
    rows = runs["after"][0]["rows"]
    same = {r["sha256"] for r in runs["before"]} == {r["sha256"] for r in runs["after"]}
    print(f"medians: before {before:.3f}, after {after:.3f} CPU-s -> saved {before - after:.3f} CPU-s "
          f"({(before - after) / rows * 1000:.3f} CPU-s per 1,000 rows); outputs "
          f"{'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
