"""Every signal column of a document, computed by walking the signal registry.

``SignalComputer(cfg)(doc)`` returns ``{column: value}`` for every column of
``signal_fields()``: ``signals_version`` and, family by family in registry order
(``filters.registry``; one module per family in ``filters/families/``), language, the quality
measures, the quality-model score, toxicity scores and the blocklisted domain, PII counts and
page opt-out flags.  The extract stage may store them; refine computes them only for rows that
lack current ones (``signals_version`` differs when a setting that changes what is measured
changes).

Load a SignalComputer once per worker (models, word lists, the domain blocklist: each family's
``setup``); calling it is thread-safe.

The columns are ``signal_fields()`` / ``signal_names()`` (re-exported from the registry), read
each time they are called, so a family registered later is part of them.
"""
from __future__ import annotations

from typing import Any, Mapping

from filters import registry
from filters.families.pii import pii_counts, redact as _redact  # noqa: F401  (pii_counts: public API)
from filters.family import Context
from filters.registry import SIGNALS_REVISION, signal_fields, signal_names, signals_version  # noqa: F401


def redact_pii(text: str, url: str | None, lang: str | None,
               cfg: Mapping[str, Any]) -> tuple[str, dict[str, int]]:
    """``filters.pii.redact`` with the configured placeholders and the page's phone region."""
    return _redact(text, url, lang, cfg)


class SignalComputer:
    """Loads every family's models and lists once; ``__call__(doc)`` -> signal columns."""

    def __init__(self, cfg: Mapping[str, Any]):
        registry.check_config(cfg)
        self.cfg = cfg
        self.version = signals_version(cfg)
        self.families = [(fam, fam.setup(cfg) if fam.setup is not None else None) for fam in registry.families()]

    def __call__(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        text = doc.get("text") or ""
        out: dict[str, Any] = {"signals_version": self.version}
        for fam, state in self.families:
            out.update(fam.compute(text, Context(doc, out, self.cfg, state)))
        return out


def has_current_signals(row: Mapping[str, Any], version: str) -> bool:
    """True when ``row`` already carries every signal column computed with ``version``."""
    return row.get("signals_version") == version and all(name in row for name in signal_names())
