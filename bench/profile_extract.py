"""Per-page cost breakdown of the extract stage: where one worker's CPU goes.

    python bench/profile_extract.py [--warc PATH] [--config FILE] [--pipeline-cpu CPU_S]

Runs the stage's in-process path (the same calls ``ExtractFileFn`` makes: ``iter_records`` ->
``header_outcome``/``extract_document`` -> ``SignalComputer`` -> Parquet encoding) over the whole
WARC twice: once unprofiled for the true CPU time, once under cProfile to split it.  Each part is
the cumulative time of its entry point(s) (``PARTS``), scaled to the unprofiled total; HTML
parsing is trafilatura's ``load_html`` (lxml), "extraction" the rest of ``trafilatura.extract``.
Extraction runs inline here (``timeout_s: 0``); the runner's share -- Beam, the time-limit helper
process's pickling, the launcher, start-up -- is the whole-process-tree CPU of
``python -m pipelines extract --direct_num_workers=1`` (measured here, or ``--pipeline-cpu``)
minus this loop's CPU.
"""
from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_extract import DEFAULT_WARC, pipeline_run  # noqa: E402

# part -> [(file suffix, function name)]: cumulative time of these entry points.
PARTS = {
    "WARC parsing (pipelines.warc)": [("pipelines/warc.py", "iter_records")],
    "charset detection + decoding": [("pipelines/charset.py", "decode_html")],
    "HTML parsing (lxml, in trafilatura)": [("trafilatura/utils.py", "load_html")],
    "trafilatura extraction (minus parsing)": [("trafilatura/core.py", "extract")],
    "resiliparse extraction (extractor: resiliparse)": [("~", "extract_plain_text")],
    "title regex": [("pipelines/html_text.py", "page_title")],
    "consent meta tags (HTML up to the last <meta name>)": [("pipelines/html_text.py", "meta_consent")],
    "signal: language ID": [("filters/language.py", "identify")],
    "signal: quality measures": [("filters/quality.py", "measure")],
    "signal: quality model": [("filters/quality_model.py", "score")],
    "signal: toxicity (word lists + classifier)": [("filters/toxicity.py", "score")],
    "signal: PII counts": [("filters/families/pii.py", "pii_counts")],
    "signal: consent (robots/TDM)": [("filters/families/consent.py", "_compute")],
    "Parquet encoding": [("pipelines/writers.py", "parquet_bytes")],
}
# part -> parts nested inside it, subtracted so that no time is counted twice.
NESTED = {"trafilatura extraction (minus parsing)": ["HTML parsing (lxml, in trafilatura)"]}


def set_up(cfg: dict):
    """What a worker's DoFn.setup does: the extractor (inline) and the signal models."""
    from filters.signals import SignalComputer
    from pipelines.html_text import Extractor, extractor_options

    import trafilatura  # noqa: F401 - imported here so the loop does not pay for it

    ecfg = cfg["extract"]
    return (Extractor(extractor_options(ecfg), 0, ecfg["extractor"]),
            SignalComputer(cfg) if ecfg["compute_signals"] else None)


def run_loop(warc: Path, cfg: dict, extractor, signals) -> tuple[int, int]:
    """The extract stage's per-record work, in this process; returns (records, pages offered)."""
    from pipelines import outputs
    from pipelines.extract import output_schema
    from pipelines.html_text import meta_consent
    from pipelines.records import extract_document, header_outcome, want_body
    from pipelines.warc import ReadError, iter_records, local_opener
    from pipelines.warc_framing import HeaderLimits

    ecfg = cfg["extract"]
    limits = HeaderLimits(ecfg["max_header_line_bytes"], ecfg["max_header_block_bytes"])
    records = pages = 0
    docs = []
    for item in iter_records(local_opener(str(warc)), str(warc), want_body=want_body(ecfg),
                             max_body_bytes=ecfg["max_payload_bytes"], max_decoded_bytes=ecfg["max_decoded_bytes"],
                             header_limits=limits):
        records += 1
        if isinstance(item, ReadError):
            continue
        if header_outcome(item, ecfg) is not None:
            continue
        pages += 1
        outcome = extract_document(item, ecfg, extractor, meta_consent)
        if outcome.doc is not None:
            if signals is not None:
                outcome.doc.update(signals(outcome.doc))
            docs.append(outcome.doc)
    outputs.parquet_bytes(docs, output_schema(cfg))
    return records, pages


def _matches(fname: str, func: str, suffix: str, name: str) -> bool:
    if suffix == "~":  # a C function: cProfile names it "<method 'x' of ...>" or "<built-in method x>"
        return fname == "~" and name in func
    return fname.endswith(suffix) and func == name


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds per part.  A generator (iter_records) is charged per resume, so its
    time is its own reading and parsing, not its consumer's work between records."""
    cumulative: dict[str, float] = {}
    for part, entries in PARTS.items():
        cumulative[part] = sum(ct for (fname, _, func), (_, _, _, ct, _) in stats.stats.items()
                               if any(_matches(fname, func, suffix, name) for suffix, name in entries))
    for part, inner in NESTED.items():
        cumulative[part] -= sum(cumulative[i] for i in inner)
    return cumulative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--config", help="a config file, as for python -m pipelines extract")
    parser.add_argument("--pipeline-cpu", type=float, help="skip the pipeline run; its whole-tree CPU-s")
    args = parser.parse_args()
    if not args.warc.exists():
        raise SystemExit(f"benchmark input {args.warc} not found (set CORPUS_SHARED_DATA or pass --warc)")
    from pipelines.config import load_config

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    logging.getLogger("warcio").setLevel(logging.ERROR)
    cfg = load_config(args.config)
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"input {args.warc.name}")
    c0 = time.process_time()
    extractor, signals = set_up(cfg)
    setup_cpu = time.process_time() - c0
    c0 = time.process_time()
    records, pages = run_loop(args.warc, cfg, extractor, signals)
    loop_cpu = time.process_time() - c0
    profiler = cProfile.Profile()
    profiler.enable()
    run_loop(args.warc, cfg, extractor, signals)
    profiler.disable()
    stats = pstats.Stats(profiler)
    profiled_total = stats.total_tt
    parts = breakdown(stats)
    if args.pipeline_cpu is None:
        extra = "" if not args.config else Path(args.config).read_text().split("extract:", 1)[-1]
        pipeline_cpu = pipeline_run(args.warc, 1, cfg["extract"]["compute_signals"], extra)["cpu_s"]
    else:
        pipeline_cpu = args.pipeline_cpu
    scale = loop_cpu / profiled_total
    print(f"{records} records, {pages} HTML pages; in-process loop {loop_cpu:.1f} CPU-s "
          f"(+ {setup_cpu:.1f} to load models), pipeline (1 worker, whole tree) {pipeline_cpu:.1f} CPU-s")
    print("\n| part | CPU-s | ms/page | share of pipeline CPU |\n|---|---:|---:|---:|")
    rows = [(name, t * scale) for name, t in parts.items()]
    rows.append(("other per-record work (outcomes, dicts, ids)", loop_cpu - sum(t for _, t in rows)))
    rows.append(("worker set-up: imports, models loaded once", setup_cpu))
    rows.append(("runner: Beam, helper-process IPC, launcher, start-up", pipeline_cpu - loop_cpu - setup_cpu))
    for name, cpu in rows:
        print(f"| {name} | {cpu:.1f} | {1000 * cpu / pages:.1f} | {100 * cpu / pipeline_cpu:.0f}% |")
    print(f"| **total** | {pipeline_cpu:.1f} | {1000 * pipeline_cpu / pages:.1f} | 100% |")


if __name__ == "__main__":
    main()
