"""``python -m pipelines all``: extract -> refine -> tokenize for one Common Crawl snapshot.

This is what the Dataflow Flex Template and the monthly schedule run.  It resolves ``latest``
once, up front, so every stage (and the completion manifest) agrees on one snapshot id; it stops
early when ``OUTPUT/<snapshot>/_COMPLETE.json`` already names the same config hash; otherwise it
removes any old manifest, runs each stage's own ``run`` (on whatever runner the Beam options
name: one Dataflow job per stage) into ``OUTPUT/<snapshot>/{extracted,refined,shards}`` with
overwrite, and writes the manifest only after every stage has succeeded.  A run that dies half-way
leaves no manifest, so the next scheduled run simply redoes the snapshot.
"""
from __future__ import annotations

import argparse
import hashlib
import heapq
import importlib
import logging
import os
import tempfile
import time
from typing import Any, Iterator, Mapping, Sequence

from pipelines import completion, outputs
from pipelines.cli import CliError

log = logging.getLogger("pipelines.all")

STAGE_MODULES = {"extract": "pipelines.extract", "refine": "pipelines.refine", "tokenize": "pipelines.tokenize"}
TRAIN = "train"
TOKENIZER_NAME = "tokenizer.json"


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
                             "(default extract,refine,tokenize)")
    parser.add_argument("--s3-endpoint-url", default=None,
                        help="S3 endpoint override for reading Common Crawl (e.g. a local S3 for tests)")
    parser.add_argument("--force", action="store_true",
                        help="run even when OUTPUT/<snapshot>/_COMPLETE.json says it is done")


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


def stage_namespace(stage: str, argv: Sequence[str]) -> argparse.Namespace:
    """The stage's arguments exactly as its own ``add_arguments`` parses them (defaults included)."""
    module = importlib.import_module(STAGE_MODULES[stage])
    parser = argparse.ArgumentParser(prog=f"pipelines {stage}", allow_abbrev=False)
    parser.add_argument("--config")
    module.add_arguments(parser)
    try:
        return parser.parse_args(list(argv))
    except SystemExit:
        raise CliError(f"internal: bad arguments for the {stage} stage: {' '.join(argv)}") from None


def stage_argv(stage: str, *, snapshot: str, output: str, snapshot_root: str, config: str | None,
               max_warcs: int | None, source: str, s3_endpoint_url: str | None,
               tokenizer_path: str | None) -> list[str]:
    """Command line of one stage inside ``OUTPUT/<snapshot>/``; always ``--overwrite`` so a rerun
    after a failure replaces partial outputs."""
    dirs = {s: outputs.join(snapshot_root, d) for s, d in completion.STAGE_DIRS.items()}
    argv = ["--config", config] if config else []
    if stage == "extract":
        argv += ["--snapshot", snapshot, "--source", source, "--output", dirs["extract"]]
        if max_warcs is not None:
            argv += ["--max-warcs", str(max_warcs)]
        if s3_endpoint_url:
            argv += ["--s3-endpoint-url", s3_endpoint_url]
    elif stage == "refine":
        argv += ["--input", dirs["extract"], "--output", dirs["refine"]]
    elif stage == "tokenize":
        if not tokenizer_path:
            raise CliError("--tokenizer is required when tokenize is among --stages")
        argv += ["--input", dirs["refine"], "--tokenizer", tokenizer_path, "--output", dirs["tokenize"]]
    else:  # pragma: no cover - parse_stages rejects it first
        raise CliError(f"unknown stage {stage}")
    return argv + ["--overwrite"]


def stage_beam_args(beam_args: Sequence[str], stage: str) -> list[str]:
    """Beam options for one stage: a given --job_name gets a ``-<stage>`` suffix, since each stage
    is its own job (Dataflow job names must be unique among active jobs)."""
    out = []
    args = list(beam_args)
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--job_name="):
            out.append(f"{a}-{stage}")
        elif a == "--job_name" and i + 1 < len(args):
            out += [a, f"{args[i + 1]}-{stage}"]
            i += 1
        else:
            out.append(a)
        i += 1
    return out


