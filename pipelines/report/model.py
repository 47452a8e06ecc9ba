"""The report's content as plain data: summaries + the collector's facts -> one dict per section.

A section whose inputs are missing is None and is left out of the page and the data card (a run
without ``shards/`` has no token section, a run without a trainer no training curve).  Numbers are
copied from the stage summaries unchanged; the only estimate, tokens per language, is labelled as
one (kept characters x the run's tokens per character).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from pipelines.report.collect import Collector, Redactor
from pipelines.report.layout import INPUT_LIST, MANIFEST, RunLayout, code_version, join

FILTER_LABELS = {
    "url_blocklist": "URL blocklist", "consent": "consent opt-outs", "language": "language ID",
    "gopher_repetition": "Gopher repetition", "gopher_quality": "Gopher quality", "c4": "C4 rules",
    "fineweb": "FineWeb rules", "quality_model": "quality model", "toxicity_words": "toxicity word lists",
    "toxicity_classifier": "toxicity classifier", "dedup": "deduplication",
}
TOXICITY_GROUPS = ("toxicity_words", "toxicity_classifier", "url_blocklist")
SECTIONS = ("funnel", "extract", "refine", "languages", "toxicity", "whatif", "filtered_docs", "dedup", "pii",
            "consent", "decontamination", "examples", "tokens", "tokens_per_char", "training", "collector")


def _when(ts: float | None) -> str | None:
    if not ts:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _sorted_counts(d: Mapping[str, int] | None) -> list[tuple[str, int]]:
    return sorted((d or {}).items(), key=lambda kv: (-kv[1], kv[0]))


def filter_order(cfg: Mapping[str, Any]) -> list[str]:
    out = []
    for name in cfg["refine"]["filters"]:
        out += list(cfg["quality"]["filters"]) if name == "quality" else [name]
    return out


def funnel(extract: dict | None, refine: dict | None, tokenize: dict | None, cfg: Mapping[str, Any]) -> list[dict]:
    steps: list[dict] = []
    if extract:
        dropped = extract.get("dropped_by_reason") or {}
        rec_types = sum(n for k, n in dropped.items() if k.startswith("record_type:"))
        status = sum(n for k, n in dropped.items() if k.startswith("http_status:"))
        read = extract.get("records_read", 0)
        responses = read - extract.get("dead_lettered", 0) - rec_types
        steps += [{"step": "WARC records read", "documents": read, "fact": "extract.records_read"},
                  {"step": "HTTP responses (not requests/metadata; not malformed)", "documents": responses},
                  {"step": "HTML pages with status 200", "documents": responses - status - dropped.get("not_html", 0)},
                  {"step": "documents extracted", "documents": extract.get("kept", 0), "fact": "extract.kept"}]
    if refine:
        left = refine.get("documents_filtered", refine.get("documents_in", 0))
        steps.append({"step": "documents into the filters", "documents": left, "fact": "refine.documents_filtered"})
        removed = dict(refine.get("removed_by") or {})
        order = filter_order(cfg) + sorted(k for k in removed if k not in filter_order(cfg))
        for group in order:
            if removed.get(group):
                left -= removed[group]
                steps.append({"step": f"after {FILTER_LABELS.get(group, group)} (−{removed[group]:,})",
                              "documents": left})
        if "removed_by_dedup" in refine:
            steps.append({"step": f"after deduplication (−{refine['removed_by_dedup']:,})",
                          "documents": refine.get("kept", 0), "fact": "refine.kept"})
        else:
            steps[-1]["fact"] = "refine.kept"
    if tokenize:
        steps.append({"step": "documents tokenized", "documents": tokenize.get("documents_read", 0),
                      "fact": "tokenize.documents_read"})
    return steps


def language_rows(refine: dict, facts: dict, tpc: float | None) -> list[dict]:
    rows = []
    for lang, per in (refine.get("per_language") or {}).items():
        seen = facts["languages"].get(lang, {})
        top = _sorted_counts(per.get("removed_by_rule"))[:3]
        if seen.get("dedup_removed"):
            top.append(("dedup", seen["dedup_removed"]))
        docs = per.get("documents", 0)
        tox = sum((per.get("removed_by") or {}).get(g, 0) for g in TOXICITY_GROUPS)
        rows.append({"lang": lang, "documents": docs, "kept_filters": per.get("kept", 0),
                     "kept_share": per.get("kept", 0) / docs if docs else 0.0,
                     "kept_final": seen.get("kept_docs", 0), "kept_chars": seen.get("kept_chars", 0),
                     "tokens_est": round(seen.get("kept_chars", 0) * tpc) if tpc else None,
                     "reasons": top, "toxicity_removed": tox, "toxicity_share": tox / docs if docs else 0.0})
    return sorted(rows, key=lambda r: (-r["documents"], r["lang"]))


def tokens_section(layout: RunLayout, tokenize: dict) -> dict:
    splits = [{"split": name, **info} for name, info in sorted((tokenize.get("splits") or {}).items())]
    total = sum(s.get("tokens", 0) for s in splits)
    sizes = None
    shards = layout.dir("tokenize")
    if "://" not in shards:
        import glob
        import os

        import numpy as np

        from tokenization.indexed import IndexedDataset
        from pipelines.report.whatif import COUNT_EDGES

        edges = np.array(COUNT_EDGES + [np.inf], dtype=float)
        counts = np.zeros(len(edges) - 1, dtype=np.int64)
        for idx in sorted(glob.glob(os.path.join(shards, "*.idx"))):
            try:
                ds = IndexedDataset(idx[:-4])
                counts += np.histogram(np.asarray(ds.sizes), bins=edges)[0]
            except (ValueError, OSError) as exc:
                layout.problems.append(f"{idx}: {exc}")
        if counts.sum():
            last = int(np.nonzero(counts)[0].max()) + 1
            sizes = {"edges": edges[:last + 1].tolist(), "counts": counts[:last].tolist()}
    return {"splits": splits, "total": total, "tokenizer": tokenize.get("tokenizer") or {},
            "documents": tokenize.get("documents_read", 0), "rejected": tokenize.get("rejected") or {},
            "per_document": sizes}


def training_section(layout: RunLayout) -> dict | None:
    run_dir = layout.dir("train")
    metrics = list(layout.jsonl(join(run_dir, "metrics.jsonl")))
    summary = layout.json(join(run_dir, "summary.json"))
    if not metrics and not isinstance(summary, dict):
        return None
    train = [(m["step"], m.get("loss")) for m in metrics if m.get("type") == "train" and "step" in m]
    val = [(m["step"], m.get("val_loss")) for m in metrics if m.get("type") == "eval" and "step" in m]
    return {"train": train, "val": val, "summary": summary if isinstance(summary, dict) else {},
            "steps": max([s for s, _ in train + val], default=0)}


def dead_letters(layout: RunLayout, redact, limit: int = 5) -> list[dict]:
    from pipelines.report.layout import match

    out = []
    for path, _ in match(join(layout.dir("extract"), "dead-letter", "*.jsonl")):
        for row in layout.jsonl(path, limit=limit):
            item = {k: (str(row.get(k))[:200] if row.get(k) is not None else None)
                    for k in ("reason", "stage", "warc_file", "warc_offset", "url")}
            item["detail"] = redact(str(row.get("detail") or ""), limit=200)
            out.append(item)
            if len(out) >= limit:
                return out
    return out


def toxicity_audit(audit: Any, redact) -> dict:
    """refine's toxicity audit with every line, URL and reason redacted (removed text is raw)."""
    out = {}
    for lang, a in sorted((audit or {}).items()) if isinstance(audit, dict) else []:
        if not isinstance(a, dict):
            continue
        examples = [{"filter": e.get("filter"), "url": redact(str(e.get("url") or ""), limit=300),
                     "reason": redact(str(e.get("reason") or ""), limit=300),
                     "lines": [redact(str(x), limit=300) for x in (e.get("lines") or [])[:5]]}
                    for e in (a.get("examples") or []) if isinstance(e, dict)]
        out[str(lang)] = {"removed": a.get("removed", 0), "by_filter": a.get("by_filter") or {}, "examples": examples}
    return out


