"""Whole-process CPU of the extract stage in two code trees, interleaved: how much a change saved.

    python bench/bench_trees.py --before TREE [--after TREE] [--repeats 3] [--warc PATH]

``TREE`` is a checkout of this project with its ``.venv`` (e.g. ``git worktree add ../before REV``
and a symlink to this tree's ``.venv``); ``--after`` defaults to this tree.  For each repeat and
each configuration (default; fast = ``extract.extractor: resiliparse``) it runs ``python -m
pipelines extract --direct_num_workers=1`` on the WARC in the before tree, then in the after tree,
and charges the CPU time of the whole process tree (``RUSAGE_CHILDREN``).  Both trees are
byte-compiled first (``bench_peers.compile_project``).  Prints every run, the medians, the paired
speed-ups, and whether the two trees wrote byte-identical files (sha256 of every output file but
the timings in ``summary.json``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_extract import DEFAULT_WARC  # noqa: E402
from bench.bench_peers import compile_project  # noqa: E402

CONFIGS = {"default": "{}\n", "fast": "extract:\n  extractor: resiliparse\n"}


def output_digest(out: Path) -> str:
    """sha256 over every output file's relative name and bytes (``summary.json`` without its
    wall-clock fields), so two runs that wrote the same outputs give the same digest."""
    digest = hashlib.sha256()
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "summary.json":
            summary = json.loads(data)
            data = json.dumps({k: v for k, v in summary.items() if not k.endswith(("_s", "seconds", "_at"))},
                              sort_keys=True).encode()
        digest.update(str(path.relative_to(out)).encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def extract_cpu(tree: Path, warc: Path, config_yaml: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(config_yaml)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-m", "pipelines", "extract",
                               "--input", str(warc), "--output", str(Path(tmp) / "out"), "--config", str(cfg),
                               "--direct_num_workers=1"], cwd=tree, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"extract failed in {tree}: {proc.stderr.strip().splitlines()[-1:]}")
        digest = output_digest(Path(tmp) / "out")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    args = parser.parse_args()
    if not args.warc.exists():
        raise SystemExit(f"benchmark input {args.warc} not found (set CORPUS_SHARED_DATA or pass --warc)")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for tree in trees.values():
        compile_project(tree, str(tree / ".venv" / "bin" / "python"))
    runs = {(side, name): [] for side in trees for name in CONFIGS}
    digests = {(side, name): set() for side in trees for name in CONFIGS}
    for i in range(args.repeats):   # interleaved, so a change in machine load hits both trees alike
        for name, yaml in CONFIGS.items():
            for side, tree in trees.items():
                cpu, digest = extract_cpu(tree, args.warc, yaml)
                runs[(side, name)].append(cpu)
                digests[(side, name)].add(digest)
                print(f"[{i + 1}] {name:8s} {side:6s} {cpu:6.1f} CPU-s  load {os.getloadavg()[0]:.2f}", flush=True)
    for name in CONFIGS:
        b, a = runs[("before", name)], runs[("after", name)]
        paired = ", ".join(f"{x / y:.2f}" for x, y in zip(b, a))
        same = digests[("before", name)] == digests[("after", name)] and len(digests[("after", name)]) == 1
        print(f"{name}: before {statistics.median(b):.1f}, after {statistics.median(a):.1f} CPU-s (medians); "
              f"speed-up {statistics.median(b) / statistics.median(a):.2f}x; paired {paired}; outputs "
              f"{'byte-identical' if same else 'DIFFER'} ({len(digests[('before', name)] | digests[('after', name)])} "
              "distinct)")


if __name__ == "__main__":
    main()
