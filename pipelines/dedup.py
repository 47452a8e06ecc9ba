"""The dedup stage and the reusable ``Deduplicate`` transform (URL -> lines -> MinHash).

``python -m pipelines dedup --input DIR_OF_PARQUET --output DIR [--config FILE] [Beam options]``
reads Parquet with at least ``url`` and ``text`` and writes

* ``DIR/part-NNNNN-of-MMMMM.parquet``: kept documents (+ ``dup_cluster_id``, ``dup_cluster_size``,
  ``dup_lines_removed``; ``text`` without the removed lines);
* ``DIR/removed/part-*.parquet``: removed documents with ``dedup_reason`` (url | line-too-short |
  minhash | duplicate-doc-id) and ``dup_kept_doc_id``;
* ``DIR/rejected/part-*.parquet``: rows that could not be processed (dead letters);
* ``DIR/summary.json``.

``Deduplicate(cfg)`` is the same logic as a PTransform over document dicts for other stages
(refine): ``docs | Deduplicate(cfg)`` -> {"kept", "removed", "rejected", "stats"}.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from pipelines import outputs
from pipelines.cli import CliError
from pipelines.config import load_config
from pipelines.dedup_common import MergeStats, fingerprint
from pipelines.dedup_lines import DedupLines
from pipelines.dedup_minhash import DedupMinHash
from pipelines.dedup_url import DedupByUrl
from pipelines.schema import DEAD_LETTER_SCHEMA, REQUIRED_INPUT_COLUMNS, row_doc_id

KEPT_FIELDS = [pa.field("dup_cluster_id", pa.string()), pa.field("dup_cluster_size", pa.int64()),
               pa.field("dup_lines_removed", pa.int64())]
REMOVED_FIELDS = [pa.field("dedup_reason", pa.string()), pa.field("dup_kept_doc_id", pa.string())]
ADDED_COLUMNS = {f.name for f in KEPT_FIELDS + REMOVED_FIELDS}
STEPS = ("url", "minhash", "lines")


# ---------------------------------------------------------------------------------------------
# The transform


def _prepare(row: Mapping[str, Any]):
    """Validate one input row and give it a doc_id; bad rows become dead letters."""
    text, url = row.get("text"), row.get("url")
    reason = None
    if not isinstance(text, str):
        reason = "missing_text"
    elif url is not None and not isinstance(url, str):
        reason = "bad_url"
    if reason:
        yield pvalue.TaggedOutput("rejected", {
            "warc_file": row.get("warc_file"), "warc_offset": row.get("warc_offset"),
            "warc_record_id": row.get("warc_record_id"), "url": url if isinstance(url, str) else None,
            "stage": "dedup", "reason": reason, "detail": f"doc_id={row.get('doc_id')!r}"})
        return
    doc = {k: v for k, v in row.items() if k not in ADDED_COLUMNS}
    doc["doc_id"] = row_doc_id(doc.get("doc_id"), url, text)
    yield doc


def _no_line_dedup(doc):
    return dict(doc, dup_lines_removed=0)


def _no_minhash(doc):
    return dict(doc, dup_cluster_id=doc["doc_id"], dup_cluster_size=1)


def _stat(name: str):
    return lambda _: (name, 1)


class Deduplicate(beam.PTransform):
    """document dicts -> {"kept", "removed", "rejected", "stats"} (see module docstring).

    ``cfg`` is the whole config (``load_config()``) or just its ``dedup`` section.
    """

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        self.cfg = dict(cfg["dedup"] if "dedup" in cfg else cfg)
        # Fail at construction, not inside a worker, on bad values.
        self.url = DedupByUrl(self.cfg["url"]) if self.cfg["url"]["enabled"] else None
        self.lines = DedupLines(self.cfg["lines"]) if self.cfg["lines"]["enabled"] else None
        self.minhash = (DedupMinHash(self.cfg["minhash"], self.cfg["keep"]["quality_column"])
                        if self.cfg["minhash"]["enabled"] else None)
        order = list(self.cfg.get("order") or [])
        if sorted(order) != sorted(STEPS):
            raise ValueError(f"dedup.order must list each of {', '.join(STEPS)} once, got {order}")
        self.order = order

    def expand(self, rows):
        prepared = rows | "Prepare" >> beam.FlatMap(_prepare).with_outputs("rejected", main="docs")
        docs = prepared.docs
        removed, stats = [], [docs | "CountInput" >> beam.Map(_stat("input_docs")),
                              prepared.rejected | "CountRejected" >> beam.Map(_stat("rejected"))]
        steps = {"url": ("Url", self.url), "lines": ("Lines", self.lines), "minhash": ("MinHash", self.minhash)}
        for name, step in (steps[s] for s in self.order):
            if step is None:
                continue
            result = docs | f"Dedup{name}" >> step
            docs = result["kept"]
            removed.append(result["removed"])
            stats.append(result["stats"])
        if self.lines is None:
            docs = docs | "NoLineDedup" >> beam.Map(_no_line_dedup)
        if self.minhash is None:
            docs = docs | "NoMinHash" >> beam.Map(_no_minhash)
        removed_all = (tuple(removed) | "AllRemoved" >> beam.Flatten()) if removed else (
            rows.pipeline | "NoRemoved" >> beam.Create([]))
        stats.append(docs | "CountKept" >> beam.Map(_stat("kept")))
        stats_all = (tuple(stats) | "AllStats" >> beam.Flatten()
                     | "MergeStats" >> beam.CombineGlobally(MergeStats()))
        return {"kept": docs, "removed": removed_all, "rejected": prepared.rejected, "stats": stats_all}


# ---------------------------------------------------------------------------------------------
# Reading and writing


def list_inputs(path: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    if path.endswith(".parquet"):
        pattern = path
    else:
        pattern = outputs.join(path, "*.parquet")
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # Beam raises BeamIOError for missing buckets/dirs
        raise FileNotFoundError(f"--input {path}: cannot list Parquet files ({exc})") from None
    files = sorted(m.path for m in found)
    if not files:
        raise FileNotFoundError(f"--input {path}: no .parquet files found")
    return files


def read_schema(files: list[str]) -> pa.Schema:
    """Unified schema of the input files; every file must have the required columns."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    schemas = []
    for path in files:
        try:
            with FileSystems.open(path) as fh:
                schema = pq.read_schema(fh)
        except Exception as exc:
            raise ValueError(f"--input: {path} is not a readable Parquet file ({exc})") from None
        missing = [c for c in REQUIRED_INPUT_COLUMNS if schema.get_field_index(c) < 0]
        if missing:
            raise ValueError(f"--input: {path} lacks required column(s) {', '.join(missing)}")
        schemas.append(schema.remove_metadata())
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"--input: the Parquet files have incompatible schemas ({exc})") from None


