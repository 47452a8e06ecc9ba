"""The refine stage's summary: per-document stats combined into ``summary.json``, and its printout.

``SummaryFn`` folds the per-document stats that ``DecideFn`` emits (kept / removed by filter,
rule and language, would-fail counts, toxicity audit lines, PII redactions) into one accumulator;
``build_summary`` turns it into the ``summary.json`` document and ``WriteSummaryFn`` writes it once
every output exists.  ``print_summary`` is what ``python -m pipelines refine`` prints.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam

from pipelines import decontaminate, outputs

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
            summary["kept"] = summary["dedup"].get("kept", 0)   # counted per written shard; none: 0
            summary["removed_by_dedup"] = summary["kept_before_dedup"] - summary["kept"]
        summary["outputs"] = {"kept": sorted(kept_files), "removed": sorted(removed_files),
                              "rejected": sorted(rejected_files)}
        outputs.write_json(outputs.join(self.output, "summary.json"), summary)
        yield summary


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
