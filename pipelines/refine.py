"""The refine stage: documents -> language/quality/toxicity/PII/consent-filtered documents.

Graph::

    input Parquet files --Reshuffle--> ReadParquet (any Parquet with url + text; bad rows rejected)
        --> Signals (computed only where missing or stale; SignalComputer loaded once per worker)
        --> [robots.txt opt-out join by host (CoGroupByKey), with --robots]
        --> Decide (filters.decisions on stored signals; C4 line rules + PII redaction on kept text)
        kept    --> [benchmark decontamination (pipelines.decontaminate), with --benchmark / config]
                --> [dedup (refine.dedup)] --> shard by doc_id --> OUT/part-*.parquet
        removed --> shard by doc_id --> OUT/removed/part-*.parquet (removed_by, rule, reason)
        rejected rows --> OUT/rejected/part-*.jsonl
        per-doc stats --> CombineGlobally --> OUT/summary.json (per filter, per language,
                          toxicity audit with example lines)

Rows go to a fixed number of output files by doc_id hash and are sorted by doc_id inside each
file, so outputs are byte-identical for any worker count.  Decisions read only stored signal
columns: to try other thresholds, run refine again on the same input with another --config; the
signals are reused as long as the settings that shape them (``signals_version``) are unchanged.
"""
from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa

from pipelines import decontaminate, outputs
from pipelines.cli import CliError
from pipelines.config import config_hash, load_config
from pipelines.runner import is_local, make_options, new_pipeline
from pipelines.schema import REQUIRED_INPUT_COLUMNS, doc_id_for, extend, row_doc_id

log = logging.getLogger("pipelines.refine")

REJECTED = "rejected"
REMOVED = "removed"
STATS = "stats"
STAGE_OUTPUTS = ("*.parquet", "removed/*.parquet", "rejected/*.jsonl", "summary.json")
AUDIT_LINE_CHARS = 200


# ---------------------------------------------------------------------------------------- schemas
def _robots_fields() -> list[pa.Field]:
    from pipelines.consent import ROBOTS_FIELDS  # required: a missing module fails the stage loudly

    return list(ROBOTS_FIELDS)


REFINE_FIELDS = [
    pa.field("c4_lines_removed", pa.int32()),                     # lines the C4 line rules took out
    pa.field("pii_redacted", pa.map_(pa.string(), pa.int32())),   # redactions applied to kept text
]
DECISION_FIELDS = [
    pa.field("removed_by", pa.string()),        # filter group (language, gopher_quality, ...)
    pa.field("removal_rule", pa.string()),      # group.rule that decided
    pa.field("removal_reason", pa.string()),    # measured value vs threshold, readable
    pa.field("failed_filters", pa.list_(pa.string())),   # every failing group.rule
]


def kept_schema(extra: Iterable[pa.Field] = ()) -> pa.Schema:
    from filters.signals import SIGNAL_FIELDS

    return extend([*SIGNAL_FIELDS, *_robots_fields(), *REFINE_FIELDS, *extra])


def removed_schema(extra: Iterable[pa.Field] = ()) -> pa.Schema:
    return extend(DECISION_FIELDS, kept_schema(extra))


def input_schema() -> pa.Schema:
    """Columns refine understands in its input (anything else is dropped and reported)."""
    return kept_schema()


# ---------------------------------------------------------------------------------------- reading
def _rejected(path: str, index: int | None, url: Any, reason: str, detail: str) -> dict:
    return {"input_file": path, "row": index, "url": url if isinstance(url, str) else None,
            "stage": "refine", "reason": reason, "detail": detail[:500]}


