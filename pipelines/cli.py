"""Command-line plumbing shared by every stage.

Each stage module exposes ``add_arguments(parser)`` and ``run(args, beam_args) -> dict`` (its
summary); the sub-commands, their modules and help, and which ones create and lock their
``--output`` (outputs.StageOutput: _RUNNING.json, _SUCCESS) come from ``pipelines.stages``.
Arguments the stage does not know are Beam pipeline options; they are checked against every
option Beam registers so that a typo (``--ouput``) is a one-line error instead of being silently
ignored, while ``--runner DataflowRunner --project ...`` pass through untouched.
A local ``--output`` that cannot be written (an existing file, an unwritable parent) is refused
before the stage starts (``config.check_output_dir``), not found after the whole run.  What each
stage refuses about its output (overlap with an input, a lock, foreign files) is in
``pipelines.outputs``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from pipelines.config import check_output_dir
from pipelines.stages import REGISTRY, stage as registered


class CliError(Exception):
    """A user error on the command line; printed as one line, exit status 2."""


def _beam_option_parser() -> argparse.ArgumentParser:
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    seen: set[type] = set()
    stack = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # an option registered by two classes; the first registration is enough
    return parser


def check_beam_args(beam_args: Sequence[str]) -> list[str]:
    """Return ``beam_args`` if every one is a Beam option, else raise CliError naming the bad one."""
    if not beam_args:
        return []
    try:
        _, unknown = _beam_option_parser().parse_known_args(list(beam_args))
    except SystemExit:  # argparse exits on a bad value of a known option
        raise CliError(f"bad Beam pipeline option value in: {' '.join(beam_args)}") from None
    if unknown:
        raise CliError(f"unknown option {unknown[0]!r} (not a stage option nor a Beam pipeline option; "
                       "see --help)")
    return list(beam_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines",
        description="Common Crawl -> clean, deduplicated, tokenized training data, on Apache Beam. "
                    "Options a stage does not define are passed to Beam (e.g. --runner DataflowRunner "
                    "--project P --region R --temp_location gs://...). Without --runner the job runs "
                    "locally on all cores.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Beam's INFO logging")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE")
    for stage in REGISTRY:  # pipelines.stages
        mod = importlib.import_module(stage.module)  # every stage is required: a missing one fails at start
        sp = sub.add_parser(stage.name, help=stage.help, description=stage.help, allow_abbrev=False)
        sp.add_argument("--config", help="YAML config overriding configs/defaults/*.yaml")
        if stage.writes_output:
            sp.add_argument("--break-lock", action="store_true",
                            help="take over --output although its _RUNNING.json lock says another run is "
                                 "writing there (use only when that run is gone)")
        mod.add_arguments(sp)
        sp.set_defaults(_module=mod)
    return parser


class _BeamNoise(logging.Filter):
    """Drops Beam's start-up warnings that say nothing to a user of a local or Dataflow run."""

    NOISE = ("apitools not found", "No semi_persistent_directory found", "Discarding unparseable args")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.NOISE)


def _missing_module(exc: ImportError) -> str:
    """One line for a required module that cannot be imported (exit status 1, nothing run)."""
    return (f"error: required module {exc.name or '?'} cannot be imported ({exc}); the installation is "
            "incomplete: reinstall the project's requirements (make venv)")


def main(argv: Sequence[str] | None = None) -> int:
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.addFilter(_BeamNoise())
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
    try:
        parser = build_parser()
    except ImportError as exc:
        raise SystemExit(_missing_module(exc)) from exc
    args, rest = parser.parse_known_args(argv)
    if not getattr(args, "stage", None):
        parser.print_help()
        return 2
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        # Beam warns about optional GCP clients on every start; it is noise for local runs.
        logging.getLogger().setLevel(logging.ERROR)
        logging.getLogger("pipelines").setLevel(logging.INFO)
    try:
        if registered(args.stage).writes_output:
            check_output_dir(args.output, "--output")  # before any work, not after the whole run
        beam_args = check_beam_args(rest)
        args._module.run(args, beam_args)
    except ImportError as exc:
        raise SystemExit(_missing_module(exc)) from exc
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, ValueError) as exc:
        # Bad paths, missing inputs, bad config values: one line naming the problem.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