def refined_files(refined_dir: str) -> list[str]:
    """Kept documents of refine (``part-*.parquet`` at the top level, not removed/)."""
    from apache_beam.io.filesystems import FileSystems

    found = FileSystems.match([outputs.join(refined_dir, "*.parquet")])[0].metadata_list
    return sorted(m.path for m in found)


def _sample_texts(files: Sequence[str], sample_docs: int | None, seed: int) -> Iterator[str]:
    """Texts of the ``sample_docs`` kept documents with the smallest seeded hash (two passes, so
    memory holds only small (hash, file, row) tuples)."""
    import pyarrow.fs as pafs

    from tokenization.shards import doc_hash
    from tokenization.tokenizer import iter_parquet_docs

    def fs_path(path: str):
        if "://" in path:
            return pafs.FileSystem.from_uri(path)
        return pafs.LocalFileSystem(), path

    opened = [fs_path(p) for p in files]
    if sample_docs is None:
        for fs, path in opened:
            for _, _, text in iter_parquet_docs(fs, path):
                yield text
        return
    chosen = heapq.nsmallest(sample_docs, ((doc_hash(seed, doc_id), fi, row)
                                           for fi, (fs, path) in enumerate(opened)
                                           for row, doc_id, _ in iter_parquet_docs(fs, path)))
    wanted: dict[int, set[int]] = {}
    for _, fi, row in chosen:
        wanted.setdefault(fi, set()).add(row)
    for fi in sorted(wanted):
        fs, path = opened[fi]
        for row, _, text in iter_parquet_docs(fs, path):
            if row in wanted[fi]:
                yield text


def train_tokenizer(refined_dir: str, cfg: Mapping[str, Any]) -> tuple[str, dict]:
    """BPE trained on the refined (kept) documents with config tokenize.train; (json, info)."""
    from tokenization.tokenizer import train_bpe

    t = cfg["tokenize"]["train"]
    files = refined_files(refined_dir)
    if not files:
        raise FileNotFoundError(f"--tokenizer train: no refined documents in {refined_dir}")
    counted = {"documents": 0}

    def texts():
        for text in _sample_texts(files, t["sample_docs"], cfg["tokenize"]["seed"]):
            counted["documents"] += 1
            yield text

    tok = train_bpe(texts(), t["vocab_size"], min_frequency=t["min_frequency"])
    if counted["documents"] == 0:
        raise ValueError(f"--tokenizer train: the refined documents in {refined_dir} have no text")
    return tok.to_str(pretty=True), {"vocab_size": tok.get_vocab_size(), "documents": counted["documents"]}