def read_parquet_rows(path: str, batch_rows: int = 1000) -> Iterable[tuple[str, Any]]:
    """``("row", dict)``, ``("rejected", dict)`` or ``("dropped_column", name)`` for one file."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    known = input_schema()
    try:
        fh = FileSystems.open(path)
        pfile = pq.ParquetFile(fh)
    except Exception as exc:  # not Parquet, unreadable, vanished
        yield "rejected", _rejected(path, None, None, "unreadable_file", f"{type(exc).__name__}: {exc}")
        return
    names = pfile.schema_arrow.names
    missing = [c for c in REQUIRED_INPUT_COLUMNS if c not in names]
    if missing:
        yield "rejected", _rejected(path, None, None, "missing_columns",
                                    f"input needs columns {', '.join(REQUIRED_INPUT_COLUMNS)}; "
                                    f"missing {', '.join(missing)}")
        return
    for name in names:
        if known.get_field_index(name) < 0:
            yield "dropped_column", name
    wanted = [n for n in names if known.get_field_index(n) >= 0]
    index = 0
    try:
        for batch in pfile.iter_batches(batch_size=batch_rows, columns=wanted):
            columns = {}
            for name in batch.schema.names:
                column = batch.column(name)
                target = known.field(name).type
                if column.type != target:
                    try:
                        column = column.cast(target)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        yield "rejected", _rejected(path, index, None, "bad_column_type",
                                                    f"column {name}: {column.type} cannot become {target}: {exc}")
                        return
                columns[name] = column
            for row in pa.table(columns).to_pylist():
                url, text = row.get("url"), row.get("text")
                if not isinstance(url, str) or not url:
                    yield "rejected", _rejected(path, index, url, "missing_url", "url is null or empty")
                elif not isinstance(text, str):
                    yield "rejected", _rejected(path, index, url, "missing_text", "text is null")
                else:
                    row["doc_id"] = row_doc_id(row.get("doc_id"), url, text)
                    if row.get("pii_counts") is not None:
                        row["pii_counts"] = dict(row["pii_counts"])
                    yield "row", row
                index += 1
    except Exception as exc:  # a corrupt row group: keep what was read, report the rest
        yield "rejected", _rejected(path, index, None, "corrupt_file", f"{type(exc).__name__}: {exc}")
    finally:
        fh.close()


class ReadParquetFn(beam.DoFn):
    def process(self, path: str):
        for kind, value in read_parquet_rows(path):
            if kind == "row":
                yield value
            elif kind == "rejected":
                yield beam.pvalue.TaggedOutput(REJECTED, value)
            else:
                yield beam.pvalue.TaggedOutput(STATS, {"dropped_column": value})


# ---------------------------------------------------------------------------------------- signals
class SignalsFn(beam.DoFn):
    """Adds signal columns where missing or computed with other settings."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = dict(cfg)
        self.computer = None
        self.computed = beam.metrics.Metrics.counter("refine", "signals_computed")
        self.reused = beam.metrics.Metrics.counter("refine", "signals_reused")

    def setup(self):
        from filters.signals import SignalComputer

        self.computer = SignalComputer(self.cfg)

    def process(self, row: dict):
        from filters.signals import has_current_signals

        if not self.cfg["refine"]["recompute_signals"] and has_current_signals(row, self.computer.version):
            self.reused.inc()
            yield {**row, "_signals": "reused"}
            return
        try:
            signals = self.computer(row)
        except Exception as exc:  # one bad document must not stop the run
            yield beam.pvalue.TaggedOutput(REJECTED, _rejected("", None, row.get("url"), "signal_error",
                                                               f"{type(exc).__name__}: {exc}"))
            return
        self.computed.inc()
        yield {**row, **signals, "_signals": "computed"}


# ---------------------------------------------------------------------------------------- decisions
def _audit_lines(row: Mapping[str, Any], removed_by: str) -> list[str]:
    if removed_by == "url_blocklist":
        return [f"[url] {row.get('url')} (domain {row.get('url_blocked_domain')})"]
    indices = row.get("tox_lines") if removed_by == "toxicity_words" else row.get("tox_clf_lines")
    lines = (row.get("text") or "").split("\n")
    out = []
    for i in (indices or [])[:2]:
        if 0 <= i < len(lines):
            out.append(lines[i].strip()[:AUDIT_LINE_CHARS])
    return out


