"""Keep or remove a document from its stored signals and the configured thresholds.

Nothing here looks at the text or recomputes a signal: a decision is a pure function of the
signal columns and the config, so changing a threshold only needs this step to run again.
Filters run in ``refine.filters`` order; the first failing one is the removal reason, and every
failing rule is listed too (the summary shows both "removed by" and "would also fail").

The filters and their rules are those the signal families declare (``filters.registry``):
``Decider`` walks them row by row; ``threshold_rules`` / ``rule_fails`` evaluate the same
threshold rules over whole columns (numpy), for the report's what-if tables.  Both use the
rule's one definition (``filters.family.ThresholdRule``); tests check that they agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from filters import registry
from filters.family import Condition, Filter, ThresholdRule


def filter_names() -> tuple[str, ...]:
    """Every ``refine.filters`` entry, from the registry."""
    return tuple(registry.filters())


def audited_filters() -> tuple[str, ...]:
    """The filters whose removals keep example lines for the toxicity audit."""
    return tuple(name for name, flt in registry.filters().items() if flt.audited)


@dataclass
class Decision:
    keep: bool
    removed_by: str | None = None      # filter group: language, gopher_quality, toxicity_words, ...
    rule: str | None = None            # group.rule that decided: gopher_quality.stop_words
    reason: str | None = None          # readable, with the measured value and the threshold
    failed: list[str] = field(default_factory=list)   # every failing group.rule, in filter order


class Decider:
    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = cfg
        known = registry.filters()
        order = list(cfg["refine"]["filters"])
        unknown = [f for f in order if f not in known]
        if unknown:
            raise ValueError(f"refine.filters: unknown filter {unknown[0]!r}; choose from {', '.join(known)}")
        registry.check_config(cfg)
        self.order = order
        self.filters: list[Filter] = [known[name] for name in order]
        self._known = known
        self._quality = known["quality"]
        self._thresholds: dict[tuple[str, str | None], Mapping[str, Any]] = {}

    def filter_thresholds(self, flt: Filter, lang: str | None) -> Mapping[str, Any]:
        key = (flt.name, lang if flt.per_language is not None else None)
        if key not in self._thresholds:
            self._thresholds[key] = flt.thresholds(self.cfg, lang)
        return self._thresholds[key]

    def thresholds(self, lang: str | None) -> Mapping[str, Any]:
        """The quality thresholds for ``lang`` (C4 line rules on kept text)."""
        return self.filter_thresholds(self._quality, lang)

    def check(self, name: str, signals: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The (rule, reason) failures of the filter ``name`` alone."""
        flt = self._known[name]
        return flt.failures(signals, self.cfg, self.filter_thresholds(flt, signals.get("lang")))

    def decide(self, signals: Mapping[str, Any]) -> Decision:
        failed: list[tuple[str, str]] = []
        first: tuple[str, str, str] | None = None
        lang = signals.get("lang")
        for flt in self.filters:
            fails = flt.failures(signals, self.cfg, self.filter_thresholds(flt, lang))
            if fails and first is None:
                rule, reason = fails[0]
                first = (rule.split(".", 1)[0], rule, reason)
            failed += fails
        names = [rule for rule, _ in failed]
        if first is None:
            return Decision(keep=True, failed=names)
        return Decision(keep=False, removed_by=first[0], rule=first[1], reason=first[2], failed=names)


# ------------------------------------------------------------------------------ column-wise
@dataclass(frozen=True)
class RuleRef:
    """A threshold rule of a filter that runs with the given config."""
    filter: Filter
    rule: ThresholdRule

    def path(self, condition: Condition) -> tuple[str, ...]:
        return self.filter.threshold_path(condition.key)


def threshold_rules(cfg: Mapping[str, Any]) -> list[RuleRef]:
    """The threshold rules of the filters in ``refine.filters`` (registry order)."""
    order = set(cfg["refine"]["filters"])
    return [RuleRef(flt, rule) for name, flt in registry.filters().items() if name in order
            for rule in flt.rules if flt.enabled is None or flt.enabled(cfg, rule)]


@dataclass(frozen=True)
class RowThresholds:
    """The threshold mapping of each row, stored once per distinct mapping (language)."""
    mappings: list[Mapping[str, Any]]
    index: np.ndarray                  # row -> position in ``mappings``

    def __len__(self) -> int:
        return len(self.index)

    def rows(self) -> list[Mapping[str, Any]]:
        return [self.mappings[i] for i in self.index]


