"""Every signal column of a document, computed in one place.

``SignalComputer(cfg)(doc)`` returns ``{column: value}`` for ``SIGNAL_FIELDS``: language, the
quality measures (``filters.quality``), the quality-model score, toxicity scores, the blocklisted
domain, PII counts (``filters.pii``) and page opt-out flags (``filters.consent``).  The extract
stage may store them; refine computes them only for rows that lack current ones
(``signals_version`` differs when a setting that changes what is measured changes).

Load a SignalComputer once per worker (models, word lists, the domain blocklist); calling it is
thread-safe.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import pyarrow as pa

from filters import pii, quality  # required: a missing module fails at import, never PII silently off

# Bump when a measure's definition changes, so stored signals are recomputed.
SIGNALS_REVISION = 1

_ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}

SIGNAL_FIELDS: list[pa.Field] = [
    pa.field("signals_version", pa.string()),      # hash of the settings that shaped these values
    pa.field("lang", pa.string()),                 # lid.176 code, "und" when no letters
    pa.field("lang_score", pa.float64()),
    *[pa.field(name, _ARROW[kind]) for name, kind in quality.SCALAR_MEASURES.items()],
    pa.field("line_chars", pa.list_(pa.int32())),  # per line of text.split("\n")
    pa.field("line_words", pa.list_(pa.int32())),
    pa.field("line_flags", pa.list_(pa.uint8())),  # filters.quality TERMINAL_PUNCT|JAVASCRIPT|POLICY|LONG_WORD
    pa.field("line_sentences", pa.list_(pa.int32())),
    pa.field("quality_model_score", pa.float64()),  # null: no model configured
    pa.field("tox_word_hits", pa.int64()),          # null: word lists disabled
    pa.field("tox_word_ratio", pa.float64()),
    pa.field("tox_lines", pa.list_(pa.int32())),    # indices of lines with list matches
    pa.field("tox_wordlist", pa.string()),          # lists applied ("de,en"); "" when none exists
    pa.field("tox_clf_frac", pa.float64()),         # null: no classifier or language not covered
    pa.field("tox_clf_max", pa.float64()),
    pa.field("tox_clf_lines", pa.list_(pa.int32())),  # indices of lines the classifier scores toxic
    pa.field("url_blocked_domain", pa.string()),    # listed domain covering the URL's host
    pa.field("pii_counts", pa.map_(pa.string(), pa.int32())),  # before redaction, by type
    pa.field("pii_total", pa.int32()),
    pa.field("optout_noai", pa.bool_()),
    pa.field("optout_noimageai", pa.bool_()),
    pa.field("optout_noindex", pa.bool_()),
    pa.field("optout_tdm", pa.bool_()),
    pa.field("optout_detail", pa.string()),
]
SIGNAL_NAMES = [f.name for f in SIGNAL_FIELDS]


def signals_version(cfg: Mapping[str, Any]) -> str:
    """Hash of every setting that changes a measured value (thresholds excluded on purpose)."""
    tox = cfg["toxicity"]
    shaping = {
        "revision": SIGNALS_REVISION,
        "lid": cfg["language"]["model_path"],
        "policy_phrases": list(cfg["quality"]["policy_phrases"]),
        "max_word_chars": cfg["quality"]["max_word_chars"],
        "quality_model": [cfg["quality_model"]["model_path"], cfg["quality_model"]["positive_label"]],
        "toxicity": {k: tox[k] for k in ("wordlists", "wordlists_always", "classifier", "classifier_model",
                                         "classifier_label", "classifier_languages", "url_blocklist")},
        "consent_agents": list((cfg.get("consent") or {}).get("agents") or []),
        "pii": [True, cfg.get("pii", {}).get("placeholders"),   # True: PII counted (kept for the hash)
                cfg.get("pii", {}).get("phone_regions_by_language")],
    }
    blob = json.dumps(shaping, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _pii_settings(cfg: Mapping[str, Any]) -> tuple[dict, dict | None]:
    pii_cfg = cfg.get("pii") or {}
    return dict(pii_cfg.get("placeholders") or {}), pii_cfg.get("phone_regions_by_language")


def pii_counts(text: str, url: str | None, lang: str | None, cfg: Mapping[str, Any]) -> dict[str, int]:
    """PII matches by enabled type, zeros included."""
    placeholders, regions = _pii_settings(cfg)
    enabled = [t for t, p in placeholders.items() if p is not None] if placeholders else None
    region = pii.region_hint_for(url, lang, regions)
    counts = {t: 0 for t in (enabled if enabled is not None else pii.PII_TYPES)}
    for kind, _, _ in pii.find_pii(text, enabled, region):
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def redact_pii(text: str, url: str | None, lang: str | None,
               cfg: Mapping[str, Any]) -> tuple[str, dict[str, int]]:
    """``filters.pii.redact`` with the configured placeholders and the page's phone region."""
    placeholders, regions = _pii_settings(cfg)
    new_text, counts = pii.redact(text, placeholders or None, pii.region_hint_for(url, lang, regions))
    return new_text, {str(k): int(v) for k, v in sorted(counts.items()) if v}


