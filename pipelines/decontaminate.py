"""Benchmark decontamination inside refine (and ``all``): remove or mark documents that share word
n-grams with evaluation text.  The matching logic is ``filters.decontamination``; this module is
the Beam wiring and the config / CLI glue.

Graph (added by ``apply`` to refine's kept documents, after the filters, before dedup)::

    benchmark specs --Create--> LoadBenchmark (workers read the files through Beam FileSystems)
        --> ToList --> BuildIndex (one BenchmarkIndex: sorted uint64 n-gram hashes)  -- side input --
    kept docs --> Decontaminate (index.find per document)
        clean / marked --> kept            hit + action remove --> removed (removed_by decontamination)
        per (document, benchmark) hit --> CombineGlobally --> summary["decontamination"]

The index travels as a side input: 12 bytes per benchmark n-gram (about 1 n-gram per word of
benchmark text), so a benchmark of a few MB of text is a few MB on every worker.  The driver loads
the benchmarks once before the job starts (bad files fail there with one line) and refuses an
index above ``decontamination.max_side_input_ngrams``; a sharded join on n-gram hashes
(CoGroupByKey) for larger benchmarks is not implemented.

Summary shape (rendered by the data card)::

    "decontamination": {"ngram": n, "action": "remove"|"mark",
                        "benchmarks": {NAME: {"documents_hit": int, "ngrams_matched": int,
                                              "snippets": [str, ... at most 5]}}}
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Mapping

import apache_beam as beam
import pyarrow as pa

log = logging.getLogger("pipelines.decontaminate")

REMOVED = "removed"
STATS = "stats"
SNIPPETS = 5
REASON_CHARS = 1000
ACTIONS = ("remove", "mark")
MARK_FIELDS = [pa.field("contamination", pa.list_(pa.struct([
    pa.field("benchmark", pa.string()), pa.field("ngrams", pa.int32()), pa.field("snippet", pa.string())])))]


# ---------------------------------------------------------------------------------------- config / CLI
def _benchmark_arg(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: use NAME=PATH_OR_GLOB")
    return name.strip(), path.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", action="append", type=_benchmark_arg, default=[], metavar="NAME=PATH_OR_GLOB",
                        help="remove documents sharing n-grams with this evaluation text (JSONL, Parquet or "
                             "plain text; local, gs:// or s3://); repeatable; see decontamination in the config")


def with_cli_benchmarks(cfg: Mapping[str, Any], benchmarks) -> dict:
    """``cfg`` with ``--benchmark NAME=PATH`` entries added to ``decontamination.benchmarks``."""
    cfg = dict(cfg)
    section = dict(cfg.get("decontamination") or {})
    merged = dict(section.get("benchmarks") or {})
    for name, path in benchmarks or []:
        merged[name] = {"path": path, "format": "auto", "fields": None}
    section["benchmarks"] = merged
    cfg["decontamination"] = section
    return cfg


def benchmark_specs(cfg: Mapping[str, Any]) -> dict[str, dict]:
    """``{NAME: {"path", "format", "fields"}}`` from the config (a bare string is the path)."""
    from filters.decontamination import FORMATS

    raw = (cfg.get("decontamination") or {}).get("benchmarks") or {}
    if not isinstance(raw, Mapping):
        raise ValueError("decontamination.benchmarks must be a mapping NAME: {path: ..., format: ..., fields: [...]}")
    specs = {}
    for name, spec in sorted(raw.items()):
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("path"), str) or not spec["path"]:
            raise ValueError(f"decontamination.benchmarks.{name}: needs a path (PATH_OR_GLOB)")
        unknown = set(spec) - {"path", "format", "fields"}
        if unknown:
            raise ValueError(f"decontamination.benchmarks.{name}: unknown key(s) {', '.join(sorted(unknown))}; "
                             "known: path, format, fields")
        fmt = spec.get("format") or "auto"
        if fmt not in FORMATS:
            raise ValueError(f"decontamination.benchmarks.{name}.format: {fmt!r}; use one of {', '.join(FORMATS)}")
        fields = spec.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise ValueError(f"decontamination.benchmarks.{name}.fields must be a list of field names")
        specs[str(name)] = {"path": spec["path"], "format": fmt, "fields": fields or None}
    return specs


def settings(cfg: Mapping[str, Any]) -> dict:
    d = dict(cfg.get("decontamination") or {})
    n, min_matches = int(d.get("ngram", 13)), int(d.get("min_matches", 1))
    if n < 1 or min_matches < 1:
        raise ValueError("decontamination.ngram and decontamination.min_matches must be at least 1")
    if d.get("action", "remove") not in ACTIONS:
        raise ValueError(f"decontamination.action: {d.get('action')!r}; use remove or mark")
    frac = d.get("max_stopword_frac")
    if frac is not None and not 0 <= float(frac) <= 1:
        raise ValueError("decontamination.max_stopword_frac must be between 0 and 1 (or null)")
    return d


# ---------------------------------------------------------------------------------------- index
def _fs_open(path: str):
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _fs_match(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception as exc:
        from filters.decontamination import BenchmarkError

        raise BenchmarkError(f"benchmark {pattern}: cannot list ({exc})") from None


def load_passages(spec: Mapping[str, Any]) -> list[str]:
    from filters.decontamination import load_benchmark_texts

    return load_benchmark_texts(spec["path"], spec["format"], spec["fields"], open_file=_fs_open, match=_fs_match)


def build_index(cfg: Mapping[str, Any], named_passages):
    """A frozen BenchmarkIndex of ``(name, passage)`` items with the config's precision settings."""
    from filters.decontamination import BenchmarkIndex
    from filters.text_units import stop_words

    d = settings(cfg)
    frac = d.get("max_stopword_frac")
    index = BenchmarkIndex.build(named_passages, n=int(d["ngram"]),
                                 max_stopword_frac=None if frac is None else float(frac),
                                 stop_words=stop_words(d.get("stopword_language")) if frac is not None else frozenset())
    if d.get("reference"):
        from filters.decontamination import load_benchmark_texts

        texts = load_benchmark_texts(d["reference"], "auto", d.get("reference_fields"),
                                     open_file=_fs_open, match=_fs_match)
        index.drop_common(texts, int(d.get("reference_min_docs", 2)))
    return index


