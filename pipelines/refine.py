"""The refine stage: documents -> language/quality/toxicity/PII/consent-filtered documents.

Graph::

    input Parquet files --Reshuffle--> footers: row-group slices --Reshuffle (descriptors)-->
        ReadSplit (any Parquet with url + text; bad rows and row groups rejected)
        --> Signals (computed only where missing or stale; SignalComputer loaded once per worker)
        --> [robots.txt opt-out join by host (CoGroupByKey), with --robots]
        --> Decide (filters.decisions on stored signals; C4 line rules + PII redaction on kept text)
        kept    --> [benchmark decontamination (pipelines.decontaminate), with --benchmark / config]
                --> [dedup's decisions (refine.dedup): stubs, keys and signatures shuffled, not rows]
                --> shard by doc_id --> OUT/part-*.parquet
        removed --> shard by doc_id --> OUT/removed/part-*.parquet (removed_by, rule, reason)
        (with dedup, kept rows, dedup's decisions and removed rows meet in ONE GroupByKey by output
        shard that applies the decisions and writes both files: a document row crosses one shuffle)
        rejected rows --> OUT/rejected/part-*.jsonl
        per-doc stats --> CombineGlobally --> OUT/summary.json (per filter, per language,
                          toxicity audit with example lines)

Rows go to a fixed number of output files by doc_id hash and are sorted by doc_id inside each
file, so outputs are byte-identical for any worker count.  Decisions read only stored signal
columns: to try other thresholds, run refine again on the same input with another --config; the
signals are reused as long as the settings that shape them (``signals_version``) are unchanged.

This module holds the graph (the composite ``Refine``, which reads top to bottom), the
per-document signal and decision steps, the dedup hook and the CLI; ``refine_io`` holds the
schemas, the Parquet reader and the writers, ``refine_summary`` the summary combiner and its
printout.
"""
from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Mapping

import apache_beam as beam
import pyarrow as pa

from pipelines import decontaminate, outputs, stages
from pipelines.refine_io import (  # noqa: F401  (kept_schema, removed_schema, read_parquet_rows: refine's API)
    DECISION_FIELDS, REFINE_FIELDS, REJECTED, REMOVED, STATS, ReadParquet, _rejected, _write, write_rejected,
    input_schema, kept_schema, read_parquet_rows, removed_schema, shard_of, write_joined)
from pipelines.refine_summary import SummaryFn, WriteSummaryFn, build_summary, print_summary  # noqa: F401
from pipelines.cli import CliError
from pipelines.inputs import list_inputs
from pipelines.config import config_hash, load_config
from pipelines.runner import is_local, make_options, new_pipeline

log = logging.getLogger("pipelines.refine")

STAGE_OUTPUTS = stages.output_patterns("refine")   # what a run writes under --output (the registry)
AUDIT_LINE_CHARS = 200


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
        from filters.decisions import Decider, audited_filters
        from filters.pii import enabled_types

        self.decider = Decider(self.cfg)
        self.audited = frozenset(audited_filters())
        self.pii_types = frozenset(enabled_types((self.cfg.get("pii") or {}).get("placeholders")))

    def no_pii(self, row: Mapping[str, Any]) -> bool:
        """True when the row's stored ``pii_counts`` -- current signals, measured on the extracted
        text with the detectors redaction uses -- found nothing: the page is not scanned again
        (the scan is the costliest per-page step of refine), also when the C4 line rules removed
        lines.  Removing lines only brings text on either side of a removed line together; a
        match that forms only there (a number next to a keyword that was a removed line away) is
        not one the extracted text had.  Redaction's scope is therefore what ``pii_counts``
        counted; a page with counts is scanned again after its line edits."""
        counts = row.get("pii_counts")
        return (isinstance(counts, Mapping) and self.pii_types <= counts.keys()
                and not any(counts.values()))

    def process(self, row: dict):
        from filters import quality
        from filters.signals import redact_pii

        how = row.pop("_signals", "computed")
        decision = self.decider.decide(row)
        lang = row.get("lang") or "und"
        stat = {"lang": lang, "removed_by": decision.removed_by, "rule": decision.rule,
                "failed": sorted(set(decision.failed)), "signals": how, "c4_lines": 0, "pii": {}}
        if not decision.keep:
            out = {**row, "removed_by": decision.removed_by, "removal_rule": decision.rule,
                   "removal_reason": decision.reason, "failed_filters": decision.failed}
            if decision.removed_by in self.audited:
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
                text = quality.apply_c4_lines(text, row, thresholds, mask)
                changed = True
            row["c4_lines_removed"] = removed
            stat["c4_lines"] = removed
        if (self.cfg.get("pii") or {}).get("redact", True):
            if self.no_pii(row):
                new_text, counts = text, {}
            else:
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


