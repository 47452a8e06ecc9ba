"""Ours vs datatrove: pages per CPU-second on the same WARC, one worker each, whole process trees.

    python bench/bench_peers.py [--warc PATH] [--venv DIR] [--repeats 3] [--ours-config NAME=YAML ...] [--reference]

datatrove (pinned, ``PEER_REQUIREMENTS``) is installed from the package index into a throw-away
virtual environment outside the project (default: a directory under the system temp dir, or
``--venv``); it never enters the project's requirements.  Both sides run as subprocesses whose
whole process tree is sampled by ``bench.bench_extract.measure_tree`` (user+system CPU seconds),
medians of ``--repeats`` runs:

- ours: ``python -m pipelines extract --direct_num_workers=1`` with every signal
  (``bench.bench_extract.pipeline_run``), once with the default config and once with the
  documented fast configuration (``FAST_CONFIG``: resiliparse extraction; ``--no-fast`` skips
  it); ``--ours-config name='  trafilatura: {favor_precision: true}'`` adds a variant with more
  YAML under ``extract:``;
- datatrove, one task: WarcReader -> Trafilatura(favour_precision) -> GopherRepetitionFilter ->
  GopherQualityFilter -> C4QualityFilter -> FineWebQualityFilter -> PIIFormatter -> JsonlWriter.
  trafilatura is imported before datatrove forks its extractor child and the per-page limit is
  5 s instead of 1 s: on a loaded 2-core machine the child otherwise misses its 1 s start-up
  deadline and every page is skipped as a timeout (which would flatter datatrove's CPU).

Both are charged per page offered to the extractor (our summary's kept + too_short +
empty_extraction + dead-lettered HTML pages), so the pages-per-CPU-second ratio is the ratio of
CPU seconds.  Our packages are byte-compiled first (``compile_project``), as pip compiles
datatrove's when it installs them.  Prints each run, the medians and ours/datatrove; ``--json`` writes them all.

``--small-warc PATH`` (e.g. ``samples/sample.warc.gz``) also runs every side on a small WARC and
prints the ratio *at the margin*: (pages of the big WARC - pages of the small one) per (CPU-s of
the big run - CPU-s of the small run), i.e. with each side's fixed start-up cost (Beam, models,
datatrove's executor) taken out.  That is the per-page cost a Dataflow worker pays once it is
running -- the figure that scales to a snapshot; the whole-run ratio charges the start-up to 990
pages.

``--reference`` runs ``bench.reference``'s loop once per round as well and prints ours in the cost
model's reference units (configs/cost.yaml ``extract_pages_per_cpu_s`` is in those units).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import reference  # noqa: E402
from bench.bench_extract import DEFAULT_WARC, measure_tree, pipeline_run  # noqa: E402

# datatrove pins trafilatura<1.12 (which needs lxml_html_clean with lxml 6); the WARC reader imports cchardet and magic; Gopher's word
# splitting for English is spaCy's blank tokenizer (no model download).
PEER_REQUIREMENTS = ["datatrove==0.10.1", "warcio==1.8.1", "faust-cchardet==3.2.0", "python-magic==0.4.27",
                     "trafilatura==1.11.0", "lxml_html_clean==0.4.6", "spacy==3.8.18", "nltk==3.10.4", "orjson==3.13.0"]
DEFAULT_VENV = Path(tempfile.gettempdir()) / "corpus-bench-datatrove-venv"
# The documented fast configuration (README / BENCHMARKS.md "Cost per page"), YAML under extract:.
FAST_CONFIG = "  extractor: resiliparse"
# What `python -m pipelines extract` imports from this checkout (byte-compiled before the runs).
PROJECT_PACKAGES = ("pipelines", "filters", "settings", "tokenization")

DATATROVE_SCRIPT = r'''
import sys
import trafilatura  # noqa: F401 - imported before the extractor's child process forks: its 1 s start-up limit
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.writers import JsonlWriter

warc, out = sys.argv[1], sys.argv[2]
folder, name = warc.rsplit("/", 1)
LocalPipelineExecutor(
    pipeline=[
        WarcReader(folder, glob_pattern=name),
        Trafilatura(favour_precision=True, timeout=5),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        PIIFormatter(),
        JsonlWriter(out + "/docs"),
    ],
    tasks=1, workers=1, logging_dir=out + "/logs",
).run()
'''


def ensure_venv(venv: Path) -> Path:
    """The peer venv's python, creating the venv and installing ``PEER_REQUIREMENTS`` when needed."""
    python = venv / "bin" / "python"
    if venv.resolve().is_relative_to(ROOT.resolve()):
        raise SystemExit(f"--venv {venv} is inside the project; use a throw-away directory outside it")
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('datatrove'))"]
    if python.exists() and subprocess.run(check, capture_output=True, text=True).stdout.strip() == "0.10.1":
        return python
    print(f"installing {' '.join(PEER_REQUIREMENTS)} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS])
    if done.returncode != 0:
        raise SystemExit(f"could not install the datatrove environment into {venv} (pip exit {done.returncode})")
    return python


def datatrove_run(python: Path, warc: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "datatrove_extract.py"
        script.write_text(DATATROVE_SCRIPT)
        out = Path(tmp) / "out"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network: datatrove must not try the Hub
        tree = measure_tree([str(python), str(script), str(warc.resolve()), str(out)], cwd=Path(tmp))
        if tree["rc"] != 0:
            raise SystemExit(f"datatrove run failed with exit {tree['rc']} (run {script} by hand to see why)")
        kept = sum(1 for f in (out / "docs").glob("*.jsonl*") for _ in _lines(f))
    return {**tree, "kept": kept}


def _lines(path: Path):
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        yield from fh


def extraction_f1(warc: Path, extra_config: str = "") -> dict:
    """Snippet scores (bench/extraction_eval.py) of the documents a variant keeps, computed on the
    stage's own record path (records.header_outcome/extract_document) in this process."""
    from bench.extraction_eval import score
    from pipelines.config import load_config
    from pipelines.html_text import Extractor, extractor_options
    from pipelines.records import extract_document, header_outcome, want_body
    from pipelines.warc import RawRecord, iter_records, local_opener

    truth = warc.parent / "realweb-eval.json"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as cfg_file:
        cfg_file.write("extract:\n" + (extra_config or "  compute_signals: true\n"))
        cfg_file.flush()
        cfg = load_config(cfg_file.name)["extract"]
    texts = {}
    with Extractor(extractor_options(cfg), 0, cfg["extractor"]) as extractor:
        for rec in iter_records(local_opener(str(warc)), str(warc), want_body=want_body(cfg),
                                max_body_bytes=cfg["max_payload_bytes"], max_decoded_bytes=cfg["max_decoded_bytes"]):
            if not isinstance(rec, RawRecord) or header_outcome(rec, cfg) is not None:
                continue
            outcome = extract_document(rec, cfg, extractor)
            if outcome.doc is not None:
                texts[outcome.doc["url"]] = outcome.doc["text"]
    return score(texts, str(truth))


def head_warc(warc: Path, records: int) -> Path:
    """The first ``records`` records of ``warc`` as a new .warc.gz in the temp dir (a clean small
    input both sides can read: the bundled sample holds deliberately broken records)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    out = Path(tempfile.mkdtemp(prefix="bench-peers-")) / f"head{records}-{warc.name}"
    with open(warc, "rb") as src, open(out, "wb") as dst:
        writer = WARCWriter(dst, gzip=True)
        for i, record in enumerate(ArchiveIterator(src)):
            if i >= records:
                break
            writer.write_record(record)
    return out


def compile_project(tree: Path = ROOT, python: str = sys.executable) -> None:
    """Byte-compile the project's packages, as pip does for datatrove's when it installs them: an
    editable checkout run with PYTHONDONTWRITEBYTECODE set (as on the CI sandbox) would otherwise
    compile ~70 modules from source in every process, ~0.1 CPU-s a run that an installed copy
    never pays."""
    packages = [str(tree / name) for name in PROJECT_PACKAGES]
    subprocess.run([python, "-m", "compileall", "-q", *packages], check=True)


def median_of(runs: list[dict], key: str = "cpu_s") -> float:
    return statistics.median(r[key] for r in runs)


def paired_ratios(ours: list[dict], peer: list[dict]) -> str:
    """The peer's CPU-s over ours, round by round, and their median: each ratio pairs two runs of
    the same round (run back to back), so a change in machine speed between rounds cancels out,
    where the table's ratio of medians pairs medians taken over all rounds."""
    ratios = [p["cpu_s"] / o["cpu_s"] for o, p in zip(ours, peer, strict=True)]
    return (f"round by round: {', '.join(f'{r:.2f}x' for r in ratios)}; "
            f"median {statistics.median(ratios):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours-config", action="append", default=[], metavar="NAME=YAML",
                        help="another run of ours with this YAML (indented, under extract:)")
    parser.add_argument("--no-fast", action="store_true", help="skip the fast configuration (FAST_CONFIG)")
    parser.add_argument("--skip-datatrove", action="store_true")
    parser.add_argument("--no-f1", action="store_true", help="skip the snippet F1 of each variant of ours")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--small-warc", type=Path, help="also measure the ratio at the margin (see above)")
    parser.add_argument("--reference", action="store_true",
                        help="also run bench.reference's loop each round; prints ours in the cost model's reference units")
    parser.add_argument("--small-records", type=int, default=0, metavar="N",
                        help="with no --small-warc: the small WARC is the first N records of --warc")
    args = parser.parse_args()
    if not args.warc.exists():
        raise SystemExit(f"benchmark input {args.warc} not found (set CORPUS_SHARED_DATA or pass --warc)")
    if args.reference and args.warc.resolve() != DEFAULT_WARC.resolve():
        parser.error("--reference needs the realweb WARC (the reference loop's figures are for its pages)")
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; input {args.warc.name}")
    variants = [("default", "")] + ([] if args.no_fast else [("fast", FAST_CONFIG)]) \
        + [tuple(v.split("=", 1)) for v in args.ours_config]
    variants = [(name, yaml.replace("\\n", "\n") + "\n" if yaml else "") for name, yaml in variants]
    python = None if args.skip_datatrove else ensure_venv(args.venv)
    compile_project()
    results: dict[str, list[dict]] = {name: [] for name, _ in variants}
    if python:
        results["datatrove"] = []
    loops: list[dict] = []
    for i in range(args.repeats):  # interleaved, so a change in machine load hits every side alike
        if args.reference:
            loops.append(reference.reference_run(args.warc))
            print(f"[{i + 1}] reference loop: {loops[-1]['pages_per_cpu_s']:.1f} pages/CPU-s", flush=True)
        for name, yaml in variants:
            r = pipeline_run(args.warc, 1, True, yaml)
            results[name].append(r)
            print(f"[{i + 1}] ours {name}: {r['pages']} pages, {r['kept']} kept, {r['cpu_s']:.1f} CPU-s, "
                  f"wall {r['wall_s']:.1f}s, {r['processes']} processes", flush=True)
        if python:
            r = datatrove_run(python, args.warc)
            results["datatrove"].append(r)
            print(f"[{i + 1}] datatrove: {r['kept']} kept, {r['cpu_s']:.1f} CPU-s, wall {r['wall_s']:.1f}s, "
                  f"{r['processes']} processes", flush=True)
    if args.small_records and not args.small_warc:
        args.small_warc = head_warc(args.warc, args.small_records)
    small: dict[str, list[dict]] = {name: [] for name in results}
    for i in range(args.repeats if args.small_warc else 0):
        for name, yaml in variants:
            r = pipeline_run(args.small_warc, 1, True, yaml)
            small[name].append(r)
            print(f"[{i + 1}] small, ours {name}: {r['pages']} pages, {r['cpu_s']:.1f} CPU-s", flush=True)
        if python:
            r = datatrove_run(python, args.small_warc)
            small["datatrove"].append(r)
            print(f"[{i + 1}] small, datatrove: {r['cpu_s']:.1f} CPU-s", flush=True)
    if not args.no_f1 and not (args.warc.parent / "realweb-eval.json").exists():
        print(f"no realweb-eval.json next to {args.warc}: snippet F1 skipped")
        args.no_f1 = True
    f1 = {} if args.no_f1 else {name: extraction_f1(args.warc, yaml) for name, yaml in variants}
    pages = results["default"][0]["pages"]
    print(f"\nmedians of {args.repeats}, {pages} HTML pages, one worker; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| run | CPU-s | pages/CPU-s | vs datatrove | realweb snippet F1 |\n|---|---:|---:|---:|---:|")
    peer = median_of(results["datatrove"]) if python else None
    for name, runs in results.items():
        cpu = median_of(runs)
        ratio = f"{peer / cpu:.2f}x" if peer else "-"
        label = "datatrove 0.10.1, one task" if name == "datatrove" else f"ours ({name})"
        quality = f"{f1[name]['f1']:.3f}" if name in f1 else "-"
        print(f"| {label} | {cpu:.1f} | {pages / cpu:.1f} | {ratio} | {quality} |")
    if python:
        for name, runs in results.items():
            if name != "datatrove":
                print(f"ours ({name}) vs datatrove, " + paired_ratios(runs, results["datatrove"]))
    margin = {}
    if args.small_warc:
        small_pages = small["default"][0]["pages"]
        margin = {name: median_of(results[name]) - median_of(small[name]) for name in results}
        print(f"\nat the margin: ({pages} - {small_pages}) pages over (CPU-s on {args.warc.name} - CPU-s on "
              f"{args.small_warc.name}), medians of {args.repeats}")
        print("| run | fixed CPU-s (small WARC) | marginal CPU-s | pages/CPU-s | vs datatrove |\n|---|---:|---:|---:|---:|")
        for name, cpu in margin.items():
            ratio = f"{margin['datatrove'] / cpu:.2f}x" if python and cpu > 0 else "-"
            rate = f"{(pages - small_pages) / cpu:.1f}" if cpu > 0 else "-"
            print(f"| {name} | {median_of(small[name]):.1f} | {cpu:.1f} | {rate} | {ratio} |")
    factor = None
    if loops:
        ref = reference.reference_pages_per_cpu_s()
        factor = reference.machine_factor(loops, ref)
        print("\n" + reference.describe(loops, ref))
        for name in results:
            if name == "datatrove":
                continue
            rounds = reference.per_round([pages / r["cpu_s"] for r in results[name]], loops, ref)
            line = (f"ours ({name}) in reference units, whole run per round: "
                    f"{', '.join(f'{x:.1f}' for x in rounds)}; median {statistics.median(rounds):.1f}")
            if margin.get(name, 0) > 0:
                line += (f"; at the margin (medians x factor) "
                         f"{(pages - small['default'][0]['pages']) / margin[name] * factor:.1f}")
            print(line)
    if args.json:
        args.json.write_text(json.dumps({"pages": pages, "runs": results, "f1": f1, "small_runs": small,
                                         "marginal_cpu_s": margin, "reference_loops": loops,
                                         "reference_factor": factor}, indent=1))


if __name__ == "__main__":
    main()
