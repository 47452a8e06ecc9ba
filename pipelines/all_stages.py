"""``python -m pipelines all``: extract -> refine -> tokenize for one Common Crawl snapshot, as ONE job.

This is what the Dataflow Flex Template and the monthly schedule run.  The launcher side (this
process) resolves ``latest`` once, so every stage and the completion manifest agree on one
snapshot id; it stops early when ``OUTPUT/<snapshot>/_COMPLETE.json`` already names the same
config hash; otherwise it removes any old manifest and the old outputs of the stages it will run,
then builds a single Beam graph::

    WARC list --> Extract/... --> OUTPUT/<snapshot>/extracted/  (document paths flow on)
              --> Refine/...  --> OUTPUT/<snapshot>/refined/    (kept-file paths flow on)
              --> [TrainTokenizer/... --> OUTPUT/<snapshot>/tokenizer.json]
              --> Tokenize/... --> OUTPUT/<snapshot>/shards/
    every stage's summary --> WriteCompletion --> OUTPUT/<snapshot>/_COMPLETE.json (last)

Stages hand each other the paths of the files they have written, so a stage reads its input only
after it exists, without listing directories between jobs.  On Dataflow that is one job (what a
Flex Template launch creates); in template mode (``--template_location``, set by the Flex
launcher) this process only writes the job description.  A job that dies half-way never reaches
WriteCompletion, so no manifest exists and the next scheduled run redoes the snapshot.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from typing import Any, Mapping, Sequence

import apache_beam as beam

from pipelines import completion, outputs
from pipelines import stages as registry
from pipelines.cli import CliError
from pipelines.inputs import list_inputs, visible
from tokenization.manifest import TOKENIZER_NAME

log = logging.getLogger("pipelines.all")

TRAIN = "train"
# The resolved WARC list, written by the launcher next to the outputs and read by the job: a
# whole snapshot's 90,000 URLs (~11 MB) inside the job graph would pass Dataflow's 10 MB limit.
INPUT_LIST = "input_warcs.txt"
DRY_RUN = "dry run"


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", required=True,
                        help="Common Crawl snapshot id (CC-MAIN-YYYY-WW) or 'latest' (resolved once, up front)")
    parser.add_argument("--max-warcs", type=int, default=None,
                        help="process a deterministic sample of N WARC files (default: the whole snapshot)")
    parser.add_argument("--source", choices=("s3", "https"), default="https",
                        help="read Common Crawl from S3 (needs AWS credentials) or HTTPS (default https)")
    parser.add_argument("--output", required=True,
                        help="output root (local, gs:// or s3://); results go to OUTPUT/<snapshot>/")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer.json or tiktoken BPE file (local, gs://, s3://, https://), or "
                             "'train' to train a BPE tokenizer on the refined documents "
                             "(config tokenize.train); needed when tokenize is among --stages")
    parser.add_argument("--stages", default=",".join(completion.STAGE_ORDER),
                        help="comma list of stages to run, contiguous and in order "
                             f"(default {','.join(completion.STAGE_ORDER)})")
    parser.add_argument("--s3-endpoint-url", default=None,
                        help="S3 endpoint override for reading Common Crawl (e.g. a local S3 for tests)")
    parser.add_argument("--force", action="store_true",
                        help="run even when OUTPUT/<snapshot>/_COMPLETE.json says it is done")
    from pipelines import decontaminate

    decontaminate.add_arguments(parser)   # --benchmark NAME=PATH_OR_GLOB, applied in refine


# ---------------------------------------------------------------------------------------- helpers
def fetch_bytes(location: str, settings) -> bytes:
    """Whole small file (config, tokenizer) from a path, gs://, s3:// or http(s):// URL."""
    from pipelines.sources import open_binary

    try:
        with open_binary(location, settings) as fh:
            return fh.read()
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise FileNotFoundError(f"{location}: {exc}") from None