# ---------------------------------------------------------------------------------------- dedup hook
def dedup_transform(cfg: Mapping[str, Any]):
    """DEDUP HOOK: ``pipelines.dedup.Deduplicate(cfg)`` run on kept documents when ``refine.dedup``
    is true; None when off.  ``pipelines.dedup`` is a required module: if it cannot be imported
    the stage fails at start (no silent run without deduplication).

    Contract: ``docs | Deduplicate(cfg)`` -> {"kept", "removed", "rejected", "stats"}; removed rows
    carry ``dedup_reason``; kept rows gain ``KEPT_FIELDS`` and may have lines removed.  Refine
    uses ``Deduplicate(cfg).decisions()`` and applies them in its output-shard grouping
    (``Refine._write``), with the same result.
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
class Refine(beam.PTransform):
    """Parquet paths -> refine's outputs under ``output``.  Returns ``{"summary", "kept"}``
    PCollections: the summary dict and the full paths of the kept-document files, each once it is
    written (``pipelines all`` hands the kept paths to tokenize).  The steps, in order:

    read -> signals -> [robots.txt opt-out] -> decide -> [decontaminate] -> [dedup]
         -> write kept / removed / rejected -> summary (written last)."""

    def __init__(self, output: str, cfg: Mapping[str, Any], meta: Mapping[str, Any],
                 robots_paths: list[str] | None = None):
        super().__init__()
        self.output = output
        self.cfg = dict(cfg)
        self.meta = dict(meta)
        self.robots_paths = list(robots_paths or [])
        self.shards = int(self.cfg["refine"]["output_shards"])

    def expand(self, paths):
        cfg, output, shards = self.cfg, self.output, self.shards
        input_count = paths | "CountInputs" >> beam.combiners.Count.Globally()
        read = paths | "ReadParquet" >> ReadParquet()   # file -> row-group slices, spread -> rows
        signalled = read["rows"] | "Signals" >> beam.ParDo(SignalsFn(cfg)).with_outputs(REJECTED, main="rows")
        docs = self._robots_opt_out(paths.pipeline, signalled.rows)
        decided = docs | "Decide" >> beam.ParDo(DecideFn(cfg)).with_outputs(REMOVED, STATS, main="kept")
        after = self._after_filters(paths.pipeline, decided.kept, decided[REMOVED])
        kept_files, removed_files = self._write(after)
        rejected = (tuple([read[REJECTED], signalled[REJECTED]] + after["rejected"])
                    | "AllRejected" >> beam.Flatten())
        rejected_files = write_rejected(rejected, output, shards)
        rejected_counts = (rejected | "RejectedReason" >> beam.Map(lambda r: r["reason"])
                           | "CountRejected" >> beam.combiners.Count.PerElement())
        stats = ((read[STATS], decided[STATS]) | "AllStats" >> beam.Flatten()
                 | "Summarise" >> beam.CombineGlobally(SummaryFn(int(cfg["toxicity"]["audit_examples"]))))
        extra = (after["summary"] | "AllExtra" >> beam.Flatten()) if after["summary"] else \
            (paths.pipeline | "NoExtra" >> beam.Create([]))
        summary = (paths.pipeline
                   | "SummaryTrigger" >> beam.Create([None])
                   | "WriteSummary" >> beam.ParDo(
                       WriteSummaryFn(output, self.meta),
                       input_files=beam.pvalue.AsSingleton(input_count),
                       stats=beam.pvalue.AsList(stats),
                       rejected=beam.pvalue.AsList(rejected_counts),
                       kept_files=beam.pvalue.AsList(kept_files),
                       removed_files=beam.pvalue.AsList(removed_files),
                       rejected_files=beam.pvalue.AsList(rejected_files),
                       extra=beam.pvalue.AsList(extra)))
        kept_paths = kept_files | "KeptPaths" >> beam.Map(lambda name, out=output: outputs.join(out, name))
        return {"summary": summary, "kept": kept_paths}

    def _robots_opt_out(self, pipeline, docs):
        """With robots.txt captures: documents of hosts that opt out are removed (by host join)."""
        if not self.robots_paths:
            return docs
        from pipelines.consent import ApplyHostOptOut, ReadRobots

        consent = self.cfg.get("consent") or {}
        robots = pipeline | "ReadRobots" >> ReadRobots(self.robots_paths, self.cfg["sources"],
                                                       server_error=consent.get("server_error", "disallow"),
                                                       max_bytes=consent.get("max_robots_bytes", 512 * 1024))
        return docs | "RobotsOptOut" >> ApplyHostOptOut(robots, consent.get("agents") or [])

    def _after_filters(self, pipeline, kept, removed) -> dict:
        """Benchmark decontamination, then dedup's decisions, on the kept documents.  Returns the
        kept rows (without dedup) or dedup's rows and decisions (``"decisions"``, with dedup:
        applied where the rows are written), the removed rows, extra rejected PCollections, extra
        summary sections and the columns they add to the output schemas."""
        fields: list[pa.Field] = []
        summary, rejected = [], []
        decon = decontaminate.apply(pipeline, kept, self.cfg)   # benchmark n-gram matches: removed or marked
        if decon is not None:
            kept, fields = decon["kept"], list(decon["fields"])
            removed = (removed, decon["removed"]) | "WithDecontaminated" >> beam.Flatten()
            summary.append(decon["summary"])
        after = {"kept": kept, "removed": removed, "rejected": rejected, "summary": summary, "fields": fields}
        dedup = dedup_transform(self.cfg)
        if dedup is not None:
            dd = dedup.Deduplicate(self.cfg)
            result = kept | "Dedup" >> dd.decisions()
            rejected.append(result["rejected"] | "DedupRejected" >> beam.Map(_dedup_rejected))
            fields += list(dedup.KEPT_FIELDS) + list(dedup.REMOVED_FIELDS)
            after.update(kept=None, decisions=result, join=dd.join_back())
        return after

    def _write(self, after: Mapping[str, Any]):
        """Kept and removed rows -> their sharded files; the names written (kept, removed).  With
        dedup the rows, dedup's decisions and the removed rows meet in one GroupByKey by output
        shard, which both applies the decisions and feeds the writer (``refine_io.write_joined``)."""
        output, shards, fields = self.output, self.shards, after["fields"]
        if after["kept"] is not None:
            return (_write(after["kept"], "Kept", output, "", shards, kept_schema(fields)),
                    _write(after["removed"], "Removed", output, "removed", shards, removed_schema(fields)))
        from pipelines.dedup.common import MergeStats

        decisions = after["decisions"]
        kept_files, removed_files, join_stats = write_joined(
            decisions, after["removed"], after["join"], _after_dedup, _dedup_removed, output, shards,
            kept_schema(fields), removed_schema(fields))
        stats = (tuple(decisions["stats"]) + (join_stats,)
                 | "DedupStats" >> beam.Flatten()
                 | "MergeDedupStats" >> beam.CombineGlobally(MergeStats()))
        after["summary"].append(stats | "DedupSummary" >> beam.Map(lambda st: {"dedup": dict(st)}))
        return kept_files, removed_files


def build(pipeline, inputs, output: str, cfg: Mapping[str, Any], meta: Mapping[str, Any],
          robots_paths: list[str] | None = None) -> dict:
    """``Refine`` over ``inputs``: a list of Parquet paths, or a PCollection of them (the files an
    extract step of the same job writes).  Returns Refine's ``{"summary", "kept"}``."""
    paths = inputs if isinstance(inputs, beam.PCollection) else pipeline | "Inputs" >> beam.Create(sorted(inputs))
    return paths | "Refine" >> Refine(output, cfg, meta, robots_paths)


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
    paths = list_inputs(args.input)
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
    def job(target):   # a staging folder; outputs.run_stage moves its files into args.output
        with new_pipeline(beam_args) as pipeline:
            build(pipeline, paths, target, cfg, meta, robots_paths)

    summary = outputs.run_stage(args, "refine", STAGE_OUTPUTS, job)
    print_summary(summary, args.output, time.monotonic() - started)
    return summary
