"""The dedup stage: read Parquet, ``Deduplicate``, write sharded Parquet and ``summary.json``.

``python -m pipelines dedup`` (see ``pipelines.dedup``).
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from filters.dedup.policy import fingerprint
from pipelines import outputs, stages
from pipelines.cli import CliError
from pipelines.inputs import list_inputs
from pipelines.config import load_config
from pipelines.dedup.common import MergeStats
from pipelines.dedup.transform import ADDED_COLUMNS, KEPT_FIELDS, REMOVED_FIELDS, Deduplicate, JoinBack
from pipelines.schema import REQUIRED_INPUT_COLUMNS
from pipelines.packed import KV_BYTES, unpack
from pipelines.writers import WriteDeadLettersFn, dead_letter, packed_by_shard, part_name


# ---------------------------------------------------------------------------------------------
# Reading and writing


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
            yield pvalue.TaggedOutput("rejected", dead_letter("dedup", "unreadable_parquet", f"{path}: {exc}",
                                                              file=path))


def _sorted_rows(rows: Iterable[dict], key_field: str) -> list[dict]:
    rows = list(rows)
    keys = [str(r.get(key_field)) for r in rows]
    if len(set(keys)) == len(keys):
        return [r for _, r in sorted(zip(keys, rows), key=lambda kr: kr[0])]
    return sorted(rows, key=lambda r: (str(r.get(key_field)), fingerprint(r)))


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
STAGE_OUTPUTS = stages.output_patterns("dedup")


class _JoinAndWriteShard(beam.DoFn):
    """(shard, [pack(("row", (fp, row))), pack(("stub", stub)), ...]) -> the shard's kept and removed
    files.

    The join back to the rows and the grouping by output shard are one shuffle, with every value
    packed (``pipelines.packed``; one that does not unpack fails the shard loudly): the rows of a
    shard are held once (as the writer held them before, to sort them)."""

    def __init__(self, join: JoinBack, output: str, shards: int, kept_schema: pa.Schema,
                 removed_schema: pa.Schema):
        self.join = join
        self.output = output
        self.shards = shards
        self.schemas = {"kept": kept_schema, "removed": removed_schema}

    def process(self, element):
        shard, packed = element
        values = [unpack(v) for v in packed]
        out: dict[str, list] = {"kept": [], "removed": []}
        for final, is_gone, stats in self.join.apply_all(values):
            for item in stats:
                yield item
            out["removed" if is_gone else "kept"].append(final)
        yield "kept", len(out["kept"])
        name = part_name(shard, self.shards)
        for kind, directory in (("kept", self.output), ("removed", outputs.join(self.output, "removed"))):
            if out[kind]:  # like a GroupByKey per output: no file for a shard without rows
                outputs.write_parquet(outputs.join(directory, name), _sorted_rows(out[kind], "doc_id"),
                                      self.schemas[kind])


def build(pipeline, files: list[str], output: str, cfg: Mapping[str, Any], input_schema: pa.Schema,
          header: Mapping[str, Any]):
    dcfg = cfg["dedup"]
    shards = int(dcfg["output"]["shards"])
    kept_schema, removed_schema = output_schemas(input_schema, bool(dcfg["output"]["removed_keep_text"]))
    read = (pipeline
            | "Files" >> beam.Create(files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadParquet()).with_outputs("rejected", main="rows"))
    dedup = Deduplicate(cfg)
    keyed_rows, final, stats, rejected = dedup.decide(read.rows)
    parts = [keyed_rows | "RowsByShard" >> beam.Map(packed_by_shard("row", shards)).with_output_types(KV_BYTES)]
    parts += [s | f"StubsByShard{i}" >> beam.Map(packed_by_shard("stub", shards)).with_output_types(KV_BYTES)
              for i, s in enumerate(final)]
    written = (tuple(parts)
               | "FlattenShards" >> beam.Flatten()
               | "GroupShards" >> beam.GroupByKey()
               | "JoinAndWrite" >> beam.ParDo(_JoinAndWriteShard(dedup.join_back(), output, shards, kept_schema,
                                                                 removed_schema)))
    rejected = (rejected, read.rejected) | "AllRejected" >> beam.Flatten()
    (rejected
     | "KeyRejected" >> beam.Map(lambda r: (0, r))
     | "GroupRejected" >> beam.GroupByKey()
     | "WriteRejected" >> beam.ParDo(WriteDeadLettersFn(output, "rejected", lambda _: "part-00000-of-00001",
                                                        "dedup")))
    unreadable = read.rejected | "CountUnreadable" >> beam.Map(lambda _: ("unreadable_files", 1))
    stats = (tuple(stats) + (written, unreadable)
             | "AllStats" >> beam.Flatten()
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
    def job(target):
        pipeline = new_pipeline(beam_args, workers=workers)
        build(pipeline, files, target, cfg, schema, header)
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
