"""``python -m pipelines report --run DIR``: an HTML data report and a datasheet for one run.

Reads what the stages left in a run directory (``make run``'s ``out/`` or ``pipelines all``'s
``OUTPUT/<snapshot>/``: ``extracted/``, ``refined/``, ``shards/``, ``run/``; any may be missing
and its sections are then left out) and writes

* ``report.html`` (default ``DIR/report.html``): one self-contained page, no network needed;
* ``datacard.md`` next to it: the "Datasheets for Datasets" headings filled from the run.

Modules: ``layout`` (finding and reading files through Beam's FileSystems, so gs:// works),
``collect`` (one bounded-memory pass over kept/removed Parquet), ``whatif`` (threshold
distributions and alternatives), ``model`` (sections as data), ``plots`` (inline SVG),
``render`` (Jinja2, autoescaped) and ``datacard``.  Nothing is re-extracted or recomputed from
text except PII redaction of the few excerpts shown.
"""
from __future__ import annotations

import argparse
import logging
import os
import posixpath
import time
from typing import Any, Mapping

log = logging.getLogger("pipelines.report")

REPORT_NAME = "report.html"
DATACARD_NAME = "datacard.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True,
                        help="run directory (local, gs:// or s3://): make run's out/ or pipelines all's "
                             "OUTPUT/<snapshot>/ (an OUTPUT holding one snapshot works too)")
    parser.add_argument("--out", default=None,
                        help=f"where to write the HTML (default RUN/{REPORT_NAME}); {DATACARD_NAME} goes next to it")
    parser.add_argument("--examples", type=int, default=3, help="random example documents per removal rule (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the example sampling (default 0)")


def write_report(run: str, cfg: Mapping[str, Any] | None = None, *, out: str | None = None,
                 context: Mapping[str, Any] | None = None, examples: int = 3, seed: int = 0) -> dict:
    """Build and write report.html + datacard.md; returns {"report", "datacard", "problems", "model"}."""
    from pipelines import outputs
    from pipelines.config import load_config
    from pipelines.report import layout as lay
    from pipelines.report.datacard import render_datacard
    from pipelines.report.model import build
    from pipelines.report.render import render_html

    if examples < 0:
        raise ValueError("--examples must be 0 or more")
    root = lay.find_run_dir(run)
    cfg = load_config() if cfg is None else cfg
    model = build(lay.RunLayout(root), cfg, context, examples=examples, seed=seed)
    out = out or lay.join(root, REPORT_NAME)
    card = lay.join(posixpath.dirname(out) if "://" in out else (os.path.dirname(out) or "."), DATACARD_NAME)
    outputs.write_bytes_atomic(out, render_html(model).encode("utf-8"))
    outputs.write_bytes_atomic(card, render_datacard(model).encode("utf-8"))
    return {"report": out, "datacard": card, "problems": list(model["problems"]), "model": model}


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    from pipelines.config import load_config

    if beam_args:
        from pipelines.cli import CliError

        raise CliError(f"report takes no Beam options; got {' '.join(beam_args)}")
    started = time.monotonic()
    result = write_report(args.run, load_config(args.config), out=args.out, examples=args.examples, seed=args.seed)
    print(f"report: {result['report']} ({time.monotonic() - started:.1f}s)\n"
          f"datacard: {result['datacard']}")
    for problem in result["problems"][:5]:
        print(f"  could not read: {problem}")
    return {k: v for k, v in result.items() if k != "model"}