class SignalComputer:
    """Loads the configured models and lists once; ``__call__(doc)`` -> signal columns."""

    def __init__(self, cfg: Mapping[str, Any]):
        from filters.language import LanguageIdentifier

        self.cfg = cfg
        self.version = signals_version(cfg)
        quality.validate_config(cfg["quality"])
        self.lid = LanguageIdentifier(cfg["language"]["model_path"])
        qm = cfg["quality_model"]
        self.quality_model = None
        if qm["model_path"]:
            from filters.quality_model import QualityModel

            self.quality_model = QualityModel(qm["model_path"], qm["positive_label"])
        tox = cfg["toxicity"]
        from filters import toxicity

        self.wordlists = (toxicity.WordListScorer(tox["wordlists"], tox["wordlists_always"])
                          if tox["wordlists"] else None)
        self.classifier = (toxicity.ToxicityClassifier(tox["classifier"], tox["classifier_model"],
                                                       tox["classifier_label"])
                           if tox["classifier"] and tox["classifier"] != "none" else None)
        self.classifier_langs = set(tox["classifier_languages"] or [])
        self.blocklist = (toxicity.DomainBlocklist.from_source(tox["url_blocklist"])
                          if tox["url_blocklist"] else None)
        self.agents = list((cfg.get("consent") or {}).get("agents") or []) or None

    def __call__(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        text = doc.get("text") or ""
        url = doc.get("url") or ""
        lang, lang_score = self.lid.identify(text)
        out: dict[str, Any] = {"signals_version": self.version, "lang": lang, "lang_score": lang_score}
        out.update(quality.measure(text, lang, policy_phrases=self.cfg["quality"]["policy_phrases"],
                                   max_word_chars=self.cfg["quality"]["max_word_chars"]))
        out["quality_model_score"] = self.quality_model.score(text) if self.quality_model else None
        if self.wordlists is not None:
            out.update(self.wordlists.score(text, lang))
        else:
            out.update(tox_word_hits=None, tox_word_ratio=None, tox_lines=None, tox_wordlist=None)
        if self.classifier is not None and (not self.classifier_langs or lang in self.classifier_langs):
            out.update(self.classifier.score(text))
        else:
            out.update(tox_clf_frac=None, tox_clf_max=None, tox_clf_lines=None)
        out["url_blocked_domain"] = self.blocklist.match(url) if self.blocklist is not None else None
        counts = pii_counts(text, url, lang, self.cfg)
        out["pii_counts"] = counts
        out["pii_total"] = sum(counts.values())
        out.update(self._consent(doc))
        return out

    def _consent(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        from filters.consent import page_signals

        return page_signals(doc.get("x_robots_tag"), doc.get("meta_robots"), doc.get("tdm_reservation"),
                            agents=self.agents)


def has_current_signals(row: Mapping[str, Any], version: str) -> bool:
    """True when ``row`` already carries every signal column computed with ``version``."""
    return row.get("signals_version") == version and all(name in row for name in SIGNAL_NAMES)