def decontamination(dc: Any, redact) -> dict | None:
    """refine's ``decontamination`` summary, checked for shape; snippets redacted and capped."""
    if not isinstance(dc, dict):
        return None
    benchmarks, snippets = {}, {}
    for name, b in sorted((dc.get("benchmarks") or {}).items()) if isinstance(dc.get("benchmarks"), dict) else []:
        b = b if isinstance(b, dict) else {}
        benchmarks[str(name)] = {"documents_hit": b.get("documents_hit", 0), "ngrams_matched": b.get("ngrams_matched", 0)}
        raw = b.get("snippets") if isinstance(b.get("snippets"), list) else []
        snippets[str(name)] = [redact(str(x), limit=300) for x in raw[:5]]
    return {"ngram": dc.get("ngram"), "action": dc.get("action"), "benchmarks": benchmarks,
            "snippets_redacted": snippets}


def provenance(layout: RunLayout, cfg: Mapping[str, Any], summaries: dict, completion: dict | None,
               context: Mapping[str, Any]) -> dict:
    import yaml

    from pipelines.config import config_hash

    extract, refine = summaries.get("extract") or {}, summaries.get("refine") or {}
    run_hash = refine.get("config_sha256") or extract.get("config_sha256")
    used = config_hash(cfg)
    warcs = None
    if completion:
        warcs = len(completion.get("input_warcs") or [])
    else:
        listing = join(layout.root, INPUT_LIST)
        from pipelines.report.layout import exists, read_bytes

        if exists(listing):
            warcs = len([x for x in read_bytes(listing).decode("utf-8", "replace").splitlines() if x.strip()])
    dates = {}
    for stage in ("extract", "refine", "tokenize", "train"):
        if layout.has(stage):
            dates[stage] = _when(layout.modified(join(layout.dir(stage), "summary.json")))
    return {
        "run": layout.root, "snapshot": (completion or {}).get("snapshot") or context.get("snapshot"),
        "input": extract.get("input"), "input_files": extract.get("input_files"), "warcs": warcs,
        "config_hash_run": run_hash, "config_hash_used": used, "config_matches": run_hash in (None, used),
        "config_yaml": yaml.safe_dump(dict(cfg), sort_keys=True, allow_unicode=True),
        "signals_version": refine.get("signals_version"), "code_version": code_version(),
        "runner": context.get("runner") or "not recorded by the stages", "dates": dates,
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "completion": {k: completion.get(k) for k in ("config_hash", "stages", "params")} if completion else None,
    }