@dataclass(frozen=True)
class Languages:
    """Each row's language as positions into the distinct languages (computed once per batch)."""
    distinct: list[str | None]
    index: np.ndarray

    @classmethod
    def of(cls, langs: Sequence[str | None]) -> "Languages":
        position: dict[str | None, int] = {}
        index = np.array([position.setdefault(lang, len(position)) for lang in langs], dtype=np.int64)
        return cls(list(position), index)


def row_thresholds(flt: Filter, cfg: Mapping[str, Any], langs: Sequence[str | None] | Languages,
                   cache: dict | None = None) -> RowThresholds:
    """The threshold mapping each row is held to by ``flt`` (per language where it has one);
    ``cache`` (one per config) keeps the mappings between calls."""
    cache = {} if cache is None else cache
    langs = langs if isinstance(langs, Languages) else Languages.of(langs)
    if flt.per_language is None:
        if (flt.name, None) not in cache:
            cache[(flt.name, None)] = flt.thresholds(cfg, None)
        return RowThresholds([cache[(flt.name, None)]], np.zeros(len(langs.index), dtype=np.int64))
    for lang in langs.distinct:
        if (flt.name, lang) not in cache:
            cache[(flt.name, lang)] = flt.thresholds(cfg, lang)
    return RowThresholds([cache[(flt.name, lang)] for lang in langs.distinct], langs.index)


def derived_values(flt: Filter, rows: Sequence[Mapping[str, Any]],
                   thresholds: RowThresholds) -> list[Mapping[str, Any]]:
    """Per row, the values of ``flt``'s rules that have no stored column (``Filter.values``)."""
    if flt.values is None:
        return [{} for _ in rows]
    return [flt.values(row, t) for row, t in zip(rows, thresholds.rows())]


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def condition_values(ref: RuleRef, condition: Condition, columns: Mapping[str, np.ndarray],
                     derived: Sequence[Mapping[str, Any]] = ()) -> np.ndarray:
    """The values a condition compares, as floats (NaN: null, or the condition's ``missing``)."""
    if condition.column is not None:
        x = np.asarray(columns[condition.column], dtype=float)
    else:
        x = _floats([d.get(ref.rule.name) for d in derived])
    if condition.missing is not None:
        x = np.where(np.isnan(x), float(condition.missing), x)
    return x


def condition_thresholds(condition: Condition, thresholds: RowThresholds) -> np.ndarray:
    """Each row's threshold for a condition (NaN: the rule is disabled)."""
    return _floats([t.get(condition.key) for t in thresholds.mappings])[thresholds.index]


def rule_fails(ref: RuleRef, values: Sequence[np.ndarray], thresholds: Sequence[np.ndarray]) -> np.ndarray:
    """Which rows fail ``ref``'s rule: the column-wise twin of the rule in ``Decider.decide``."""
    return ref.rule.fails_columns(values, thresholds)


def evaluate_columns(cfg: Mapping[str, Any], columns: Mapping[str, np.ndarray],
                     rows: Sequence[Mapping[str, Any]] = (),
                     langs: Sequence[str | None] | None = None) -> dict[str, np.ndarray]:
    """``{group.rule: fails}`` for every threshold rule the config applies, over whole columns.

    ``columns``: signal column -> float array (NaN: null); ``rows``: the rows as mappings, needed
    only by rules derived from the per-line signals (C4, FineWeb); ``langs``: each row's language."""
    n = len(next(iter(columns.values()))) if columns else len(rows)
    langs = Languages.of(list(langs) if langs is not None else [None] * n)
    cache: dict = {}
    out: dict[str, np.ndarray] = {}
    for ref in threshold_rules(cfg):
        thresholds = row_thresholds(ref.filter, cfg, langs, cache)
        derived = derived_values(ref.filter, rows, thresholds) if any(
            c.column is None for c in ref.rule.conditions) else ()
        out[ref.rule.name] = rule_fails(
            ref, [condition_values(ref, c, columns, derived) for c in ref.rule.conditions],
            [condition_thresholds(c, thresholds) for c in ref.rule.conditions])
    return out
