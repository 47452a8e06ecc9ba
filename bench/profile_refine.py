"""Per-page cost breakdown of the refine stage: where one worker's CPU goes.

    python bench/profile_refine.py --extracted DIR [--config FILE] [--pipeline-cpu CPU_S --startup-cpu CPU_S]

Runs the stage's in-process work over every row of the extracted Parquet (the same pure calls
the DoFns make: ``read_parquet_rows`` -> ``SignalsFn``'s reuse check or ``SignalComputer`` ->
``Decider`` + C4 lines + PII redaction -> dedup's row copy, fingerprint, stub, MinHash signatures
and band keys, line keys -> Parquet encoding of the kept and removed rows) twice: once unprofiled
for the true CPU time, once under cProfile to split it (each part is the cumulative time of its
entry points, scaled to the unprofiled total).  The runner's share -- Beam's encoding, shuffles,
bundles and the dedup joins' Python glue -- is the whole-process-tree CPU of ``python -m
pipelines refine --direct_num_workers=1`` minus that of a one-document refine (the fixed
start-up) minus this loop's CPU.

Signals are recomputed only when the input's ``signals_version`` differs from the config's: pass
the same ``--config`` the extract ran with to measure the normal (reused) case.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# part -> "file suffix:function ...": the cumulative time of these entry points.
PARTS = {
    "read Parquet -> row dicts": "pipelines/refine_io.py:read_parquet_rows",
    "signals: reuse check": "filters/signals.py:has_current_signals",
    "signals: recomputed (stale signals_version)": "filters/signals.py:__call__",
    "decide (filters.decisions)": "filters/decisions.py:decide",
    "C4 line rules on kept text": "filters/quality.py:c4_line_keep_mask filters/quality.py:apply_c4_lines",
    "PII redaction on kept text": "filters/signals.py:redact_pii",
    "dedup: row fingerprint (json of the row)": "filters/dedup/policy.py:fingerprint",
    "dedup: stub (keep-policy keys)": "pipelines/dedup/common.py:make_stub",
    "dedup: MinHash text normalisation": "filters/dedup/text.py:normalized_bytes",
    "dedup: MinHash shingle hashes": "filters/dedup/text.py:shingle_hashes",
    "dedup: MinHash signatures": "filters/dedup/minhash.py:signatures",
    "dedup: LSH band keys": "filters/dedup/minhash.py:band_keys",
    "dedup: line keys": "filters/dedup/lines.py:line_keys",
    "Parquet encoding (kept + removed)": "pipelines/writers.py:parquet_bytes",
}


def set_up(cfg: dict):
    from filters.dedup.minhash import MinHasher
    from filters.signals import SignalComputer
    from pipelines.refine import DecideFn

    decide = DecideFn(cfg)
    decide.setup()
    mh = cfg["dedup"]["minhash"]
    return SignalComputer(cfg), decide, MinHasher(int(mh["bands"]) * int(mh["rows"]), int(mh["seed"]))


class _Collect:
    """Stands in for a DoFn's output: main rows and tagged outputs."""

    def __init__(self, items):
        self.main, self.tagged = [], {}
        for item in items:
            if hasattr(item, "tag"):
                self.tagged.setdefault(item.tag, []).append(item.value)
            else:
                self.main.append(item)