def build(layout: RunLayout, cfg: Mapping[str, Any], context: Mapping[str, Any] | None = None,
          examples: int = 3, seed: int = 0) -> dict:
    context = dict(context or {})
    summaries = {stage: layout.summary(stage) for stage in ("extract", "refine", "tokenize")}
    extract, refine, tokenize = summaries["extract"], summaries["refine"], summaries["tokenize"]
    completion = layout.json(join(layout.root, MANIFEST))
    prov = provenance(layout, cfg, summaries, completion if isinstance(completion, dict) else None, context)
    model: dict[str, Any] = {k: None for k in SECTIONS}
    model.update({"provenance": prov, "summaries": summaries, "problems": layout.problems})
    model["funnel"] = funnel(extract, refine, tokenize, cfg) or None
    model["extract"] = extract
    model["dead_letters"] = dead_letters(layout, Redactor(cfg)) if extract else []
    facts = collector = None
    if refine:
        collector = Collector(layout, cfg, examples=examples, seed=seed,
                              trust_stored_decisions=prov["config_matches"])
        facts = collector.run()
        model["collector"] = facts
    model["tokens"] = tokens_section(layout, tokenize) if tokenize else None
    tpc = None
    if facts and model["tokens"] and facts["kept_chars"]:
        tpc = model["tokens"]["total"] / facts["kept_chars"]
    model["tokens_per_char"] = tpc
    model["refine"] = refine
    if refine and facts is not None:
        model["languages"] = language_rows(refine, facts, tpc)
        model["whatif"] = collector.whatif.result(tpc)
        model["filtered_docs"] = facts["filtered_docs"]
        model["toxicity"] = {"audit": toxicity_audit(refine.get("toxicity_audit"), collector.redact),
                             "config": {k: cfg["toxicity"].get(k) for k in (
                                 "wordlists", "classifier", "classifier_languages", "url_blocklist",
                                 "wordlist_min_hits", "wordlist_max_ratio", "classifier_max_frac")}}
        model["dedup"] = {"stats": refine.get("dedup") or {}, "cluster_sizes": facts["cluster_sizes"],
                          "pairs": facts["dedup_pairs"], "dup_lines": facts["dup_lines"],
                          "removed_by_dedup": refine.get("removed_by_dedup")} if refine.get("dedup") else None
        model["pii"] = {"found": facts["pii_found"], "redacted": facts["pii_redacted"],
                        "redacted_total": refine.get("pii_redacted") or {}}
        model["consent"] = {"docs": facts["consent"], "hosts": facts["consent_hosts"],
                            "agents": facts["robots_agents"], "robots_status": facts["robots_status"],
                            "removed": {k: v for k, v in (refine.get("removed_by_rule") or {}).items()
                                        if k.startswith("consent.")},
                            "drop_on": (cfg.get("consent") or {}).get("drop_on"),
                            "robots": refine.get("robots")}
        model["examples"] = {"removed": facts["examples_removed"], "kept": facts["examples_kept"]}
        model["decontamination"] = decontamination(refine.get("decontamination"), collector.redact)
    model["training"] = training_section(layout) if layout.has("train") else None
    return model