def localize(location: str, data: bytes, workdir: str, name: str) -> str:
    """A local path holding ``data`` (stages read --config/--tokenizer from local files)."""
    if "://" not in location or location.startswith("file://"):
        return location
    path = os.path.join(workdir, name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


# ---------------------------------------------------------------------------------------- graph
class Stage(beam.PTransform):
    """Runs a stage's ``build(pipeline, ...)`` under one label, so the stages' own step names
    (Inputs, WriteSummary, ...) stay unique inside the single job (refine is a composite
    PTransform itself and needs no wrapper)."""

    def __init__(self, build_fn):
        super().__init__()
        self.build_fn = build_fn

    def expand(self, pbegin):
        return self.build_fn(pbegin)


class WriteCompletionFn(beam.DoFn):
    """Writes ``_COMPLETE.json`` once every stage's summary exists, i.e. after all their outputs."""

    def __init__(self, output: str, snapshot: str, config_hash: str, stages: Sequence[str],
                 params: Mapping[str, Any]):
        self.output = output
        self.snapshot = snapshot
        self.config_hash = config_hash
        self.stages = list(stages)
        self.params = dict(params)

    def process(self, _, **by_stage):
        summaries = {name: by_stage[name] for name in completion.STAGE_ORDER if by_stage.get(name) is not None}
        root = completion.snapshot_dir(self.output, self.snapshot)
        warcs = read_lines(outputs.join(root, INPUT_LIST))
        manifest = completion.build_manifest(
            snapshot=self.snapshot, config_hash=self.config_hash, input_warcs=warcs, stages=self.stages,
            stage_summaries=summaries, files=completion.list_output_files(root), params=self.params)
        completion.write_completion(self.output, self.snapshot, manifest)
        yield manifest


def read_lines(path: str) -> list[str]:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return [line for line in fh.read().decode("utf-8").splitlines() if line]


def matched_files(pipeline, label: str, pattern: str):
    """Paths matching ``pattern`` that pass the listing rule's hidden-name check, listed by the job
    (a list in the graph could be too large)."""
    from apache_beam.io import fileio

    return (pipeline | f"{label}Match" >> fileio.MatchFiles(pattern)
            | f"{label}Paths" >> beam.Map(lambda m: m.path)
            | f"{label}Visible" >> beam.ParDo(_Visible()))


class _Visible(beam.DoFn):
    """The listing rule's hidden-name check (``pipelines.inputs``) on paths matched in the job."""

    def setup(self):
        self.markers: dict = {}

    def process(self, path: str):
        if visible(path, self.markers):
            yield path


class Plan:
    """Everything the launcher decided before building the graph."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def build_all(pipeline, plan: Plan):
    """The single job: the planned stages chained by the paths they write, then the manifest."""
    from pipelines import extract, refine, tokenize

    cfg, dirs = plan.cfg, plan.dirs
    summaries = {}
    upstream = None  # PCollection of the files the previous stage wrote
    if "extract" in plan.stages:
        warcs = (pipeline | "InputList" >> beam.Create([outputs.join(plan.root, INPUT_LIST)])
                 | "ReadInputList" >> beam.FlatMap(read_lines))
        out = pipeline | "Extract" >> Stage(lambda p: extract.build(
            p, warcs, dirs["extract"], cfg, plan.extract_meta, plan.splits))
        summaries["extract"], upstream = out["summary"], out["documents"]
    if "refine" in plan.stages:
        inputs = upstream if upstream is not None else \
            matched_files(pipeline, "RefineInputs", outputs.join(dirs["extract"], "*.parquet"))
        out = inputs | "Refine" >> refine.Refine(dirs["refine"], cfg,
                                                 refine.summary_meta(cfg, dirs["extract"], None))
        summaries["refine"], upstream = out["summary"], out["kept"]
    if "tokenize" in plan.stages:
        inputs = upstream if upstream is not None else \
            matched_files(pipeline, "TokenizeInputs", outputs.join(dirs["refine"], "*.parquet"))
        tokenizer = plan.tokenizer_json
        if tokenizer is None:
            from pipelines.train_tokenizer import TrainTokenizer

            tokenizer = inputs | "TrainTokenizer" >> TrainTokenizer(
                cfg["tokenize"], outputs.join(plan.root, TOKENIZER_NAME), dirs["refine"])
        s = plan.tokenize_settings
        out = pipeline | "Tokenize" >> Stage(lambda p: tokenize.build(
            p, inputs, dirs["tokenize"], s, tokenizer, plan.vocab_size, plan.tokenizer_source,
            tokenize.stage_manifest_config(s, cfg, dirs["refine"])))
        summaries["tokenize"] = out["summary"]
    return (pipeline
            | "CompletionTrigger" >> beam.Create([None])
            | "WriteReport" >> beam.ParDo(
                WriteReportFn(plan.root, plan.cfg, plan.snapshot),
                **{name: beam.pvalue.AsSingleton(pc) for name, pc in summaries.items()})
            | "WriteCompletion" >> beam.ParDo(
                WriteCompletionFn(plan.output, plan.snapshot, plan.config_hash, plan.stages, plan.params),
                **{name: beam.pvalue.AsSingleton(pc) for name, pc in summaries.items()}))


class WriteReportFn(beam.DoFn):
    """Once every stage's summary exists: ``report.html`` + ``datacard.md`` in OUTPUT/<snapshot>/
    (pipelines.report reads and writes through Beam's FileSystems, so gs:// works), just before
    the manifest, which then lists them.  A report that fails is logged as an error; the data is
    complete without it."""

    def __init__(self, root: str, cfg: Mapping[str, Any], snapshot: str):
        self.root = root
        self.cfg = dict(cfg)
        self.snapshot = snapshot

    def process(self, trigger, **summaries):
        from pipelines.report import write_report

        try:
            result = write_report(self.root, self.cfg, context={"runner": "python -m pipelines all (one job)",
                                                                "snapshot": self.snapshot})
            log.info("all: report %s", result["report"])
        except Exception as exc:  # the data is complete; the report is only a view of it
            log.error("all: could not write the report under %s: %s: %s", self.root, type(exc).__name__, exc)
        yield trigger


def build_noop(pipeline, snapshot: str, manifest_at: str):
    """A template launch must produce a job; when the snapshot is already done it is this one step
    (one worker for a minute or two) that only logs why nothing else runs."""
    note = f"{snapshot} is already complete with this config ({manifest_at}); nothing to do"
    return (pipeline | "AlreadyComplete" >> beam.Create([note])
            | "Log" >> beam.Map(lambda text: log.warning("%s", text) or text))


# ---------------------------------------------------------------------------------------- run
def describe_only(options) -> str | None:
    """How this run only describes the job instead of running it: the template file the Flex
    launcher asked for (``--template_location``), ``"dry run"`` (``--dry_run``), or None."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, TestOptions

    template = options.view_as(GoogleCloudOptions).template_location
    if template:
        return template
    return DRY_RUN if options.view_as(TestOptions).dry_run else None


def load_tokenizer(args, cfg, s: Mapping[str, Any], settings, workdir: str) -> tuple[str | None, int, str, dict]:
    """(tokenizer JSON or None when trained in the job, vocab size fixing the dtype, source name,
    identity for the config hash); ``s`` are the resolved tokenize settings."""
    import posixpath

    from pipelines import tokenize
    from tokenization.tokenizer import tokenizer_json, vocab_size

    if args.tokenizer == TRAIN:
        train = dict(cfg["tokenize"]["train"])
        return None, int(train["vocab_size"]), TOKENIZER_NAME, {"train": train}
    data = fetch_bytes(args.tokenizer, settings)
    path = localize(args.tokenizer, data, workdir, "tokenizer-input.json")
    tok = tokenize.load_stage_tokenizer(path, s)
    return tokenizer_json(tok), vocab_size(tok), posixpath.basename(args.tokenizer), \
        {"sha256": hashlib.sha256(data).hexdigest()}


def clear_stage_outputs(dirs: Mapping[str, str], stages: Sequence[str], root: str, training: bool) -> None:
    """A rerun replaces everything the planned stages write (a failed run may have left part of it).
    The stage folders are this command's own (named by it under OUTPUT/<snapshot>/), so every file
    matching a stage's output patterns goes, with a ``_SUCCESS`` a standalone stage run left."""
    for stage in stages:
        outputs.remove_matching(dirs[stage], (*registry.output_patterns(stage), outputs.SUCCESS_NAME))
    if "tokenize" in stages and training:
        outputs.remove_matching(root, [TOKENIZER_NAME])


def check_first_inputs(stages: Sequence[str], dirs: Mapping[str, str]) -> None:
    """A run that starts after extract reads what an earlier run left in OUTPUT: fail now, with the
    directory named, when there is nothing there (the job lists the files itself)."""
    if stages[0] == "refine":
        list_inputs(dirs["extract"])
    elif stages[0] == "tokenize":
        list_inputs(dirs["refine"])


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import DirectOptions

    from pipelines import decontaminate, extract, refine, tokenize
    from pipelines.config import load_config
    from pipelines.runner import is_local, make_options, new_pipeline
    from pipelines.sources import SourceSettings

    options = make_options(beam_args)
    # The manifest check and output clean-up touch OUTPUT before any pipeline exists; Beam's S3
    # filesystem needs the pipeline options (--s3_endpoint_url, keys) to open a client at all.
    FileSystems.set_options(options)
    local = is_local(options)
    described = describe_only(options)
    stages = completion.parse_stages(args.stages)
    outputs.check_io(args.output, {"--benchmark": [path for _, path in args.benchmark or []],
                                   "--tokenizer": None if args.tokenizer == TRAIN else args.tokenizer})
    if "tokenize" in stages and not args.tokenizer:
        raise CliError("--tokenizer is required when tokenize is among --stages (a file, a URL, or 'train')")
    with tempfile.TemporaryDirectory(prefix="pipelines-all-") as workdir:
        bootstrap = SourceSettings(s3_endpoint_url=args.s3_endpoint_url)
        config_path = None
        if args.config:
            config_path = localize(args.config, fetch_bytes(args.config, bootstrap), workdir, "config.yaml")
        cfg = decontaminate.with_cli_benchmarks(load_config(config_path), args.benchmark)
        if "refine" in stages:
            refine.validate(cfg)
        resolve_args = argparse.Namespace(snapshot=args.snapshot, input=None, max_warcs=args.max_warcs,
                                          source=args.source, s3_endpoint_url=args.s3_endpoint_url)
        warcs, source_meta = extract.resolve_inputs(resolve_args, cfg)
        snapshot_id = source_meta["snapshot"]
        if args.snapshot == "latest":
            print(f"all: 'latest' is {snapshot_id}")
        tok_json, vsize, tok_source, tokenizer_id, tokenize_settings = None, 0, "", None, None
        if "tokenize" in stages:
            tokenize_settings = tokenize.resolve_settings(argparse.Namespace(), cfg)
            tok_json, vsize, tok_source, tokenizer_id = load_tokenizer(
                args, cfg, tokenize_settings, SourceSettings.from_dict(cfg["sources"]), workdir)

    params = {"max_warcs": args.max_warcs, "source": args.source, "stages": stages, "tokenizer": tokenizer_id}
    chash = completion.run_config_hash(cfg, params)
    root = completion.snapshot_dir(args.output, snapshot_id)
    manifest_at = completion.manifest_path(args.output, snapshot_id)
    if not args.force and completion.is_complete(args.output, snapshot_id, chash):
        print(f"all: {snapshot_id} is already complete with this config ({manifest_at}); nothing to do")
        manifest = completion.read_manifest(args.output, snapshot_id)
        if described:
            with new_pipeline(beam_args) as pipeline:
                build_noop(pipeline, snapshot_id, manifest_at)
        return {**manifest, "skipped": True}
    dirs = {s: completion.stage_dir(args.output, snapshot_id, s) for s in completion.STAGE_ORDER}
    # A job run here holds OUTPUT/<snapshot>/_RUNNING.json while it writes, so a second `all` on the
    # same snapshot refuses (one of a dead local pid is taken over).  A described job runs
    # elsewhere after this process exits: it holds no lock.
    guard = (outputs.StageOutput(root, "all", (), overwrite=True, break_lock=getattr(args, "break_lock", False))
             if described is None else contextlib.nullcontext())
    with guard:
        if described != DRY_RUN:  # a dry run touches nothing
            if completion.clear_completion(args.output, snapshot_id):
                print(f"all: removed {manifest_at} (other config or --force); redoing {snapshot_id}")
            clear_stage_outputs(dirs, stages, root, training=tok_json is None)
            outputs.write_bytes_atomic(outputs.join(root, INPUT_LIST),
                                       "".join(w + "\n" for w in warcs).encode("utf-8"))
        check_first_inputs(stages, dirs)
        workers = options.view_as(DirectOptions).direct_num_workers if local else None
        plan = Plan(
            stages=stages, cfg=cfg, dirs=dirs, root=root, output=args.output, snapshot=snapshot_id,
            config_hash=chash, params=params,
            splits=extract.plan_splits(warcs, cfg["extract"]["splits_per_file"], workers,
                                        cfg["extract"]["output_chunk_bytes"]),
            extract_meta=extract.summary_meta(source_meta, warcs, cfg),
            tokenizer_json=tok_json, vocab_size=vsize,
            tokenizer_source=tok_source, tokenize_settings=tokenize_settings)

        where = "locally" if local else (f"described only ({described})" if described else "as one job")
        print(f"all: {snapshot_id}, {len(warcs)} WARC file(s) from {args.source}, stages {','.join(stages)} "
              f"-> {root}, {where}")
        started = time.monotonic()
        with new_pipeline(beam_args) as pipeline:
            build_all(pipeline, plan)
        if described:
            print(f"all: job described ({described}), nothing run here; the job writes {manifest_at} when it "
                  "succeeds")
            return {"snapshot": snapshot_id, "config_hash": chash, "described": described}
        manifest = completion.read_manifest(args.output, snapshot_id)
        if manifest is None:
            raise RuntimeError(f"the job finished but wrote no {manifest_at}")
        print_stage_summaries(stages, dirs, time.monotonic() - started)
        print(f"\nall: {snapshot_id} done in {time.monotonic() - started:.1f}s; {len(manifest['files'])} files under "
              f"{root}; completion manifest {manifest_at}")
        print(f"all: report {outputs.join(root, 'report.html')} (and datacard.md)")
        return manifest


def print_stage_summaries(stages: Sequence[str], dirs: Mapping[str, str], seconds: float) -> None:
    print("\n(one job: each stage's time below is the whole job's)")
    for stage in stages:
        module = registry.import_stage(stage)
        summary = outputs.read_json(outputs.join(dirs[stage], "summary.json"))
        print()
        module.print_summary(summary, dirs[stage], seconds)
