"""Every command of ``python -m pipelines``, registered once.

One ``Stage`` per command: the module that implements it (``add_arguments(parser)`` and
``run(args, beam_args) -> summary``), its help line, the files a run writes into ``--output`` (the
patterns ``outputs.run_stage`` clears on ``--overwrite`` and lists), whether ``--output`` is a
directory the run creates and locks, where the stage writes inside ``OUTPUT/<snapshot>/`` when
``pipelines all`` chains it, and the Flex Template parameters of the command the template runs.

Everything else is derived from this table: the sub-commands and their help (``pipelines.cli``),
the order and folders of ``pipelines all`` and of its completion manifest
(``pipelines.all_stages``, ``pipelines.completion``), the template launcher's parameter mapping
(``pipelines.template_main``), and the image's import check (``python -m pipelines.stages``, run
by ``infra/dataflow/Dockerfile``).  ``tests/test_stage_registry.py`` fails when the stage
modules, ``infra/dataflow/metadata.json`` or the Terraform defaults drift from it.

Adding a stage: write ``pipelines/<name>.py`` with ``add_arguments``/``run``, add one ``Stage``
below (with ``snapshot_dir`` when ``pipelines all`` should run it, in pipeline order), and wire
its graph into ``all_stages.build_all`` if it is chained.

This module imports no stage (importing it is cheap and Beam-free); ``import_stage`` loads one.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Mapping, Sequence

from tokenization.manifest import MANIFEST_NAME, TOKENIZER_NAME


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    help: str
    # Files a run writes under --output (globs relative to it); outputs.run_stage removes exactly
    # these on --overwrite and refuses an --output holding anything else.
    outputs: tuple[str, ...] = ()
    # --output is a directory the run creates: checked before any work and locked while writing.
    writes_output: bool = False
    # Sub-folder of OUTPUT/<snapshot>/ when `pipelines all` chains this stage; None: not chained.
    snapshot_dir: str | None = None
    # Flex Template parameter -> option of this command (infra/dataflow/metadata.json).
    template_parameters: Mapping[str, str] = field(default_factory=dict)


TOKENIZE_STAGING = "_staging"   # tokenize writes shards here first, then renames them into place

REGISTRY: tuple[Stage, ...] = (
    Stage("extract", "pipelines.extract",
          "WARC files or a Common Crawl snapshot -> documents in Parquet",
          outputs=("*.parquet", "dead-letter/*.jsonl", "summary.json"),
          writes_output=True, snapshot_dir="extracted"),
    Stage("refine", "pipelines.refine",
          "documents -> quality/language/toxicity/PII/consent filtered documents",
          outputs=("*.parquet", "removed/*.parquet", "rejected/*.jsonl", "summary.json"),
          writes_output=True, snapshot_dir="refined"),
    Stage("dedup", "pipelines.dedup",
          "documents -> URL, line and MinHash near-duplicate deduplicated documents",
          outputs=("*.parquet", "removed/part-*.parquet", "rejected/*.jsonl", "summary.json"),
          writes_output=True),
    Stage("tokenize", "pipelines.tokenize",
          "documents -> tokenized Megatron-format shards + manifest",
          outputs=(MANIFEST_NAME, TOKENIZER_NAME, "train-*", "val-*", "summary.json", "dead-letter/*.jsonl",
                   f"{TOKENIZE_STAGING}/*"),
          writes_output=True, snapshot_dir="shards"),
    Stage("all", "pipelines.all_stages",
          "extract -> refine -> tokenize for a snapshot, in one command",
          writes_output=True,
          template_parameters={"snapshot": "--snapshot", "max_warcs": "--max-warcs", "source": "--source",
                               "output": "--output", "config": "--config", "stages": "--stages",
                               "tokenizer": "--tokenizer"}),
    Stage("report", "pipelines.report",
          "a run directory -> report.html (funnel, languages, thresholds, examples) + datacard.md"),
)

STAGES: dict[str, Stage] = {s.name: s for s in REGISTRY}
# `pipelines all`: the chained stages in pipeline order, and the folder each writes.
CHAIN: tuple[str, ...] = tuple(s.name for s in REGISTRY if s.snapshot_dir)
SNAPSHOT_DIRS: dict[str, str] = {s.name: s.snapshot_dir for s in REGISTRY if s.snapshot_dir}
# The command the Flex Template launches (the one stage with template parameters).
(TEMPLATE_STAGE,) = [s.name for s in REGISTRY if s.template_parameters]


def stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; choose from {', '.join(STAGES)}") from None


def output_patterns(name: str) -> tuple[str, ...]:
    """What a run of stage ``name`` writes under its --output (for outputs.run_stage)."""
    return stage(name).outputs


def import_stage(name: str) -> ModuleType:
    """The stage's module; every stage is required, so an ImportError propagates."""
    return importlib.import_module(stage(name).module)


def chain_regex(names: Sequence[str] = CHAIN) -> str:
    """The Flex Template ``stages`` parameter's pattern: a comma list of chained stage names."""
    alt = "|".join(names)
    return f"^({alt})(,({alt}))*$"


def main() -> int:
    """``python -m pipelines.stages``: import every registered stage module (the image build's check
    that nothing a stage needs is missing; a missing one raises, failing the build); one line each."""
    for s in REGISTRY:
        import_stage(s.name)
        print(f"{s.name}: {s.module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