# ---------------------------------------------------------------------------------------- run
def resolve(args, cfg) -> tuple[str, list[str], Any]:
    from pipelines.sources import SourceSettings, resolve_snapshot

    if args.max_warcs is not None and args.max_warcs < 1:
        raise CliError(f"--max-warcs must be at least 1, got {args.max_warcs}")
    if args.s3_endpoint_url:
        cfg["sources"]["s3_endpoint_url"] = args.s3_endpoint_url
    settings = SourceSettings.from_dict(cfg["sources"])
    snapshot_id, warcs = resolve_snapshot(args.snapshot, args.source, settings, max_warcs=args.max_warcs,
                                          seed=cfg["sources"]["sample_seed"])
    return snapshot_id, warcs, settings


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    from apache_beam.io.filesystems import FileSystems

    from pipelines.config import load_config
    from pipelines.runner import make_options
    from pipelines.sources import SourceSettings

    # The manifest check and stage set-up touch OUTPUT before any pipeline exists; Beam's S3
    # filesystem needs the pipeline options (--s3_endpoint_url, keys) to open a client at all.
    FileSystems.set_options(make_options(beam_args))
    stages = completion.parse_stages(args.stages)
    if "tokenize" in stages and not args.tokenizer:
        raise CliError("--tokenizer is required when tokenize is among --stages (a file, a URL, or 'train')")
    with tempfile.TemporaryDirectory(prefix="pipelines-all-") as workdir:
        bootstrap = SourceSettings(s3_endpoint_url=args.s3_endpoint_url)
        config_path = None
        if args.config:
            config_path = localize(args.config, fetch_bytes(args.config, bootstrap), workdir, "config.yaml")
        cfg = load_config(config_path)
        snapshot_id, warcs, settings = resolve(args, cfg)
        if args.snapshot == "latest":
            print(f"all: 'latest' is {snapshot_id}")

        tokenizer_path, tokenizer_id = None, None
        if "tokenize" in stages:
            if args.tokenizer == TRAIN:
                tokenizer_id = {"train": dict(cfg["tokenize"]["train"])}
            else:
                data = fetch_bytes(args.tokenizer, settings)
                tokenizer_id = {"sha256": hashlib.sha256(data).hexdigest()}
                tokenizer_path = localize(args.tokenizer, data, workdir, "tokenizer-input.json")

        params = {"max_warcs": args.max_warcs, "source": args.source, "stages": stages, "tokenizer": tokenizer_id}
        chash = completion.run_config_hash(cfg, params)
        root = completion.snapshot_dir(args.output, snapshot_id)
        manifest_at = completion.manifest_path(args.output, snapshot_id)
        if not args.force and completion.is_complete(args.output, snapshot_id, chash):
            print(f"all: {snapshot_id} is already complete with this config ({manifest_at}); nothing to do")
            manifest = completion.read_manifest(args.output, snapshot_id)
            return {**manifest, "skipped": True}
        if completion.clear_completion(args.output, snapshot_id):
            print(f"all: removed {manifest_at} (other config or --force); redoing {snapshot_id}")

        print(f"all: {snapshot_id}, {len(warcs)} WARC file(s) from {args.source}, stages {','.join(stages)} "
              f"-> {root}")
        summaries: dict[str, dict] = {}
        started = time.monotonic()
        for stage in stages:
            if stage == "tokenize" and args.tokenizer == TRAIN:
                refined = completion.stage_dir(args.output, snapshot_id, "refine")
                tok_json, info = train_tokenizer(refined, cfg)
                tokenizer_path = os.path.join(workdir, TOKENIZER_NAME)
                with open(tokenizer_path, "w", encoding="utf-8") as fh:
                    fh.write(tok_json)
                outputs.write_bytes_atomic(outputs.join(root, TOKENIZER_NAME), tok_json.encode("utf-8"))
                print(f"all: trained a BPE tokenizer (vocab {info['vocab_size']}) on {info['documents']} "
                      f"refined documents -> {outputs.join(root, TOKENIZER_NAME)}")
            argv = stage_argv(stage, snapshot=snapshot_id, output=args.output, snapshot_root=root,
                              config=config_path, max_warcs=args.max_warcs, source=args.source,
                              s3_endpoint_url=args.s3_endpoint_url, tokenizer_path=tokenizer_path)
            print(f"\n==> {stage}")
            module = importlib.import_module(STAGE_MODULES[stage])
            summaries[stage] = module.run(stage_namespace(stage, argv), stage_beam_args(beam_args, stage))

        manifest = completion.build_manifest(
            snapshot=snapshot_id, config_hash=chash, input_warcs=warcs, stages=stages,
            stage_summaries=summaries, files=completion.list_output_files(root), params=params)
        completion.write_completion(args.output, snapshot_id, manifest)
    print(f"\nall: {snapshot_id} done in {time.monotonic() - started:.1f}s; {len(manifest['files'])} files under "
          f"{root}; completion manifest {manifest_at}")
    return manifest