def output_schemas(input_schema: pa.Schema, removed_keep_text: bool) -> tuple[pa.Schema, pa.Schema]:
    fields = [f for f in input_schema if f.name not in ADDED_COLUMNS]
    if input_schema.get_field_index("doc_id") < 0:
        fields.insert(0, pa.field("doc_id", pa.string()))
    base = pa.schema(fields)
    kept = base
    for f in KEPT_FIELDS:
        kept = kept.append(f)
    removed = pa.schema([f for f in base if removed_keep_text or f.name != "text"])
    for f in REMOVED_FIELDS + KEPT_FIELDS[:2]:
        removed = removed.append(f)
    return kept, removed


class _ReadParquet(beam.DoFn):
    def __init__(self, batch_rows: int = 1024):
        self.batch_rows = batch_rows

    def process(self, path: str) -> Iterable[dict]:
        import pyarrow.parquet as pq
        from apache_beam.io.filesystems import FileSystems

        try:
            with FileSystems.open(path) as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=self.batch_rows):
                    yield from batch.to_pylist()
        except Exception as exc:  # a corrupt file must not stop the run
            yield pvalue.TaggedOutput("rejected", {
                "warc_file": None, "warc_offset": None, "warc_record_id": None, "url": None,
                "stage": "dedup", "reason": "unreadable_parquet", "detail": f"{path}: {exc}"[:2000]})


