"""Distributions of the thresholded signals and "what if the threshold were X" counts.

For every threshold that ``filters.decisions`` applies to one stored value (one ``Spec`` per
condition of each threshold rule the signal families declare, ``decisions.threshold_rules``),
streaming over kept + removed documents:

* a histogram of the value the decision used (overall and per language), with fixed bins, so
  memory does not grow with the number of documents;
* for several alternative thresholds: documents failing that rule, documents the filters would
  remove in total (the rule, or any other rule that fails today), and their characters.

The values, thresholds and comparisons are ``filters.decisions``' column-wise evaluation
(``condition_values``, ``row_thresholds``, ``rule_fails``): the stored signal columns, or for the
C4 and FineWeb rules whose value is derived from the per-line signals, the filter's ``values``;
per-language thresholds resolved as ``Decider`` resolves them, with the changed config.  A
million documents take seconds; tests/test_report.py checks every number against
``Decider(changed config).decide`` run row by row.  The "other rules" a document fails come from
the stored ``failed_filters`` column (every failing rule, not only the first) when the run's
config hash matches, else from ``Decider(cfg).decide`` per row.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from filters import decisions

MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
COUNT_EDGES = [0, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10_000, 20_000,
               50_000, 100_000, 200_000]


@dataclass(frozen=True)
class Spec:
    key: str                 # threshold name as in the config
    path: tuple[str, ...]    # where it sits in the config
    rule: str                # group.rule in failed_filters
    filter: str              # refine.filters entry that runs it
    column: str | None       # stored column with the value; None: derived from the line signals
    kind: str                # frac | count | ratio (histogram bins)
    label: str
    by_language: bool
    ref: decisions.RuleRef   # the rule, and which of its conditions this threshold belongs to
    index: int

    @property
    def group(self) -> str:
        return self.rule.split(".", 1)[0]


def get_path(cfg: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = cfg
    for part in path:
        node = node[part]
    return node


def with_threshold(cfg: Mapping[str, Any], path: Sequence[str], value: Any) -> dict:
    out = copy.deepcopy(dict(cfg))
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def active_specs(cfg: Mapping[str, Any]) -> list[Spec]:
    """One spec per condition of every threshold rule that runs and whose threshold is set."""
    out = []
    for ref in decisions.threshold_rules(cfg):
        for i, c in enumerate(ref.rule.conditions):
            path = ref.path(c)
            if get_path(cfg, path) is None:
                continue
            out.append(Spec(c.key, path, ref.rule.name, ref.filter.name, c.column, c.kind, c.label,
                            c.by_language, ref, i))
    return out


def alternatives(spec: Spec, base: float) -> list[float]:
    if base == 0:
        values = {0.0, 0.05, 0.1, 0.2} if spec.kind == "frac" else {0, 1, 2, 5}
    else:
        values = {base * m for m in MULTIPLIERS}
    if spec.kind == "count" or isinstance(base, int) and not isinstance(base, bool):
        values = {int(round(v)) for v in values}
    else:
        values = {round(v, 4) for v in values}
        if spec.kind == "frac":
            values = {min(1.0, max(0.0, v)) for v in values}
    return sorted(values | {base})


def bin_edges(spec: Spec, base: float) -> np.ndarray:
    if spec.kind == "count":
        edges = [e for e in COUNT_EDGES if e <= max(COUNT_EDGES[3], base * 40)]
        return np.array(edges + [math.inf], dtype=float)
    if spec.kind == "frac":
        return np.linspace(0.0, 1.0, 21)
    hi = base * 3 if base > 0 else 1.0
    return np.append(np.linspace(0.0, hi, 21), math.inf)


def _column(batch, name: str, n: int, null: float = math.nan) -> np.ndarray:
    if name not in batch.schema.names:
        return np.full(n, null)
    col = batch.column(name)
    if str(col.type) == "bool":
        col = col.cast("int8")
    return col.to_numpy(zero_copy_only=False).astype(float) if col.null_count == 0 else \
        np.array([null if v is None else float(v) for v in col.to_pylist()])


class WhatIf:
    """Streams record batches; ``result()`` gives histograms and what-if tables per spec."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = cfg
        self.specs = active_specs(cfg)
        self.base = {s.rule + "|" + s.key: get_path(cfg, s.path) for s in self.specs}
        self.alts: dict[str, list] = {}
        self.alt_cfgs: dict[str, list[dict]] = {}
        self.edges: dict[str, np.ndarray] = {}
        for s in self.specs:
            sid = s.rule + "|" + s.key
            self.alts[sid] = alternatives(s, self.base[sid])
            self.edges[sid] = bin_edges(s, self.base[sid])
            self.alt_cfgs[sid] = [with_threshold(cfg, s.path, v) for v in self.alts[sid]]
        self._caches: dict[tuple, dict] = {}     # (sid, alternative) -> threshold mappings by language
        self.hist: dict[str, dict[str, np.ndarray]] = {sid: {} for sid in self.alts}
        self.counts = {sid: np.zeros((len(v), 3), dtype=np.int64) for sid, v in self.alts.items()}
        self.documents = 0
        self.lang_thresholds: dict[str, dict[str, float]] = {sid: {} for sid in self.alts}

    @property
    def needs_lines(self) -> bool:
        return any(s.column is None for s in self.specs)

    def columns(self) -> list[str]:
        cols = {c.column for s in self.specs for c in s.ref.rule.conditions if c.column}
        for s in self.specs:
            if s.column is None:
                cols |= set(s.ref.filter.value_columns)
        return sorted(cols)

    def _thresholds(self, spec: Spec, i: int | None, langs: decisions.Languages) -> decisions.RowThresholds:
        sid = spec.rule + "|" + spec.key
        cfg = self.cfg if i is None else self.alt_cfgs[sid][i]
        cache = self._caches.setdefault(("base", spec.filter) if i is None else (sid, i), {})
        return decisions.row_thresholds(spec.ref.filter, cfg, langs, cache)

    def _derived(self, batch, langs: decisions.Languages) -> dict[str, list]:
        """Per filter with derived rules, each row's derived values (base thresholds)."""
        out: dict[str, list] = {}
        for s in self.specs:
            flt = s.ref.filter
            if s.column is None and flt.name not in out:
                names = [c for c in flt.value_columns if c in batch.schema.names]
                rows = batch.select(names).to_pylist()
                out[flt.name] = decisions.derived_values(flt, rows, self._thresholds(s, None, langs))
        return out

    def add(self, batch, failed: Sequence[Sequence[str]]) -> None:
        """``failed``: per row, every filter rule that fails with the run's thresholds."""
        n = batch.num_rows
        if not n or not self.specs:
            self.documents += n
            return
        self.documents += n
        langs = [v if v else "und" for v in batch.column("lang").to_pylist()] if "lang" in batch.schema.names \
            else ["und"] * n
        chars = _column(batch, "text_chars", n, 0.0)
        groups = decisions.Languages.of(langs)
        derived = self._derived(batch, groups) if self.needs_lines else {}
        columns = {c.column: _column(batch, c.column, n) for s in self.specs for c in s.ref.rule.conditions
                   if c.column}
        lang_arr = np.array(langs, dtype=object)
        uniq = sorted(set(langs))
        for s in self.specs:
            sid = s.rule + "|" + s.key
            ref, conds = s.ref, s.ref.rule.conditions
            rows_derived = derived.get(ref.filter.name, ())
            values = [decisions.condition_values(ref, c, columns, rows_derived) for c in conds]
            x = values[s.index]
            others = np.array([any(r != s.rule for r in f) for f in failed], dtype=bool)
            finite = ~np.isnan(x)
            for lang in uniq:
                sel = (lang_arr == lang) & finite
                if sel.any():
                    h, _ = np.histogram(x[sel], bins=self.edges[sid])
                    acc = self.hist[sid].setdefault(lang, np.zeros(len(h), dtype=np.int64))
                    acc += h
            for i, alt in enumerate(self.alts[sid]):
                rows_t = self._thresholds(s, i, groups)
                limits = [decisions.condition_thresholds(c, rows_t) for c in conds]
                if ref.filter.per_language is not None and alt == self.base[sid]:
                    _, first = np.unique(groups.index, return_index=True)   # a row of each language
                    self.lang_thresholds[sid].update(
                        {lang: float(limits[s.index][j]) for lang, j in zip(groups.distinct, first)})
                fail = decisions.rule_fails(ref, values, limits)
                removed = fail | others
                self.counts[sid][i] += (int(fail.sum()), int(removed.sum()), int(chars[removed].sum()))

    def result(self, tokens_per_char: float | None) -> list[dict]:
        out = []
        for s in self.specs:
            sid = s.rule + "|" + s.key
            base = self.base[sid]
            hist = {lang: h.tolist() for lang, h in sorted(self.hist[sid].items())}
            total = np.sum(list(self.hist[sid].values()), axis=0).tolist() if hist else []
            rows = []
            for alt, (fail, removed, chars) in zip(self.alts[sid], self.counts[sid].tolist()):
                rows.append({"threshold": alt, "current": alt == base, "fail_rule": fail, "removed": removed,
                             "chars_removed": chars,
                             "tokens_removed": round(chars * tokens_per_char) if tokens_per_char else None})
            now = next(r for r in rows if r["current"])
            for r in rows:
                r["delta"] = r["removed"] - now["removed"]
            own = {lang: t for lang, t in self.lang_thresholds[sid].items()
                   if not (t == base or (math.isnan(t) and base is None))}
            out.append({"id": sid.replace("|", "-").replace(".", "-"), "spec": s,
                        "config_key": ".".join(s.path), "threshold": base, "rows": rows,
                        "edges": self.edges[sid].tolist(), "hist_all": total, "hist": hist,
                        "language_thresholds": {k: (None if math.isnan(v) else v) for k, v in sorted(own.items())},
                        "fail_now": now["fail_rule"], "measured": int(sum(total)) if total else 0})
        return out