class DecideFn(beam.DoFn):
    """Keep/remove from stored signals; kept text gets the C4 line rules and PII redaction."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = dict(cfg)
        self.decider = None

    def setup(self):
        from filters.decisions import Decider

        self.decider = Decider(self.cfg)

    def process(self, row: dict):
        from filters import quality
        from filters.decisions import TOXICITY_FILTERS
        from filters.signals import redact_pii

        how = row.pop("_signals", "computed")
        decision = self.decider.decide(row)
        lang = row.get("lang") or "und"
        stat = {"lang": lang, "removed_by": decision.removed_by, "rule": decision.rule,
                "failed": sorted(set(decision.failed)), "signals": how, "c4_lines": 0, "pii": {}}
        if not decision.keep:
            out = {**row, "removed_by": decision.removed_by, "removal_rule": decision.rule,
                   "removal_reason": decision.reason, "failed_filters": decision.failed}
            if decision.removed_by in TOXICITY_FILTERS:
                stat["audit"] = {"doc_id": row["doc_id"], "url": row.get("url"),
                                 "filter": decision.removed_by, "reason": decision.reason,
                                 "lines": _audit_lines(row, decision.removed_by)}
            yield beam.pvalue.TaggedOutput(REMOVED, out)
            yield beam.pvalue.TaggedOutput(STATS, stat)
            return
        text = row["text"]
        changed = False
        if self.cfg["refine"]["apply_c4_lines"] and "c4" in self.cfg["quality"]["filters"]:
            thresholds = self.decider.thresholds(row.get("lang"))
            mask = quality.c4_line_keep_mask(row, thresholds)
            removed = sum(1 for c, keep in zip(row["line_chars"], mask) if c and not keep)
            if removed:
                text = quality.apply_c4_lines(text, row, thresholds)
                changed = True
            row["c4_lines_removed"] = removed
            stat["c4_lines"] = removed
        if (self.cfg.get("pii") or {}).get("redact", True):
            new_text, counts = redact_pii(text, row.get("url"), row.get("lang"), self.cfg)
            row["pii_redacted"] = counts
            stat["pii"] = counts
            if new_text != text:
                text, changed = new_text, True
        if changed:
            row["text"] = text
            row["text_chars"] = len(text)
            # The stored signals describe the text before refine changed it; a later refine over
            # this output must measure the new text again.
            row["signals_version"] = None
        yield row
        yield beam.pvalue.TaggedOutput(STATS, stat)


# ---------------------------------------------------------------------------------------- summary
def _add(counter: dict, key, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n


class SummaryFn(beam.CombineFn):
    """Per-document stats -> counts overall / per language (bounded by #languages x #rules) and
    a few audit examples per language (the smallest doc_ids, so the choice is deterministic)."""

    def __init__(self, examples: int):
        self.examples = examples

    def create_accumulator(self):
        return {"documents": 0, "kept": 0, "removed_by": {}, "removed_by_rule": {}, "would_fail": {},
                "languages": {}, "signals": {}, "c4_lines_removed": 0, "pii_redacted": {},
                "dropped_columns": {}, "audit": {}}

    def add_input(self, acc, stat):
        if "dropped_column" in stat:
            acc["dropped_columns"][stat["dropped_column"]] = 1
            return acc
        lang = stat["lang"]
        per = acc["languages"].setdefault(lang, {"documents": 0, "kept": 0, "removed_by": {},
                                                 "removed_by_rule": {}, "would_fail": {}})
        for bucket in (acc, per):
            bucket["documents"] += 1
            if stat["removed_by"] is None:
                bucket["kept"] += 1
            else:
                _add(bucket["removed_by"], stat["removed_by"])
                _add(bucket["removed_by_rule"], stat["rule"])
            for rule in stat["failed"]:
                _add(bucket["would_fail"], rule)
        _add(acc["signals"], stat["signals"])
        acc["c4_lines_removed"] += stat["c4_lines"]
        for kind, n in stat["pii"].items():
            _add(acc["pii_redacted"], kind, n)
        if "audit" in stat:
            audit = acc["audit"].setdefault(lang, {"removed": 0, "by_filter": {}, "examples": []})
            audit["removed"] += 1
            _add(audit["by_filter"], stat["audit"]["filter"])
            audit["examples"] = self._trim(audit["examples"] + [stat["audit"]])
        return acc

    def _trim(self, examples):
        return sorted(examples, key=lambda e: e["doc_id"])[:self.examples]

    def merge_accumulators(self, accs):
        accs = list(accs)
        out = self.create_accumulator()
        for acc in accs:
            for key in ("documents", "kept", "c4_lines_removed"):
                out[key] += acc[key]
            for key in ("removed_by", "removed_by_rule", "would_fail", "signals", "pii_redacted",
                        "dropped_columns"):
                for k, n in acc[key].items():
                    _add(out[key], k, n)
            for lang, per in acc["languages"].items():
                dst = out["languages"].setdefault(lang, {"documents": 0, "kept": 0, "removed_by": {},
                                                         "removed_by_rule": {}, "would_fail": {}})
                dst["documents"] += per["documents"]
                dst["kept"] += per["kept"]
                for key in ("removed_by", "removed_by_rule", "would_fail"):
                    for k, n in per[key].items():
                        _add(dst[key], k, n)
            for lang, audit in acc["audit"].items():
                dst = out["audit"].setdefault(lang, {"removed": 0, "by_filter": {}, "examples": []})
                dst["removed"] += audit["removed"]
                for k, n in audit["by_filter"].items():
                    _add(dst["by_filter"], k, n)
                dst["examples"] = self._trim(dst["examples"] + audit["examples"])
        for key in ("dropped_columns",):
            out[key] = {k: 1 for k in out[key]}
        return out

    def extract_output(self, acc):
        return acc


def _sorted_counts(d: Mapping[str, int]) -> dict:
    return dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def build_summary(acc: Mapping[str, Any], rejected: Mapping[str, int], meta: Mapping[str, Any]) -> dict:
    languages = {}
    for lang, per in sorted(acc["languages"].items(), key=lambda kv: (-kv[1]["documents"], kv[0])):
        languages[lang] = {
            "documents": per["documents"], "kept": per["kept"], "removed": per["documents"] - per["kept"],
            "kept_share": round(per["kept"] / per["documents"], 4) if per["documents"] else None,
            "removed_by": _sorted_counts(per["removed_by"]),
            "removed_by_rule": _sorted_counts(per["removed_by_rule"]),
            "would_fail": _sorted_counts(per["would_fail"]),
        }
    audit = {}
    for lang, a in sorted(acc["audit"].items()):
        docs = acc["languages"].get(lang, {}).get("documents", 0)
        audit[lang] = {"removed": a["removed"], "share_of_language": round(a["removed"] / docs, 4) if docs else None,
                       "by_filter": _sorted_counts(a["by_filter"]), "examples": a["examples"]}
    return {
        **meta,
        "documents_in": acc["documents"] + sum(rejected.values()),
        "documents_filtered": acc["documents"],
        "kept": acc["kept"],
        "removed": acc["documents"] - acc["kept"],
        "rejected": sum(rejected.values()),
        "rejected_by_reason": _sorted_counts(rejected),
        "removed_by": _sorted_counts(acc["removed_by"]),
        "removed_by_rule": _sorted_counts(acc["removed_by_rule"]),
        "would_fail": _sorted_counts(acc["would_fail"]),
        "per_language": languages,
        "toxicity_audit": audit,
        "signals": dict(sorted(acc["signals"].items())),
        "c4_lines_removed": acc["c4_lines_removed"],
        "pii_redacted": dict(sorted(acc["pii_redacted"].items())),
        "dropped_input_columns": sorted(acc["dropped_columns"]),
    }


class WriteSummaryFn(beam.DoFn):
    def __init__(self, output: str, meta: Mapping[str, Any]):
        self.output = output
        self.meta = dict(meta)

    def process(self, _, input_files, stats, rejected, kept_files, removed_files, rejected_files, extra):
        acc = stats[0] if stats else SummaryFn(0).create_accumulator()
        summary = build_summary(acc, dict(rejected), {**self.meta, "input_files": input_files})
        for item in extra:
            summary.update(item)
        summary = decontaminate.adjust_summary(summary)
        if "dedup" in summary:
            # per-filter and per-language counts are before dedup; "kept" is what was written
            summary["kept_before_dedup"] = summary["kept"]
            summary["kept"] = summary["dedup"].get("kept", summary["kept"])
            summary["removed_by_dedup"] = summary["kept_before_dedup"] - summary["kept"]
        summary["outputs"] = {"kept": sorted(kept_files), "removed": sorted(removed_files),
                              "rejected": sorted(rejected_files)}
        outputs.write_json(outputs.join(self.output, "summary.json"), summary)
        yield summary


# ---------------------------------------------------------------------------------------- writing
def shard_of(doc_id: str, shards: int) -> int:
    return int(doc_id[:15], 16) % shards if all(c in "0123456789abcdef" for c in doc_id[:15]) \
        else int(doc_id_for(doc_id)[:15], 16) % shards


def _row_order(row: Mapping[str, Any]):
    return (row["doc_id"], row.get("url") or "", row.get("warc_file") or "", row.get("warc_offset") or -1,
            row.get("text") or "")


class WriteShardFn(beam.DoFn):
    def __init__(self, output: str, subdir: str, shards: int, schema: pa.Schema):
        self.output = output
        self.subdir = subdir
        self.shards = shards
        self.schema = schema

    def process(self, element):
        index, rows = element
        rows = sorted(rows, key=_row_order)
        name = f"part-{index:05d}-of-{self.shards:05d}.parquet"
        if self.subdir:
            name = f"{self.subdir}/{name}"
        names = set(self.schema.names)
        outputs.write_parquet(outputs.join(self.output, name), [{k: v for k, v in r.items() if k in names}
                                                               for r in rows], self.schema)
        yield name


class WriteRejectedFn(beam.DoFn):
    def __init__(self, output: str, shards: int):
        self.output = output
        self.shards = shards

    def process(self, element):
        index, rows = element
        rows = sorted(rows, key=lambda r: (r["input_file"] or "", r["row"] if r["row"] is not None else -1,
                                           r["url"] or "", r["reason"], r["detail"]))
        name = f"rejected/part-{index:05d}-of-{self.shards:05d}.jsonl"
        outputs.write_bytes_atomic(outputs.join(self.output, name), outputs.jsonl_bytes(rows))
        yield name


def _write(pcoll, label: str, output: str, subdir: str, shards: int, schema: pa.Schema):
    return (pcoll
            | f"Key{label}" >> beam.Map(lambda r, n=shards: (shard_of(r["doc_id"], n), r))
            | f"Group{label}" >> beam.GroupByKey()
            | f"Write{label}" >> beam.ParDo(WriteShardFn(output, subdir, shards, schema)))


# ---------------------------------------------------------------------------------------- dedup hook
def dedup_transform(cfg: Mapping[str, Any]):
    """DEDUP HOOK: ``pipelines.dedup.Deduplicate(cfg)`` run on kept documents when ``refine.dedup``
    is true; None when off.  ``pipelines.dedup`` is a required module: if it cannot be imported
    the stage fails at start (no silent run without deduplication).

    Contract: ``docs | Deduplicate(cfg)`` -> {"kept", "removed", "rejected", "stats"}; removed rows
    carry ``dedup_reason``; kept rows gain ``KEPT_FIELDS`` and may have lines removed.
    """
    if not cfg["refine"]["dedup"]:
        return None
    from pipelines import dedup

    return dedup


def _after_dedup(row: dict) -> dict:
    if row.get("dup_lines_removed"):
        row = dict(row, signals_version=None, text_chars=len(row["text"]))   # text changed
    return row


def _dedup_removed(row: dict) -> dict:
    return dict(row, removed_by="dedup", removal_rule=f"dedup.{row.get('dedup_reason')}",
                removal_reason=f"duplicate ({row.get('dedup_reason')}) of {row.get('dup_kept_doc_id')}",
                failed_filters=[f"dedup.{row.get('dedup_reason')}"])


def _dedup_rejected(row: dict) -> dict:
    return _rejected(row.get("warc_file") or "", None, row.get("url"), f"dedup_{row.get('reason')}",
                     row.get("detail") or "")


# ---------------------------------------------------------------------------------------- graph
def build(pipeline, inputs, output: str, cfg: Mapping[str, Any], meta: Mapping[str, Any],
          robots_paths: list[str] | None = None) -> dict:
    """The refine graph over ``inputs``: a list of Parquet paths, or a PCollection of them (the
    files an extract step of the same job writes).  Returns ``{"summary", "kept"}`` PCollections:
    the summary dict and the full paths of the kept-document files, each once it is written."""
    shards = int(cfg["refine"]["output_shards"])
    if isinstance(inputs, beam.PCollection):
        paths = inputs
    else:
        paths = pipeline | "Inputs" >> beam.Create(sorted(inputs))
    input_count = paths | "CountInputs" >> beam.combiners.Count.Globally()
    read = (paths
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadParquet" >> beam.ParDo(ReadParquetFn()).with_outputs(REJECTED, STATS, main="rows"))
    rows = read.rows | "SpreadRows" >> beam.Reshuffle()
    signalled = rows | "Signals" >> beam.ParDo(SignalsFn(cfg)).with_outputs(REJECTED, main="rows")
    docs = signalled.rows
    if robots_paths:
        from pipelines.consent import ApplyHostOptOut, ReadRobots

        consent = cfg.get("consent") or {}
        robots = pipeline | "ReadRobots" >> ReadRobots(robots_paths, cfg["sources"],
                                                       server_error=consent.get("server_error", "disallow"),
                                                       max_bytes=consent.get("max_robots_bytes", 512 * 1024))
        docs = docs | "RobotsOptOut" >> ApplyHostOptOut(robots, consent.get("agents") or [])
    decided = docs | "Decide" >> beam.ParDo(DecideFn(cfg)).with_outputs(REMOVED, STATS, main="kept")
    kept, removed = decided.kept, decided[REMOVED]
    extra_fields: list[pa.Field] = []
    extra_summary = []
    decon = decontaminate.apply(pipeline, kept, cfg)   # benchmark n-gram matches: removed or marked
    if decon is not None:
        kept, extra_fields = decon["kept"], list(decon["fields"])
        removed = (removed, decon["removed"]) | "WithDecontaminated" >> beam.Flatten()
        extra_summary.append(decon["summary"])
    dedup_rejected = None
    dedup = dedup_transform(cfg)
    if dedup is not None:
        result = kept | "Dedup" >> dedup.Deduplicate(cfg)
        kept = result["kept"] | "AfterDedup" >> beam.Map(_after_dedup)
        removed = (removed, result["removed"] | "DedupRemoved" >> beam.Map(_dedup_removed)) \
            | "AllRemoved" >> beam.Flatten()
        dedup_rejected = result["rejected"] | "DedupRejected" >> beam.Map(_dedup_rejected)
        extra_fields += list(dedup.KEPT_FIELDS) + list(dedup.REMOVED_FIELDS)
        extra_summary.append(result["stats"] | "DedupSummary" >> beam.Map(lambda st: {"dedup": dict(st)}))
    kept_files = _write(kept, "Kept", output, "", shards, kept_schema(extra_fields))
    removed_files = _write(removed, "Removed", output, "removed", shards, removed_schema(extra_fields))
    rejected_parts = [read[REJECTED], signalled[REJECTED]] + ([dedup_rejected] if dedup_rejected is not None else [])
    rejected = tuple(rejected_parts) | "AllRejected" >> beam.Flatten()
    rejected_files = (rejected
                      | "KeyRejected" >> beam.Map(lambda r, n=shards: (shard_of(doc_id_for(
                          f"{r['input_file']}\n{r['row']}\n{r['url']}"), n), r))
                      | "GroupRejected" >> beam.GroupByKey()
                      | "WriteRejected" >> beam.ParDo(WriteRejectedFn(output, shards)))
    rejected_counts = (rejected | "RejectedReason" >> beam.Map(lambda r: r["reason"])
                       | "CountRejected" >> beam.combiners.Count.PerElement())
    stats = ((read[STATS], decided[STATS]) | "AllStats" >> beam.Flatten()
             | "Summarise" >> beam.CombineGlobally(SummaryFn(int(cfg["toxicity"]["audit_examples"]))))
    extra = (extra_summary | "AllExtra" >> beam.Flatten()) if extra_summary else \
        (pipeline | "NoExtra" >> beam.Create([]))
    summary = (pipeline
               | "SummaryTrigger" >> beam.Create([None])
               | "WriteSummary" >> beam.ParDo(
                   WriteSummaryFn(output, meta),
                   input_files=beam.pvalue.AsSingleton(input_count),
                   stats=beam.pvalue.AsList(stats),
                   rejected=beam.pvalue.AsList(rejected_counts),
                   kept_files=beam.pvalue.AsList(kept_files),
                   removed_files=beam.pvalue.AsList(removed_files),
                   rejected_files=beam.pvalue.AsList(rejected_files),
                   extra=beam.pvalue.AsList(extra)))
    kept_paths = kept_files | "KeptPaths" >> beam.Map(lambda name, out=output: outputs.join(out, name))
    return {"summary": summary, "kept": kept_paths}


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True,
                        help="directory of Parquet files, one file, or a glob (local, gs://, s3://); "
                             "needs columns url and text")
    parser.add_argument("--output", required=True, help="output directory (local, gs:// or s3://)")
    parser.add_argument("--robots", default=None,
                        help="robots.txt captures (Common Crawl robotstxt WARC files: path, glob or "
                             "comma list) for the retroactive host opt-out")
    parser.add_argument("--snapshot", default=None,
                        help="instead of --robots: read the robots.txt captures Common Crawl published for "
                             "this snapshot (CC-MAIN-YYYY-WW or latest; crawl-data/<ID>/robotstxt.paths.gz)")
    parser.add_argument("--source", choices=("s3", "https"), default="https",
                        help="with --snapshot: read the captures from S3 or HTTPS (default https)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run in --output (else refuse)")
    decontaminate.add_arguments(parser)


def resolve_inputs(spec: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    patterns = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if any(ch in part for ch in "*?["):
            patterns.append(part)
        elif part.endswith(".parquet"):
            patterns.append(part)
        else:
            patterns.append(outputs.join(part, "*.parquet"))
    paths: list[str] = []
    for pattern in patterns:
        try:
            found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
        except Exception as exc:
            raise CliError(f"--input {pattern}: cannot list ({exc})") from None
        if not found:
            raise FileNotFoundError(f"--input {spec}: no Parquet files match {pattern}")
        paths += found
    return sorted(set(paths))


def validate(cfg: Mapping[str, Any]) -> None:
    """Fail before the pipeline starts on config values the workers would trip over."""
    from filters.decisions import Decider

    Decider(cfg)
    decontaminate.check(cfg)   # every benchmark readable, its index small enough for a side input
    if int(cfg["refine"]["output_shards"]) < 1:
        raise ValueError("refine.output_shards must be at least 1")
    if cfg["language"]["model_path"]:
        from pathlib import Path

        if "://" not in str(cfg["language"]["model_path"]) and not Path(cfg["language"]["model_path"]).is_file():
            raise FileNotFoundError(f"language.model_path not found: {cfg['language']['model_path']}")


def summary_meta(cfg: Mapping[str, Any], input_desc: str, robots: str | None) -> dict:
    from filters.signals import signals_version

    return {"stage": "refine", "input": input_desc, "robots": robots, "config_sha256": config_hash(cfg),
            "signals_version": signals_version(cfg)}


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    cfg = decontaminate.with_cli_benchmarks(load_config(args.config), getattr(args, "benchmark", None))
    outputs.check_io(args.output, {"--input": args.input, "--robots": args.robots,
                                   "--benchmark": [path for _, path in getattr(args, "benchmark", None) or []]})
    validate(cfg)
    paths = resolve_inputs(args.input)
    robots_paths = None
    if args.robots and args.snapshot:
        raise CliError("give --robots PATH_OR_GLOB or --snapshot ID, not both")
    if args.robots or args.snapshot:
        from pipelines.consent import robots_files
        from pipelines.sources import SourceSettings

        settings = SourceSettings.from_dict(cfg["sources"])
        robots_paths = robots_files(settings, robots=args.robots, snapshot=args.snapshot, source=args.source,
                                    seed=cfg["sources"]["sample_seed"])
        if not robots_paths:
            raise FileNotFoundError(f"--robots {args.robots or args.snapshot}: no robots.txt capture files found")
    meta = summary_meta(cfg, args.input, args.robots or args.snapshot)
    options = make_options(beam_args)
    where = "locally" if is_local(options) else "on the configured runner"
    log.info("refine: %d input file(s) -> %s, running %s", len(paths), args.output, where)
    started = time.monotonic()
    with outputs.StageOutput(args.output, "refine", STAGE_OUTPUTS, args.overwrite,
                             getattr(args, "break_lock", False)) as claim:
        with new_pipeline(beam_args) as pipeline:
            build(pipeline, paths, args.output, cfg, meta, robots_paths)
        summary = outputs.read_json(outputs.join(args.output, "summary.json"))
        claim.commit()
    print_summary(summary, args.output, time.monotonic() - started)
    return summary


def print_summary(summary: Mapping[str, Any], output: str, seconds: float) -> None:
    lines = [f"refine: {summary['documents_in']} documents from {summary['input_files']} file(s) in {seconds:.1f}s",
             f"  kept       {summary['kept']}",
             f"  removed    {summary['removed']}"]
    lines += [f"    {name:<26}{n}" for name, n in _sorted_counts(summary["removed_by"]).items()]
    dedup = summary.get("dedup")
    if dedup:
        lines.append(f"  removed by dedup {summary.get('removed_by_dedup', 0)} "
                     f"(url {dedup.get('url_removed', 0)}, near-duplicate {dedup.get('minhash_removed', 0)}; "
                     f"{dedup.get('clusters', 0)} clusters, largest {dedup.get('max_cluster_size', 0)})")
    lines += decontaminate.summary_lines(summary)
    lines.append(f"  rejected   {summary['rejected']}")
    lines += [f"    {name:<26}{n}" for name, n in _sorted_counts(summary["rejected_by_reason"]).items()]
    top = sorted(summary["per_language"].items(), key=lambda kv: (-kv[1]["documents"], kv[0]))[:8]
    if top:
        lines.append("  per language (kept/documents): " +
                     ", ".join(f"{lang} {p['kept']}/{p['documents']}" for lang, p in top))
    lines.append(f"  kept:     {output}/part-*.parquet ({len(summary['outputs']['kept'])} files)")
    lines.append(f"  removed:  {output}/removed/part-*.parquet (removed_by, removal_reason)")
    lines.append(f"  rejected: {output}/rejected/*.jsonl")
    lines.append(f"  summary:  {output}/summary.json (per filter, per language, toxicity audit)")
    print("\n".join(lines))