def check(cfg: Mapping[str, Any]):
    """Driver-side check before the job: every benchmark readable, the index within the side-input
    limit.  Returns the index (None without benchmarks)."""
    specs = benchmark_specs(cfg)
    if not specs:
        return None
    d = settings(cfg)
    index = build_index(cfg, ((name, p) for name, spec in specs.items() for p in load_passages(spec)))
    limit = int(d.get("max_side_input_ngrams") or 0)
    if limit and len(index) > limit:
        raise ValueError(f"decontamination: the benchmarks hold {len(index)} n-grams, above "
                         f"decontamination.max_side_input_ngrams ({limit}, {index.nbytes >> 20} MiB on every "
                         "worker); split the benchmarks over several runs (a sharded join is not implemented)")
    for name, count in index.ngrams_per_benchmark().items():
        log.info("decontamination: benchmark %s: %d passages, %d n-grams", name, index.passages[name], count)
        if count == 0:
            raise ValueError(f"decontamination: benchmark {name} has no {index.n}-word passage; "
                             "lower decontamination.ngram")
    return index


# ---------------------------------------------------------------------------------------- graph
class DecontaminateFn(beam.DoFn):
    def __init__(self, action: str, min_matches: int):
        self.action = action
        self.min_matches = min_matches
        self.hit = beam.metrics.Metrics.counter("refine", "decontamination_hits")

    def process(self, row: dict, index):
        matches = index.find(row.get("text") or "", self.min_matches)
        for m in matches:
            yield beam.pvalue.TaggedOutput(STATS, {"benchmark": m.benchmark, "ngrams": m.ngrams,
                                                   "doc_id": row["doc_id"], "snippet": m.text})
        if not matches:
            yield row
            return
        self.hit.inc()
        if self.action == "mark":
            yield {**row, "contamination": [{"benchmark": m.benchmark, "ngrams": m.ngrams, "snippet": m.text}
                                            for m in matches]}
            return
        rules = [f"decontamination.{m.benchmark}" for m in matches]
        yield beam.pvalue.TaggedOutput(REMOVED, {
            **row, "removed_by": "decontamination", "removal_rule": rules[0],
            "removal_reason": "; ".join(m.reason() for m in matches)[:REASON_CHARS], "failed_filters": rules})