def shard_of(doc_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(str(doc_id).encode("utf-8"), digest_size=8).digest(), "big") % shards


def _sorted_rows(rows: Iterable[dict], key_field: str) -> list[dict]:
    rows = list(rows)
    keys = [str(r.get(key_field)) for r in rows]
    if len(set(keys)) == len(keys):
        return [r for _, r in sorted(zip(keys, rows), key=lambda kr: kr[0])]
    return sorted(rows, key=lambda r: (str(r.get(key_field)), fingerprint(r)))


class _WriteShard(beam.DoFn):
    def __init__(self, directory: str, shards: int, schema: pa.Schema, key_field: str):
        self.directory = directory
        self.shards = shards
        self.schema = schema
        self.key_field = key_field

    def process(self, element):
        shard, rows = element
        rows = _sorted_rows(rows, self.key_field)
        path = outputs.join(self.directory, f"part-{shard:05d}-of-{self.shards:05d}.parquet")
        outputs.write_parquet(path, rows, self.schema)
        yield path


def write_sharded(pcoll, label: str, directory: str, shards: int, schema: pa.Schema, key_field: str):
    return (pcoll
            | f"{label}Shard" >> beam.Map(lambda r: (shard_of(r.get(key_field), shards), r))
            | f"{label}Group" >> beam.GroupByKey()
            | f"{label}Write" >> beam.ParDo(_WriteShard(directory, shards, schema, key_field)))


class _WriteSummary(beam.DoFn):
    def __init__(self, path: str, header: Mapping[str, Any]):
        self.path = path
        self.header = dict(header)

    def process(self, stats):
        outputs.write_json(self.path, summarize(self.header, stats))
        yield self.path


def summarize(header: Mapping[str, Any], stats: Mapping[str, int]) -> dict:
    s = dict(stats)
    removed = {"url": s.get("url_removed", 0), "line-too-short": s.get("line_too_short_removed", 0),
               "minhash": s.get("minhash_removed", 0), "duplicate-doc-id": s.get("duplicate_doc_id", 0)}
    minhash_on = header["config"]["minhash"]["enabled"]
    return {
        **header,
        "documents_in": s.get("input_docs", 0),
        "documents_kept": s.get("kept", 0),
        "documents_removed": removed,
        "rejected": s.get("rejected", 0) + s.get("unreadable_files", 0),
        "lines": {"distinct_repeated_lines": s.get("lines_repeated_distinct", 0),
                  "lines_removed": s.get("lines_removed", 0),
                  "documents_with_lines_removed": s.get("docs_with_lines_removed", 0)},
        "minhash": {"candidate_pairs": s.get("minhash_candidate_pairs", 0),
                    "pairs_rejected_by_verification": s.get("minhash_pairs_rejected", 0),
                    "documents_without_shingles": s.get("minhash_docs_without_shingles", 0),
                    "clusters": s.get("clusters", 0),
                    "documents_in_clusters": s.get("clustered_docs", 0),
                    "largest_cluster": s.get("max_cluster_size", 0),
                    "cc_unconverged_nodes": s.get("cc_unconverged_nodes", 0),
                    "cc_converged": (s.get("cc_unconverged_nodes", 0) == 0) if minhash_on else None},
    }


# "*.parquet", not "part-*": any Parquet file there would be read by the next stage as dedup's output.
STAGE_OUTPUTS = ("*.parquet", "removed/part-*.parquet", "rejected/part-*.parquet", "summary.json")


