"""One streaming pass over a run's kept and removed Parquet: the facts the summaries do not hold.

Reads only the columns it needs, a record batch at a time; everything it keeps is bounded by the
number of languages, rules, PII types and a few sampled examples (reservoir sampling with a fixed
seed, so a report is reproducible), never by the number of documents.  Text is touched only for
the sampled rows, cut to ``MAX_TEXT`` characters and passed through ``filters.pii.redact``
before it can reach the page: removed documents are stored unredacted, and kept ones too when
``pii.redact`` was off.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any, Mapping
from urllib.parse import urlsplit

from pipelines.report.layout import RunLayout
from pipelines.report.whatif import WhatIf

MAX_TEXT = 4000        # characters redacted per sampled document
EXCERPT = 600          # characters shown
HOST_CAP = 10_000      # distinct opted-out hosts counted exactly up to this many
CONSENT_KINDS = ("optout_noai", "optout_noimageai", "optout_noindex", "optout_tdm")
BASE_COLUMNS = ["doc_id", "url", "lang", "text_chars", "pii_counts", "pii_redacted", *CONSENT_KINDS,
                "robots_disallowed_agents", "robots_status", "dup_cluster_id", "dup_cluster_size",
                "dup_lines_removed", "c4_lines_removed"]
REMOVED_COLUMNS = ["removed_by", "removal_rule", "removal_reason", "failed_filters", "dedup_reason",
                   "dup_kept_doc_id"]


class Reservoir:
    """Algorithm R: a uniform sample of ``k`` items from a stream of unknown length."""

    def __init__(self, k: int, rng: random.Random):
        self.k, self.rng, self.seen, self.items = k, rng, 0, []

    def slot(self) -> int | None:
        """Where the next stream item goes (None: not sampled); call ``put`` when not None."""
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(None)
            return len(self.items) - 1
        j = self.rng.randrange(self.seen)
        return j if j < self.k else None

    def put(self, slot: int, item: Any) -> None:
        self.items[slot] = item


class Redactor:
    def __init__(self, cfg: Mapping[str, Any]):
        from filters import pii

        self.pii = pii
        self.regions = (cfg.get("pii") or {}).get("phone_regions_by_language")

    def __call__(self, text: str | None, url: str | None = None, lang: str | None = None,
                 limit: int = EXCERPT) -> str:
        if not text:
            return ""
        clipped = text[:MAX_TEXT]
        redacted, _ = self.pii.redact(clipped, None, self.pii.region_hint_for(url, lang, self.regions))
        return redacted[:limit] + ("…" if len(redacted) > limit or len(text) > MAX_TEXT else "")


def _host(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


class Collector:
    def __init__(self, layout: RunLayout, cfg: Mapping[str, Any], *, examples: int = 3, seed: int = 0,
                 trust_stored_decisions: bool = True):
        self.layout, self.cfg, self.k = layout, cfg, examples
        self.rng = random.Random(seed)
        self.redact = Redactor(cfg)
        self.whatif = WhatIf(cfg)
        self.decider = None
        if not trust_stored_decisions:
            from filters.decisions import Decider

            self.decider = Decider(cfg)
        self.lang = {}        # lang -> kept_docs, kept_chars, removed by rule after all steps
        self.pii_found: dict[str, Counter] = {}
        self.pii_redacted: dict[str, Counter] = {}
        self.consent = {k: 0 for k in (*CONSENT_KINDS, "robots")}
        self.consent_hosts = {k: set() for k in self.consent}
        self.robots_agents: Counter = Counter()
        self.robots_status: Counter = Counter()
        self.cluster_sizes: Counter = Counter()
        self.dup_lines = {"documents": 0, "lines": 0}
        self.c4_lines = 0
        self.removed_by_rule: Counter = Counter()
        self.examples_removed: dict[str, Reservoir] = {}
        self.examples_kept = Reservoir(max(examples, 5), self.rng)
        self.dedup_pairs = Reservoir(examples, self.rng)
        self.kept_docs = 0
        self.kept_chars = 0
        self.removed_docs = 0

    # ------------------------------------------------------------------------------ reading
    def _columns(self, removed: bool) -> list[str]:
        cols = list(BASE_COLUMNS) + self.whatif.columns()
        if removed:
            cols += REMOVED_COLUMNS
        if self.decider is not None:
            from filters.registry import signal_names

            cols += [c for c in signal_names() if c not in cols] + ["robots_disallowed_agents", "robots_status"]
        return list(dict.fromkeys(cols))

    def run(self) -> dict:
        if self.layout.has("refine"):
            for path in self.layout.parquet_files("refine"):
                self._file(path, removed=False)
            for path in self.layout.parquet_files("refine", "removed"):
                self._file(path, removed=True)
            self._dedup_partners()
        return self.facts()

    def _file(self, path: str, removed: bool) -> None:
        for batch in self.layout.batches(path, self._columns(removed) + ["text"]):
            text_col = batch.column("text") if "text" in batch.schema.names else None
            meta = batch.drop_columns(["text"]) if text_col is not None else batch
            small = meta.select([c for c in meta.schema.names if c in BASE_COLUMNS or c in REMOVED_COLUMNS])
            rows = small.to_pylist()
            if self.decider is not None:
                full = meta.to_pylist()
                failed = [self.decider.decide(r).failed for r in full]
            elif removed:
                failed = [[f for f in (r.get("failed_filters") or []) if not f.startswith("dedup.")] for r in rows]
            else:
                failed = [[] for _ in rows]
            self.whatif.add(meta, failed)
            for i, row in enumerate(rows):
                self._row(row, removed, (lambda i=i: text_col[i].as_py()) if text_col is not None else (lambda: None))

    def _row(self, row: dict, removed: bool, text) -> None:
        lang = row.get("lang") or "und"
        per = self.lang.setdefault(lang, {"kept_docs": 0, "kept_chars": 0, "dedup_removed": 0})
        chars = row.get("text_chars") or 0
        for kind, n in (row.get("pii_counts") or []):
            if n:
                self.pii_found.setdefault(lang, Counter())[kind] += n
        host = _host(row.get("url"))
        for kind in CONSENT_KINDS:
            if row.get(kind):
                self._consent(kind, host)
        agents = row.get("robots_disallowed_agents")
        if agents:
            self._consent("robots", host)
            self.robots_agents.update(a.strip() for a in agents.split(",") if a.strip())
        if row.get("robots_status"):
            self.robots_status[row["robots_status"]] += 1
        if not removed:
            self.kept_docs += 1
            self.kept_chars += chars
            per["kept_docs"] += 1
            per["kept_chars"] += chars
            for kind, n in (row.get("pii_redacted") or []):
                if n:
                    self.pii_redacted.setdefault(lang, Counter())[kind] += n
            size = row.get("dup_cluster_size") or 0
            if size > 1:
                self.cluster_sizes[size] += 1
            if row.get("dup_lines_removed"):
                self.dup_lines["documents"] += 1
                self.dup_lines["lines"] += row["dup_lines_removed"]
            self.c4_lines += row.get("c4_lines_removed") or 0
            slot = self.examples_kept.slot()
            if slot is not None:
                self.examples_kept.put(slot, self._example(row, text(), lang))
            return
        self.removed_docs += 1
        rule = row.get("removal_rule") or row.get("removed_by") or "unknown"
        self.removed_by_rule[rule] += 1
        if row.get("removed_by") == "dedup":
            per["dedup_removed"] += 1
            slot = self.dedup_pairs.slot()
            if slot is not None:
                self.dedup_pairs.put(slot, {**self._example(row, text(), lang),
                                            "kept_doc_id": row.get("dup_kept_doc_id"),
                                            "dedup_reason": row.get("dedup_reason")})
        res = self.examples_removed.setdefault(rule, Reservoir(self.k, self.rng))
        slot = res.slot()
        if slot is not None:
            res.put(slot, self._example(row, text(), lang))

    def _consent(self, kind: str, host: str) -> None:
        self.consent[kind] += 1
        if len(self.consent_hosts[kind]) < HOST_CAP:
            self.consent_hosts[kind].add(host)

    def _example(self, row: dict, text: str | None, lang: str) -> dict:
        return {"doc_id": row.get("doc_id"), "url": self.redact(row.get("url"), limit=300), "lang": lang,
                "rule": row.get("removal_rule"), "reason": self.redact(row.get("removal_reason"), limit=300),
                "chars": row.get("text_chars"), "excerpt": self.redact(text, row.get("url"), lang)}

    def _dedup_partners(self) -> None:
        """Fetch the kept document of each sampled duplicate (a pass over doc_id, text on a hit)."""
        wanted = {p["kept_doc_id"] for p in self.dedup_pairs.items if p and p.get("kept_doc_id")}
        found: dict[str, dict] = {}
        if not wanted:
            return
        for path in self.layout.parquet_files("refine"):
            for batch in self.layout.batches(path, ["doc_id", "url", "lang", "text_chars", "text"]):
                ids = batch.column("doc_id").to_pylist()
                for i, doc_id in enumerate(ids):
                    if doc_id in wanted and doc_id not in found:
                        row = {k: batch.column(k)[i].as_py() for k in batch.schema.names if k != "text"}
                        found[doc_id] = self._example(row, batch.column("text")[i].as_py(), row.get("lang") or "und")
        for pair in self.dedup_pairs.items:
            if pair:
                pair["kept"] = found.get(pair.get("kept_doc_id"))

    # ------------------------------------------------------------------------------ result
    def facts(self) -> dict:
        return {
            "kept_docs": self.kept_docs, "kept_chars": self.kept_chars, "removed_docs": self.removed_docs,
            "languages": self.lang,
            "pii_found": {k: dict(v) for k, v in sorted(self.pii_found.items())},
            "pii_redacted": {k: dict(v) for k, v in sorted(self.pii_redacted.items())},
            "consent": dict(self.consent),
            "consent_hosts": {k: (len(v), len(v) >= HOST_CAP) for k, v in self.consent_hosts.items()},
            "robots_agents": dict(self.robots_agents.most_common(20)),
            "robots_status": dict(self.robots_status),
            "cluster_sizes": dict(sorted(self.cluster_sizes.items())),
            "dup_lines": self.dup_lines, "c4_lines_removed": self.c4_lines,
            "removed_by_rule": dict(self.removed_by_rule),
            "examples_removed": {rule: [x for x in res.items if x] for rule, res in sorted(self.examples_removed.items())},
            "examples_kept": [x for x in self.examples_kept.items if x],
            "dedup_pairs": [x for x in self.dedup_pairs.items if x],
            "filtered_docs": self.whatif.documents,
        }