class SummaryFn(beam.CombineFn):
    """(document, benchmark) hits -> per-benchmark counts and the snippets of the smallest doc_ids."""

    def __init__(self, names):
        self.names = sorted(names)

    def create_accumulator(self):
        return {name: {"documents_hit": 0, "ngrams_matched": 0, "examples": []} for name in self.names}

    def add_input(self, acc, hit):
        b = acc.setdefault(hit["benchmark"], {"documents_hit": 0, "ngrams_matched": 0, "examples": []})
        b["documents_hit"] += 1
        b["ngrams_matched"] += hit["ngrams"]
        b["examples"] = sorted(b["examples"] + [(hit["doc_id"], hit["snippet"])])[:SNIPPETS]
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            for name, b in acc.items():
                dst = out.setdefault(name, {"documents_hit": 0, "ngrams_matched": 0, "examples": []})
                dst["documents_hit"] += b["documents_hit"]
                dst["ngrams_matched"] += b["ngrams_matched"]
                dst["examples"] = sorted(dst["examples"] + b["examples"])[:SNIPPETS]
        return out

    def extract_output(self, acc):
        return {name: {"documents_hit": b["documents_hit"], "ngrams_matched": b["ngrams_matched"],
                       "snippets": [s for _, s in b["examples"]]} for name, b in sorted(acc.items())}


def _load(spec_item):
    name, spec = spec_item
    return [(name, p) for p in load_passages(spec)]


def apply(pipeline, kept, cfg: Mapping[str, Any]) -> dict | None:
    """Decontaminate refine's kept documents; None when no benchmark is configured.

    Returns ``{"kept", "removed", "summary", "fields"}``: ``summary`` is a PCollection of one
    ``{"decontamination": {...}}`` dict (and one ``{"decontamination_removed": n}`` that
    ``adjust_summary`` folds into the counts), ``fields`` the columns added to the kept schema."""
    specs = benchmark_specs(cfg)
    if not specs:
        return None
    d = settings(cfg)
    action, n = d.get("action", "remove"), int(d["ngram"])
    frozen_cfg = {"decontamination": dict(d)}
    index = (pipeline
             | "BenchmarkSpecs" >> beam.Create(sorted(specs.items()))
             | "LoadBenchmark" >> beam.FlatMap(_load)
             | "BenchmarkPassages" >> beam.combiners.ToList()
             | "BuildIndex" >> beam.Map(lambda items, c=frozen_cfg: build_index(c, sorted(items))))
    result = kept | "Decontaminate" >> beam.ParDo(
        DecontaminateFn(action, int(d["min_matches"])), beam.pvalue.AsSingleton(index)).with_outputs(
        REMOVED, STATS, main="kept")
    summary = (result[STATS]
               | "DecontaminationSummary" >> beam.CombineGlobally(SummaryFn(specs))
               | "DecontaminationSection" >> beam.Map(
                   lambda b, n=n, a=action: {"decontamination": {"ngram": n, "action": a, "benchmarks": b}}))
    removed_count = (result[REMOVED]
                     | "CountDecontaminated" >> beam.combiners.Count.Globally()
                     | "DecontaminatedCount" >> beam.Map(lambda c: {"decontamination_removed": c}))
    summary = (summary, removed_count) | "DecontaminationSummaries" >> beam.Flatten()
    return {"kept": result.kept, "removed": result[REMOVED], "summary": summary,
            "fields": MARK_FIELDS if action == "mark" else []}


def adjust_summary(summary: dict) -> dict:
    """Refine's per-filter counts are taken before decontamination; count its removals in."""
    hit = summary.pop("decontamination_removed", 0)
    if hit:
        summary["kept"] -= hit
        summary["removed"] += hit
        counts = {**summary["removed_by"], "decontamination": hit}
        summary["removed_by"] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return summary


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """Lines for refine's console summary (none without benchmarks)."""
    section = summary.get("decontamination")
    if not section:
        return []
    verb = "removed" if section["action"] == "remove" else "marked"
    return [f"  decontamination ({section['ngram']}-grams, {verb}): " +
            ", ".join(f"{name} {b['documents_hit']} docs / {b['ngrams_matched']} n-grams"
                      for name, b in section["benchmarks"].items())]