def run_loop(paths: list[Path], cfg: dict, signals, dec_fn, hasher) -> int:
    """refine's per-row work in this process; returns the number of input rows."""
    from filters.dedup.lines import line_keys
    from filters.dedup.minhash import band_keys
    from filters.dedup.policy import fingerprint
    from filters.dedup.text import normalized_bytes, shingle_hashes
    from pipelines import refine
    from pipelines.dedup.common import make_stub
    from pipelines.dedup.transform import _prepare
    from pipelines.writers import parquet_bytes

    sig_fn = refine.SignalsFn(cfg)
    sig_fn.computer = signals
    rows = []
    for path in paths:
        rows += [v for kind, v in refine.read_parquet_rows(str(path)) if kind == "row"]
    n = len(rows)
    signalled = _Collect(x for row in rows for x in sig_fn.process(row)).main
    kept, removed = [], []
    for row in signalled:
        out = _Collect(dec_fn.process(row))
        kept += out.main
        removed += out.tagged.get(refine.REMOVED, [])
    dcfg = cfg["dedup"]
    qcol, mh = dcfg["keep"]["quality_column"], dcfg["minhash"]
    bands, brows, ngram = int(mh["bands"]), int(mh["rows"]), int(mh["ngram"])
    docs = [d for row in kept for d in _prepare(row)]
    stubs = [make_stub(d, fingerprint(d), qcol) for d in docs]
    batch = int(mh["batch_docs"])
    for i in range(0, len(docs), batch):
        hashes = [shingle_hashes(normalized_bytes(d["text"]), ngram) for d in docs[i:i + batch]]
        for sig in hasher.signatures(hashes):
            if sig is not None:
                band_keys(sig, bands, brows)
    for d in docs:
        line_keys(d["text"], int(dcfg["lines"]["min_line_chars"]))
    parquet_bytes(kept, refine.kept_schema(refine.dedup_transform(cfg).KEPT_FIELDS))
    parquet_bytes(removed, refine.removed_schema(refine.dedup_transform(cfg).KEPT_FIELDS))
    assert len(stubs) == len(docs)
    return n


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    entries = {part: [e.split(":") for e in spec.split()] for part, spec in PARTS.items()}
    return {part: sum(ct for (fname, _, func), (_, _, _, ct, _) in stats.stats.items()
                      if any(fname.endswith(suffix) and func == name for suffix, name in ends))
            for part, ends in entries.items()}


def _tree_cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def pipeline_cpu(inp: Path, config: str | None) -> float:
    """Whole-tree CPU-s of one ``python -m pipelines refine --direct_num_workers=1`` over ``inp``."""
    out = tempfile.mkdtemp(prefix="profile-refine-")
    cmd = [sys.executable, "-m", "pipelines", "refine", "--input", str(inp), "--output", out,
           "--overwrite", "--direct_num_workers=1"] + (["--config", config] if config else [])
    c0 = _tree_cpu()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _tree_cpu() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extracted", type=Path, required=True, help="directory of extract's Parquet")
    ap.add_argument("--config", help="a config file, as for python -m pipelines refine")
    ap.add_argument("--pipeline-cpu", type=float, help="skip the pipeline runs: whole-tree CPU-s of the refine")
    ap.add_argument("--startup-cpu", type=float, help="with --pipeline-cpu: CPU-s of a one-document refine")
    args = ap.parse_args()
    from pipelines.config import load_config

    cfg = load_config(args.config)
    paths = sorted(args.extracted.glob("*.parquet"))
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    c0 = time.process_time()
    models = set_up(cfg)
    setup_cpu = time.process_time() - c0
    run_loop(paths, cfg, *models)  # warm-up: lazily built tables and caches
    c0 = time.process_time()
    pages = run_loop(paths, cfg, *models)
    loop_cpu = time.process_time() - c0
    profiler = cProfile.Profile()
    profiler.enable()
    run_loop(paths, cfg, *models)
    profiler.disable()
    stats = pstats.Stats(profiler)
    scale = loop_cpu / stats.total_tt
    if args.pipeline_cpu is None:
        import pyarrow.parquet as pq

        one = Path(tempfile.mkdtemp(prefix="profile-refine-one-"))
        pq.write_table(pq.read_table(paths[0]).slice(0, 1), one / "one.parquet")
        total, startup = pipeline_cpu(args.extracted, args.config), pipeline_cpu(one, args.config)
    else:
        total, startup = args.pipeline_cpu, args.startup_cpu or 0.0
    marginal = total - startup
    print(f"{pages} pages; in-process loop {loop_cpu:.2f} CPU-s (+ {setup_cpu:.1f} set-up); pipeline "
          f"{total:.1f} CPU-s, 1-document run {startup:.1f} CPU-s -> marginal {marginal:.1f} CPU-s "
          f"= {(pages - 1) / marginal:.0f} pages/CPU-s")
    print("\n| part | CPU-s | ms/page | share of marginal CPU |\n|---|---:|---:|---:|")
    rows = [(name, t * scale) for name, t in breakdown(stats).items()]
    rows.append(("other in-process work (DoFn bodies, dicts)", loop_cpu - sum(t for _, t in rows)))
    rows.append(("runner: Beam coders, shuffles, dedup joins' glue", marginal - loop_cpu))
    for name, cpu in rows:
        print(f"| {name} | {cpu:.2f} | {1000 * cpu / pages:.2f} | {100 * cpu / marginal:.0f}% |")
    print(f"| **marginal total** | {marginal:.2f} | {1000 * marginal / pages:.2f} | 100% |")


if __name__ == "__main__":
    main()