def build(pipeline, files: list[str], output: str, cfg: Mapping[str, Any], input_schema: pa.Schema,
          header: Mapping[str, Any]):
    dcfg = cfg["dedup"]
    shards = int(dcfg["output"]["shards"])
    kept_schema, removed_schema = output_schemas(input_schema, bool(dcfg["output"]["removed_keep_text"]))
    read = (pipeline
            | "Files" >> beam.Create(files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadParquet()).with_outputs("rejected", main="rows"))
    result = read.rows | "Deduplicate" >> Deduplicate(cfg)
    write_sharded(result["kept"], "Kept", output, shards, kept_schema, "doc_id")
    write_sharded(result["removed"], "Removed", outputs.join(output, "removed"), shards, removed_schema, "doc_id")
    rejected = (result["rejected"], read.rejected) | "AllRejected" >> beam.Flatten()
    write_sharded(rejected, "Rejected", outputs.join(output, "rejected"), 1, DEAD_LETTER_SCHEMA, "detail")
    unreadable = read.rejected | "CountUnreadable" >> beam.Map(lambda _: ("unreadable_files", 1))
    stats = ((result["stats"] | "StatItems" >> beam.FlatMap(lambda d: sorted(d.items())), unreadable)
             | "StatsWithFiles" >> beam.Flatten()
             | "FinalStats" >> beam.CombineGlobally(MergeStats()))
    stats | "Summary" >> beam.ParDo(_WriteSummary(outputs.join(output, "summary.json"), header))


# ---------------------------------------------------------------------------------------------
# Stage entry points


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="folder of Parquet files (or one .parquet file)")
    parser.add_argument("--output", required=True, help="output folder (local, gs://, s3://)")
    parser.add_argument("--shards", type=int, default=None, help="kept-document output files "
                        "(default: dedup.output.shards in the config)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run in --output (else refuse)")


def run(args: argparse.Namespace, beam_args: list[str], *, workers: int | None = None) -> dict:
    from pipelines.runner import new_pipeline

    started = time.monotonic()
    outputs.check_io(args.output, {"--input": args.input})
    cfg = load_config(args.config)
    if getattr(args, "shards", None) is not None:
        if args.shards < 1:
            raise CliError(f"--shards must be >= 1, got {args.shards}")
        cfg["dedup"]["output"]["shards"] = args.shards
    files = list_inputs(args.input)
    schema = read_schema(files)
    Deduplicate(cfg)  # validate the config before starting workers
    header = {"stage": "dedup", "input": args.input, "output": args.output, "input_files": len(files),
              "config": cfg["dedup"]}
    def job():
        pipeline = new_pipeline(beam_args, workers=workers)
        build(pipeline, files, args.output, cfg, schema, header)
        pipeline.run().wait_until_finish()

    summary = outputs.run_stage(args, "dedup", STAGE_OUTPUTS, job)
    print_summary(summary, args.output, time.monotonic() - started)
    return summary


def print_summary(summary: Mapping[str, Any], output: str, seconds: float) -> None:
    removed = summary["documents_removed"]
    mh = summary["minhash"]
    lines = [f"dedup: {summary['documents_in']} documents in, {summary['documents_kept']} kept "
             f"in {seconds:.1f}s",
             "  removed: " + ", ".join(f"{k} {v}" for k, v in removed.items()),
             f"  lines removed: {summary['lines']['lines_removed']} "
             f"(in {summary['lines']['documents_with_lines_removed']} documents)",
             f"  minhash: {mh['clusters']} clusters, largest {mh['largest_cluster']}, "
             f"candidate pairs {mh['candidate_pairs']}, converged {mh['cc_converged']}"]
    if summary["rejected"]:
        lines.append(f"  rejected {summary['rejected']} (see {output}/rejected/)")
    lines.append(f"  outputs: {output}/part-*.parquet, {output}/removed/, {output}/summary.json")
    print("\n".join(lines))
