"""The extract stage: WARC files (or a Common Crawl snapshot) -> documents in Parquet.

Graph::

    (input file, split) --Reshuffle--> ReadAndExtract (stream records, decide from headers,
                                                      decode charset, trafilatura, write chunks)
        main      -> names of the DIR/<file>-<chunk>.parquet files it wrote
        dead      -> key by input file -> GroupByKey -> DIR/dead-letter/<file>.jsonl
        outcomes  -> CombinePerKey(count) -> DIR/summary.json

Documents never cross a shuffle.  A file's records are grouped into chunks by offset
(``offset // extract.output_chunk_bytes``, offsets of the compressed input) and the ``splits``
readers of a file divide it by whole chunks (chunk ``c`` belongs to split ``c % splits``), so
every chunk is read by one reader, which sees its records once and in offset order: it buffers
one chunk's documents, writes ``DIR/<file>-<chunk>.parquet`` atomically (rows sorted by offset)
when the next chunk starts, and emits only the file name.  The names and bytes therefore do not
depend on the number of splits, workers or bundle order; a retried bundle rewrites the same
names with the same bytes; a reader holds at most one chunk's documents.  Each record produces
exactly one outcome.  The summary's ``records_read`` is counted by the reader itself (records
framed + unreadable regions, ``warc_framing.ReadStats``), not derived from the outcomes, and
``balance`` says whether it equals kept + dropped + dead-lettered; when it does not, the summary
and the printed report say so.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import posixpath
import re
import sys
import time
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions

from pipelines import outputs
from pipelines.writers import WriteDeadLettersFn
from pipelines.cli import CliError
from pipelines.config import config_hash, load_config
from pipelines.html_text import check_extractor, extractor_options
from pipelines.records import DEAD, DROPPED, KEPT, Outcome, dead_letter, extract_document, header_outcome, \
    read_error_outcome, want_body
from pipelines.runner import is_local, make_options, new_pipeline
from pipelines.schema import DOC_SCHEMA, extend
from pipelines.warc import ReadError, iter_records, local_opener, stream_opener
from pipelines.warc_framing import HeaderLimits, ReadStats

log = logging.getLogger("pipelines.extract")


def progress_logger() -> logging.Logger:
    """Progress lines written straight to this process's stderr.

    Beam routes worker log records through its logging service, where the launcher's level
    hides INFO; progress must reach the terminal (local runs inherit the workers' stderr) and
    the worker logs (Dataflow captures stderr) whatever the logging setup.
    """
    logger = logging.getLogger("pipelines.progress")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger

OUTCOMES = "outcomes"
DEAD_LETTERS = "dead"
STATS = "stats"
PROGRESS_EVERY = 5000  # records between progress lines of one reader (a CC WARC has ~100k)
STAGE_OUTPUTS = ("*.parquet", "dead-letter/*.jsonl", "summary.json")
READ_RECORDS, READ_ERRORS = "reader_records_framed", "reader_unreadable_regions"   # STATS keys


# ---------------------------------------------------------------------------------------- naming
def shard_name(warc_file: str) -> str:
    """Output file stem for one input: readable basename + hash of the full path (unique)."""
    base = posixpath.basename(warc_file.rstrip("/")) or "input"
    stem = re.sub(r"\.(warc|arc)(\.gz)?$", "", base, flags=re.I)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80]
    return f"{stem}-{hashlib.sha256(warc_file.encode()).hexdigest()[:8]}"


# ---------------------------------------------------------------------------------------- DoFns
def _opener(path: str, source_settings: Mapping[str, Any], opened: list):
    """Opener for ``path``; remote streams are kept in ``opened`` to report their retries."""
    from pipelines.sources import SourceSettings, open_binary
    from pipelines.sources.opener import local_path

    if "://" not in path or path.startswith("file://"):
        return local_opener(local_path(path))
    settings = SourceSettings.from_dict(dict(source_settings))

    def open_stream():
        stream = open_binary(path, settings)
        opened.append(stream)
        return stream
    return stream_opener(open_stream)


def chunk_of(offset: int, chunk_bytes: int) -> int:
    """The output chunk of the record at ``offset``: ``DIR/<file>-<chunk>.parquet``."""
    return offset // chunk_bytes


def split_of(offset: int, splits: int, chunk_bytes: int) -> int:
    """Which of ``splits`` readers of a file handles the record at ``offset``: whole chunks,
    round robin, so no chunk is shared by two readers."""
    return chunk_of(offset, chunk_bytes) % splits


class ExtractFileFn(beam.DoFn):
    """One split of one input file: stream its records, decide, decode and extract.

    Reading, extraction and writing are one step so neither raw HTML nor documents are
    materialised between stages (the local runner would hold them all in memory); a file is
    spread over workers by giving each of ``splits`` readers whole chunks of it (``split_of``).
    Yields the names (relative to ``output``) of the document files it wrote.
    """

    def __init__(self, extract_cfg: Mapping[str, Any], source_settings: Mapping[str, Any],
                 signal_cfg: Mapping[str, Any] | None = None, *, output: str, schema):
        self.cfg = dict(extract_cfg)
        self.source_settings = dict(source_settings)
        self.signal_cfg = dict(signal_cfg) if signal_cfg else None
        self.output = output
        self.schema = schema
        # Documents are written per (input file, range of offsets): the reader holds one range's
        # rows in memory, so its memory does not grow with the size of a WARC.
        self.chunk_bytes = int(self.cfg["output_chunk_bytes"])
        self.extractor = None
        self.meta_consent = None
        self.signals = None
        self.records = Metrics.counter("extract", "records_read")
        self.kept = Metrics.counter("extract", "documents_kept")
        self.internal_errors = Metrics.counter("extract", "internal_errors")

    def setup(self) -> None:
        from pipelines.html_text import Extractor

        logging.getLogger("warcio").setLevel(logging.ERROR)  # "Replacing spaces in URI" noise
        self.progress = progress_logger()
        self.extractor = Extractor(extractor_options(self.cfg), self.cfg["timeout_s"], self.cfg["extractor"])
        from pipelines.html_text import meta_consent

        self.meta_consent = meta_consent  # parses only the page up to its last <meta name=...>
        if self.signal_cfg is not None:
            from filters.signals import SignalComputer

            self.signals = SignalComputer(self.signal_cfg)

    def process(self, element) -> Iterable[Any]:
        path, split, splits = element
        started, n, opened, read = time.monotonic(), 0, [], ReadStats()
        chunk, rows, written = None, [], set()   # the chunk being filled, its documents, chunks done
        limits = HeaderLimits(self.cfg["max_header_line_bytes"], self.cfg["max_header_block_bytes"])
        for item in iter_records(_opener(path, self.source_settings, opened), path,
                                 want_body=want_body(self.cfg), max_body_bytes=self.cfg["max_payload_bytes"],
                                 select=lambda off: split_of(off, splits, self.chunk_bytes) == split,
                                 max_decoded_bytes=self.cfg["max_decoded_bytes"],
                                 header_limits=limits, stats=read):
            n += 1
            self.records.inc()
            if n % PROGRESS_EVERY == 0:
                self.progress.info("%s [split %d/%d]: %d records, %.0f/s", path, split + 1, splits, n,
                         n / max(time.monotonic() - started, 1e-6))
            if isinstance(item, ReadError):
                outcome = read_error_outcome(item)
            else:
                outcome = self._document(item)
            if outcome.doc is not None:
                self.kept.inc()
                doc_chunk = chunk_of(outcome.doc["warc_offset"], self.chunk_bytes)
                if doc_chunk != chunk:
                    if rows:
                        yield self._write_chunk(path, chunk, rows)
                        written.add(chunk)
                    if doc_chunk in written:   # offsets only grow; rewriting would lose documents
                        raise RuntimeError(f"{path}: offset {outcome.doc['warc_offset']} is back in chunk "
                                           f"{doc_chunk}, already written")
                    chunk, rows = doc_chunk, []
                rows.append(outcome.doc)
            if outcome.dead is not None:
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, (path, outcome.dead))
            yield beam.pvalue.TaggedOutput(OUTCOMES, (outcome.status, outcome.reason))
        if rows:
            yield self._write_chunk(path, chunk, rows)
        for name in ("retries", "resumes"):
            yield beam.pvalue.TaggedOutput(STATS, (f"source_{name}", sum(getattr(st, name, 0) for st in opened)))
        # Counted by the reader, not here: the summary checks them against the outcomes.
        yield beam.pvalue.TaggedOutput(STATS, (READ_RECORDS, read.records))
        yield beam.pvalue.TaggedOutput(STATS, (READ_ERRORS, read.errors))
        self.progress.info("%s [split %d/%d]: done, %d records in %.1fs", path, split + 1, splits, n,
                           time.monotonic() - started)

    def _write_chunk(self, warc_file: str, chunk: int, docs: list) -> str:
        """``DIR/<file>-<chunk>.parquet`` (atomic; rows sorted by offset); returns its name."""
        rows = sorted(docs, key=lambda d: (d["warc_offset"], d["doc_id"]))
        name = f"{shard_name(warc_file)}-{chunk:05d}.parquet"
        outputs.write_parquet(outputs.join(self.output, name), rows, self.schema)
        return name

    def _document(self, record) -> Outcome:
        """One record's outcome; an unexpected error on one page is its dead letter, not the job's end."""
        try:
            outcome = header_outcome(record, self.cfg) or \
                extract_document(record, self.cfg, self.extractor, self.meta_consent)
            if outcome.doc is not None and self.signals is not None:
                outcome.doc.update(self.signals(outcome.doc))
            return outcome
        except Exception as exc:  # noqa: BLE001 - counted and kept with its traceback line
            self.internal_errors.inc()
            log.warning("internal error on %s @%d: %s", record.warc_file, record.offset, exc, exc_info=True)
            return Outcome(DEAD, "internal_error",
                           dead=dead_letter(record, "extract", "internal_error", f"{type(exc).__name__}: {exc!s:.300}"))

    def teardown(self) -> None:
        if self.extractor is not None:
            self.extractor.close()


def WriteDeadFn(output: str) -> WriteDeadLettersFn:  # noqa: N802 - the DoFn it always was
    """(WARC file, dead letters) -> ``dead-letter/<shard_name>.jsonl`` (``pipelines.writers``' one format)."""
    return WriteDeadLettersFn(output, "dead-letter", shard_name, "extract")


def build_summary(counts: Mapping[tuple[str, str], int], meta: Mapping[str, Any],
                  stats: Mapping[str, int]) -> dict:
    """The summary: ``records_read`` is what the readers yielded (``stats``, counted by
    ``iter_records``), checked against the outcomes; ``balance.ok`` is false when they differ."""
    by_status: dict[str, dict[str, int]] = {KEPT: {}, DROPPED: {}, DEAD: {}}
    for (status, reason), n in counts.items():
        by_status.setdefault(status, {})[reason] = n
    kept = sum(by_status[KEPT].values())
    dropped = sum(by_status[DROPPED].values())
    dead = sum(by_status[DEAD].values())
    outcomes = sum(sum(reasons.values()) for reasons in by_status.values())
    framed, unreadable = int(stats.get(READ_RECORDS, 0)), int(stats.get(READ_ERRORS, 0))
    records = framed + unreadable
    balance = {"ok": records == outcomes == kept + dropped + dead, "records_read": records,
               "outcomes": outcomes, "records_framed": framed, "unreadable_regions": unreadable}
    if not balance["ok"]:
        log.warning("extract: %d records read but %d outcomes: the counts do not balance", records, outcomes)
    return {
        **meta,
        "records_read": records,
        "kept": kept,
        "dropped": dropped,
        "dead_lettered": dead,
        "balance": balance,
        "dropped_by_reason": dict(sorted(by_status[DROPPED].items())),
        "dead_lettered_by_reason": dict(sorted(by_status[DEAD].items())),
        "source": {k: v for k, v in sorted(stats.items()) if k not in (READ_RECORDS, READ_ERRORS)},
    }


class WriteSummaryFn(beam.DoFn):
    """Writes summary.json once every output is written (the side inputs force that order)."""

    def __init__(self, output: str, meta: Mapping[str, Any]):
        self.output = output
        self.meta = dict(meta)

    def process(self, _, counts, stats, doc_files, dead_files):
        # A retried reader that had got further than its successful attempt (a source error or a
        # time-out ends a file early) leaves chunk files the job's result does not name.
        outputs.remove_unlisted(self.output, "*.parquet", set(doc_files),
                                "extract: document files of failed attempts")
        summary = build_summary(dict(counts), self.meta, dict(stats))
        summary["outputs"] = {"documents": sorted(doc_files), "dead_letter": sorted(dead_files)}
        outputs.write_json(outputs.join(self.output, "summary.json"), summary)
        yield summary


# ---------------------------------------------------------------------------------------- graph
class Extract(beam.PTransform):
    """(file, split, splits) work items -> (names of the document files written to ``output``,
    dead letters keyed by input file, outcomes, stats)."""

    def __init__(self, extract_cfg: Mapping[str, Any], source_settings: Mapping[str, Any],
                 signal_cfg: Mapping[str, Any] | None = None, *, output: str, schema):
        super().__init__()
        self.cfg = dict(extract_cfg)
        self.source_settings = dict(source_settings)
        self.signal_cfg = signal_cfg
        self.output, self.schema = output, schema

    def expand(self, work):
        out = (work
               | "SpreadFiles" >> beam.Reshuffle()
               | "ReadAndExtract" >> beam.ParDo(ExtractFileFn(self.cfg, self.source_settings, self.signal_cfg,
                                                               output=self.output, schema=self.schema))
               .with_outputs(OUTCOMES, DEAD_LETTERS, STATS, main="files"))
        return out.files, out[DEAD_LETTERS], out[OUTCOMES], out[STATS]


def plan_splits(paths: list[str], setting: Any, workers: int | None, chunk_bytes: int | None = None) -> int:
    """Readers per file: ``auto`` gives a few files' worth of parallelism on a local runner, but
    no more readers than the largest local file has chunks of ``chunk_bytes`` (readers divide a
    file by whole chunks; another would stream the file for nothing)."""
    if setting != "auto":
        if not isinstance(setting, int) or setting < 1:
            raise ValueError(f"extract.splits_per_file must be 'auto' or a positive integer, got {setting!r}")
        return setting
    if not workers or workers == 1 or len(paths) >= 2 * workers:
        return 1  # enough files to keep every worker busy (or only one worker); do not re-read any file
    splits = max(1, -(-2 * workers // max(1, len(paths))))
    if chunk_bytes and paths:
        chunks = _most_chunks(paths, chunk_bytes)
        if chunks is not None:
            splits = min(splits, chunks)
    return splits


def _most_chunks(paths: list[str], chunk_bytes: int) -> int | None:
    """Chunks of ``chunk_bytes`` in the largest of ``paths``; None unless every path is a
    readable local file (a whole-file gzip's chunks count decompressed bytes: this is a floor)."""
    from pipelines.sources.opener import local_path

    sizes = []
    for path in paths:
        if "://" in path and not path.startswith("file://"):
            return None
        try:
            sizes.append(os.path.getsize(local_path(path)))
        except (OSError, ValueError):
            return None
    return max(1, -(-max(sizes) // chunk_bytes))


def output_schema(cfg: Mapping[str, Any]):
    """Document columns, plus the filter signals when extract computes them."""
    if not cfg["extract"]["compute_signals"]:
        return DOC_SCHEMA
    from filters.registry import signal_fields

    return extend(signal_fields())


def build(pipeline, paths, output: str, cfg: Mapping[str, Any], meta: Mapping[str, Any],
          splits: int = 1) -> dict:
    """The extract graph over ``paths`` (a list, or a PCollection of WARC locations); returns
    ``{"summary": PCollection[dict], "documents": PCollection[path]}``."""
    if isinstance(paths, beam.PCollection):
        work = paths | "Work" >> beam.FlatMap(lambda path, n=splits: [(path, split, n) for split in range(n)])
    else:
        work = pipeline | "Inputs" >> beam.Create([(path, split, splits) for path in paths
                                                   for split in range(splits)])
    signal_cfg = cfg if cfg["extract"]["compute_signals"] else None
    doc_files, dead, outcomes, stats = work | "Extract" >> Extract(cfg["extract"], cfg["sources"], signal_cfg,
                                                                   output=output, schema=output_schema(cfg))
    dead_files = (dead | "GroupDead" >> beam.GroupByKey()
                  | "WriteDead" >> beam.ParDo(WriteDeadFn(output)))
    counts = outcomes | "Count" >> beam.combiners.Count.PerElement()
    stat_sums = stats | "SumStats" >> beam.CombinePerKey(sum)
    summary = (pipeline
               | "SummaryTrigger" >> beam.Create([None])
               | "WriteSummary" >> beam.ParDo(
                   WriteSummaryFn(output, meta),
                   counts=beam.pvalue.AsList(counts),
                   stats=beam.pvalue.AsList(stat_sums),
                   doc_files=beam.pvalue.AsList(doc_files),
                   dead_files=beam.pvalue.AsList(dead_files)))
    # Full paths of the document files, each emitted once it is written: a later stage in the same
    # job (``pipelines all``) reads them from here instead of listing the directory.
    documents = doc_files | "DocumentPaths" >> beam.Map(lambda name, out=output: outputs.join(out, name))
    return {"summary": summary, "documents": documents}


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="WARC file, directory, glob, comma list, s3://, gs:// or https:// URL")
    src.add_argument("--snapshot", help="Common Crawl snapshot id (CC-MAIN-YYYY-WW) or 'latest'")
    parser.add_argument("--output", required=True, help="output directory (local, gs:// or s3://)")
    parser.add_argument("--max-warcs", type=int, default=None,
                        help="with --snapshot: process a deterministic sample of N WARC files")
    parser.add_argument("--source", choices=("s3", "https"), default="https",
                        help="with --snapshot: read Common Crawl from S3 or HTTPS (default https)")
    parser.add_argument("--s3-endpoint-url", default=None,
                        help="S3 endpoint override (e.g. a local S3 for tests); also sources.s3_endpoint_url")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run in --output (else refuse)")


def resolve_inputs(args, cfg) -> tuple[list[str], dict]:
    from pipelines.sources import SourceSettings, expand_inputs, resolve_snapshot

    if args.s3_endpoint_url:
        cfg["sources"]["s3_endpoint_url"] = args.s3_endpoint_url
    settings = SourceSettings.from_dict(cfg["sources"])
    if args.snapshot:
        if args.max_warcs is not None and args.max_warcs < 1:
            raise CliError(f"--max-warcs must be at least 1, got {args.max_warcs}")
        snapshot_id, paths = resolve_snapshot(args.snapshot, args.source, settings,
                                              max_warcs=args.max_warcs, seed=cfg["sources"]["sample_seed"])
        return paths, {"snapshot": snapshot_id, "source": args.source, "max_warcs": args.max_warcs}
    if args.max_warcs is not None:
        raise CliError("--max-warcs only applies with --snapshot")
    paths = expand_inputs(args.input, settings)
    return paths, {"input": args.input}


def summary_meta(source_meta: Mapping[str, Any], paths: list[str], cfg: Mapping[str, Any]) -> dict:
    return {**source_meta, "stage": "extract", "input_files": len(paths), "config_sha256": config_hash(cfg)}


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    cfg = load_config(args.config)
    check_extractor(cfg["extract"]["extractor"])  # a missing extractor package fails here, before any work
    paths, meta = resolve_inputs(args, cfg)   # lists only; nothing is written before check_io
    outputs.check_io(args.output, {"--input": args.input})
    options = make_options(beam_args)
    local = is_local(options)
    workers = options.view_as(DirectOptions).direct_num_workers if local else None
    splits = plan_splits(paths, cfg["extract"]["splits_per_file"], workers, cfg["extract"]["output_chunk_bytes"])
    meta = summary_meta(meta, paths, cfg)
    where = f"locally on {workers} worker(s)" if local else "on the configured runner"
    log.info("extract: %d input file(s) x %d split(s) -> %s, running %s", len(paths), splits, args.output, where)
    started = time.monotonic()
    def job(target):   # a staging folder; outputs.run_stage moves its files into args.output
        with new_pipeline(beam_args) as pipeline:
            build(pipeline, paths, target, cfg, meta, splits)

    summary = outputs.run_stage(args, "extract", STAGE_OUTPUTS, job)
    print_summary(summary, args.output, time.monotonic() - started)
    return summary


def print_summary(summary: Mapping[str, Any], output: str, seconds: float) -> None:
    lines = [f"extract: {summary['records_read']} records from {summary['input_files']} file(s) in {seconds:.1f}s",
             f"  kept          {summary['kept']}",
             f"  dropped       {summary['dropped']}"]
    lines += [f"    {reason:<28}{n}" for reason, n in summary["dropped_by_reason"].items()]
    lines.append(f"  dead-lettered {summary['dead_lettered']}")
    lines += [f"    {reason:<28}{n}" for reason, n in summary["dead_lettered_by_reason"].items()]
    balance = summary.get("balance") or {}
    if not balance.get("ok", True):
        lines.append(f"  WARNING: counts do not balance: {balance['records_read']} records read, "
                     f"{balance['outcomes']} outcomes ({balance['records_read'] - balance['outcomes']:+d} "
                     "without an outcome); see summary.json \"balance\"")
    lines.append(f"  documents:    {output}/*.parquet ({len(summary['outputs']['documents'])} files)")
    lines.append(f"  dead letters: {output}/dead-letter/*.jsonl")
    lines.append(f"  summary:      {output}/summary.json")
    print("\n".join(lines))
