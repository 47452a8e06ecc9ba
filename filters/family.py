"""What a signal family declares: its columns, how it measures them, its settings and its rules.

A *signal family* is one group of stored signal columns measured together (language, quality,
toxicity, ...).  One module under ``filters/families/`` declares everything about it as a
``SignalFamily``; ``filters.registry`` lists the families, and the rest of the code walks that
list: the Parquet schema (``filters.signals.signal_fields``), the per-document computation
(``SignalComputer``), ``signals_version`` (a hash of the settings that change the values), the
keep/remove decision (``filters.decisions.Decider``) and its vectorised twin used by the report.

Rules come in two kinds:

* ``ThresholdRule``: fails when every ``Condition`` holds (``value <op> threshold``); a missing
  value or a null threshold passes.  One definition serves the per-row decision and the
  column-wise evaluation over numpy arrays (``fails_columns``), so they cannot drift apart.
* a filter's ``check``: any other per-row logic (a language not kept, the quality groups, consent
  flags).  Its threshold rules can still be listed in ``rules`` for the report; the agreement
  of the two paths is tested (``tests/test_signal_registry.py``).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

# Comparison that makes a rule fail; the same function works on scalars and numpy arrays.
OPS: dict[str, Callable[[Any, Any], Any]] = {"<": operator.lt, ">": operator.gt, ">=": operator.ge,
                                             "<=": operator.le}


def get_path(cfg: Mapping[str, Any], path: str | Sequence[str], default: Any = KeyError) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``; ``default`` (when given) for a missing or null section."""
    node: Any = cfg
    for part in (path.split(".") if isinstance(path, str) else path):
        if not isinstance(node, Mapping) or part not in node:
            if default is KeyError:
                raise KeyError(f"config key {path!r} not found")
            return default
        node = node[part]
    return node


@dataclass(frozen=True)
class Condition:
    column: str | None          # stored signal column; None: derived by the filter's ``values``
    op: str                     # "<" | ">" | ">=" | "<=": the rule fails when ``value op threshold``
    key: str                    # threshold name in the filter's threshold mapping
    missing: float | None = None   # value used for a null (None: a null passes)
    kind: str = "frac"          # histogram bins in the report: frac | count | ratio
    label: str = ""             # what the value is, for the report
    by_language: bool = False   # the report shows the distribution per language


@dataclass(frozen=True)
class ThresholdRule:
    name: str                               # group.rule, as in failed_filters
    conditions: tuple[Condition, ...]
    reason: Callable[[Mapping[str, Any], Mapping[str, Any]], str] | None = None   # (row, thresholds)

    def _value(self, c: Condition, row: Mapping[str, Any], derived: Mapping[str, Any]) -> Any:
        value = row.get(c.column) if c.column else derived.get(self.name)
        return c.missing if value is None else value

    def fails_row(self, row: Mapping[str, Any], thresholds: Mapping[str, Any],
                  derived: Mapping[str, Any] | None = None) -> bool:
        derived = derived or {}
        for c in self.conditions:
            value, limit = self._value(c, row, derived), thresholds.get(c.key)
            if value is None or limit is None or not OPS[c.op](value, limit):
                return False
        return True

    def fails_columns(self, values: Sequence[np.ndarray], limits: Sequence[np.ndarray]) -> np.ndarray:
        """Vectorised ``fails_row``: one float array per condition (NaN: null) and its thresholds
        (NaN: disabled).  A null value is replaced by the condition's ``missing`` value first."""
        out = None
        with np.errstate(invalid="ignore"):
            for c, x, t in zip(self.conditions, values, limits):
                x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
                if c.missing is not None:
                    x = np.where(np.isnan(x), float(c.missing), x)
                fail = OPS[c.op](x, t) & ~np.isnan(x) & ~np.isnan(t)
                out = fail if out is None else out & fail
        return out


Failure = tuple[str, str]   # (group.rule, readable reason)


@dataclass(frozen=True)
class Filter:
    """One ``refine.filters`` entry: the rules it applies to the stored signals of a row."""
    name: str
    rules: tuple[ThresholdRule, ...] = ()
    thresholds_at: str = ""     # dotted config path of the mapping that holds the thresholds
    # (cfg, lang) -> threshold mapping, when thresholds depend on the language (quality)
    per_language: Callable[[Mapping[str, Any], str | None], Mapping[str, Any]] | None = None
    # (row, cfg, thresholds) -> failures; default: the threshold rules in order
    check: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], list[Failure]] | None = None
    # (row, thresholds) -> {rule: value} for conditions without a stored column
    values: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None
    value_columns: tuple[str, ...] = ()   # stored columns ``values`` reads
    # (cfg, rule) -> False: the rule cannot fail with this config (the report skips it)
    enabled: Callable[[Mapping[str, Any], ThresholdRule], bool] | None = None
    validate: Callable[[Mapping[str, Any]], None] | None = None  # raises ValueError on a bad config
    audited: bool = False       # removals keep example lines in the summary's audit

    def thresholds(self, cfg: Mapping[str, Any], lang: str | None = None) -> Mapping[str, Any]:
        if self.per_language is not None:
            return self.per_language(cfg, lang)
        return get_path(cfg, self.thresholds_at) if self.thresholds_at else {}

    def threshold_path(self, key: str) -> tuple[str, ...]:
        return (*self.thresholds_at.split("."), key) if self.thresholds_at else (key,)

    def rule_failures(self, row: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[Failure]:
        return [(r.name, r.reason(row, thresholds)) for r in self.rules if r.fails_row(row, thresholds)]

    def failures(self, row: Mapping[str, Any], cfg: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[Failure]:
        if self.check is not None:
            return self.check(row, cfg, thresholds)
        return self.rule_failures(row, thresholds)


@dataclass
class Context:
    """What ``compute`` sees besides the text: the document row, the signals computed so far by
    earlier families (``lang`` ...), the config and what ``setup`` loaded for this family."""
    doc: Mapping[str, Any]
    signals: dict[str, Any]
    cfg: Mapping[str, Any]
    state: Any = None


@dataclass(frozen=True)
class SignalFamily:
    name: str
    fields: tuple[pa.Field, ...]                       # stored columns, in schema order
    compute: Callable[[str, Context], Mapping[str, Any]]   # text, context -> {column: value}
    config_keys: tuple[str, ...] = ()                  # dotted keys it reads (must exist in the config)
    sections: tuple[str, ...] = ()                     # config sections it owns: every key declared
    version_keys: tuple[str, ...] = ()                 # settings that change the measured values
    # the family's part of the signals_version hash; default {key: value} over version_keys
    version: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    setup: Callable[[Mapping[str, Any]], Any] | None = None   # once per worker -> Context.state
    validate: Callable[[Mapping[str, Any]], None] | None = None
    filters: tuple[Filter, ...] = field(default_factory=tuple)

    def version_inputs(self, cfg: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.version is not None:
            return self.version(cfg)
        return {key: get_path(cfg, key, None) for key in self.version_keys}
