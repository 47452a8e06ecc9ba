"""Extract-stage throughput: pages per CPU-second, 1 vs 2 workers, peak RSS, vs a bare loop.

    python bench/bench_extract.py [--warc PATH] [--workers 1,2]

Baseline (same script, same machine, same pages): a bare loop of warcio + trafilatura.extract in
one process.  The pipeline runs as ``python -m pipelines extract`` in a subprocess whose whole
process tree (launcher, SDK workers, extractor helpers) is sampled with psutil for CPU time and
RSS, so the figures include everything the stage really costs.  Also measured: the per-document
overhead of running trafilatura in the time-limit helper process instead of inline.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.warc import RawRecord, iter_records, local_opener  # noqa: E402

DEFAULT_WARC = Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data")) / "realweb" / "realweb.warc.gz"


def html_pages(warc: Path) -> list[tuple[bytes, str]]:
    pages = []
    for rec in iter_records(local_opener(str(warc)), str(warc),
                            want_body=lambda r: r.rec_type == "response" and r.http_status == 200):
        if isinstance(rec, RawRecord) and rec.body:
            pages.append((rec.body, rec.target_uri))
    return pages


def bare_loop(warc: Path) -> dict:
    import trafilatura

    t0, c0 = time.perf_counter(), time.process_time()
    pages = kept = 0
    for rec in iter_records(local_opener(str(warc)), str(warc),
                            want_body=lambda r: r.rec_type == "response" and r.http_status == 200):
        if isinstance(rec, RawRecord) and rec.body:
            pages += 1
            if trafilatura.extract(rec.body, url=rec.target_uri):
                kept += 1
    cpu = time.process_time() - c0
    return {"pages": pages, "kept": kept, "wall_s": time.perf_counter() - t0, "cpu_s": cpu,
            "pages_per_cpu_s": pages / cpu, "peak_rss_mb": psutil.Process().memory_info().rss / 2**20}


def helper_overhead(pages: list[tuple[bytes, str]], n: int = 150) -> dict:
    """ms per document: trafilatura inline vs through the time-limit helper process."""
    from pipelines.charset import decode_html
    from pipelines.html_text import Extractor

    docs = [(decode_html(b)[0], u) for b, u in pages[:n]]
    out = {}
    for label, timeout in (("inline", 0), ("helper_process", 20)):
        with Extractor({}, timeout_s=timeout) as ex:
            ex.extract(docs[0][0], docs[0][1])  # start-up is paid once per worker, not per page
            t0 = time.perf_counter()
            for html, url in docs:
                ex.extract(html, url)
            out[f"{label}_ms_per_doc"] = 1000 * (time.perf_counter() - t0) / len(docs)
    out["overhead_ms_per_doc"] = out["helper_process_ms_per_doc"] - out["inline_ms_per_doc"]
    return out


def measure_tree(cmd: list[str], cwd: Path = ROOT) -> dict:
    """Run ``cmd`` and sample its whole process tree with psutil: CPU-s (user+system) summed over
    every process seen, peak RSS per process, wall time and the exit code."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu: dict[int, float] = {}
    rss: dict[int, int] = {}
    while proc.poll() is None:
        try:
            family = [proc] + proc.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for p in family:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
                    rss[p.pid] = max(rss.get(p.pid, 0), p.memory_info().rss)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.05)
    return {"rc": proc.wait(), "wall_s": time.perf_counter() - t0, "cpu_s": sum(cpu.values()),
            "processes": len(cpu), "peak_rss_mb_max_process": max(rss.values(), default=0) / 2**20,
            "peak_rss_mb_sum": sum(rss.values()) / 2**20}


def pipeline_run(warc: Path, workers: int, signals: bool = True, extra_config: str = "") -> dict:
    """``python -m pipelines extract`` on ``warc``; ``extra_config`` is more YAML under ``extract:``."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.NamedTemporaryFile("w", suffix=".yaml") as cfg:
        cfg.write(f"extract:\n  compute_signals: {'true' if signals else 'false'}\n{extra_config}")
        cfg.flush()
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "pipelines", "extract", "--input", str(warc), "--output", str(out),
               "--config", cfg.name, f"--direct_num_workers={workers}"]
        tree = measure_tree(cmd)
        if tree["rc"] != 0:
            raise SystemExit(f"pipeline failed with exit {tree['rc']}: {' '.join(cmd)}")
        summary = json.loads((out / "summary.json").read_text())
    pages = summary["kept"] + sum(n for r, n in summary["dropped_by_reason"].items()
                                  if r in ("too_short", "empty_extraction")) + summary["dead_lettered"]
    total_cpu, wall = tree["cpu_s"], tree["wall_s"]
    return {"workers": workers, "signals": signals, "pages": pages, "kept": summary["kept"], "wall_s": wall, "cpu_s": total_cpu,
            "pages_per_cpu_s": pages / total_cpu, "pages_per_wall_s": pages / wall,
            "processes": tree["processes"], "peak_rss_mb_max_process": tree["peak_rss_mb_max_process"],
            "peak_rss_mb_sum": tree["peak_rss_mb_sum"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    if not args.warc.exists():
        raise SystemExit(f"benchmark input {args.warc} not found (set CORPUS_SHARED_DATA or pass --warc)")
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; input {args.warc.name}")
    base = bare_loop(args.warc)
    print(f"bare loop (warcio + trafilatura, 1 process): {base['pages']} pages, {base['cpu_s']:.1f} CPU-s, "
          f"{base['pages_per_cpu_s']:.1f} pages/CPU-s, wall {base['wall_s']:.1f}s, RSS {base['peak_rss_mb']:.0f} MB")
    over = helper_overhead(html_pages(args.warc))
    print(f"time-limit helper process: {over['inline_ms_per_doc']:.2f} ms/doc inline vs "
          f"{over['helper_process_ms_per_doc']:.2f} ms/doc in helper -> overhead {over['overhead_ms_per_doc']:+.2f} ms/doc")
    runs = []
    plan = [(1, False)] + [(int(w), True) for w in args.workers.split(",")]
    for workers, signals in plan:
        r = pipeline_run(args.warc, workers, signals)
        runs.append(r)
        what = "extraction + all filter signals" if signals else "extraction only (compute_signals: false)"
        print(f"pipeline, {workers} worker(s), {what}: {r['pages']} pages, wall {r['wall_s']:.1f}s "
              f"({r['pages_per_wall_s']:.1f} pages/s), {r['cpu_s']:.1f} CPU-s over {r['processes']} processes "
              f"-> {r['pages_per_cpu_s']:.1f} pages/CPU-s = {r['pages_per_cpu_s'] / base['pages_per_cpu_s']:.2f}x bare loop; "
              f"peak RSS {r['peak_rss_mb_max_process']:.0f} MB/process, {r['peak_rss_mb_sum']:.0f} MB total")
    with_signals = [r for r in runs if r["signals"]]
    if len(with_signals) >= 2:
        print(f"wall-time speed-up {with_signals[-1]['workers']} vs {with_signals[0]['workers']} workers: "
              f"{with_signals[0]['wall_s'] / with_signals[-1]['wall_s']:.2f}x")
    print(json.dumps({"bare_loop": base, "helper_overhead": over, "pipeline": runs}, indent=1))


if __name__ == "__main__":
    main()
