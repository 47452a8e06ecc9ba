"""Toxicity family: word-list scores, classifier scores and the domain blocklist match.

Columns: ``tox_word_hits``/``tox_word_ratio``/``tox_lines``/``tox_wordlist`` (null: word lists
disabled; ``tox_wordlist`` names the lists applied, "" when none exists for the language),
``tox_clf_frac``/``tox_clf_max``/``tox_clf_lines`` (null: no classifier, or the language is not
covered) and ``url_blocked_domain`` (the listed domain covering the URL's host).
Filters: ``toxicity_words`` (at least ``wordlist_min_hits`` hits AND at least
``wordlist_max_ratio`` hits per word), ``toxicity_classifier`` (share of characters in lines the
classifier scores toxic above ``classifier_max_frac``), ``url_blocklist``.  Their removals keep
example lines for the summary's toxicity audit (``audited``).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping

import pyarrow as pa

from filters.family import Condition, Context, Filter, SignalFamily, ThresholdRule

# settings that change the measured values, in the order of the signals_version hash
VERSION_KEYS = ("wordlists", "wordlists_always", "classifier", "classifier_model", "classifier_label",
                "classifier_languages", "url_blocklist")
_NO_WORDS = {"tox_word_hits": None, "tox_word_ratio": None, "tox_lines": None, "tox_wordlist": None}
_NO_CLF = {"tox_clf_frac": None, "tox_clf_max": None, "tox_clf_lines": None}


def _setup(cfg: Mapping[str, Any]) -> SimpleNamespace:
    from filters import toxicity

    tox = cfg["toxicity"]
    return SimpleNamespace(
        wordlists=toxicity.WordListScorer(tox["wordlists"], tox["wordlists_always"]) if tox["wordlists"] else None,
        classifier=(toxicity.ToxicityClassifier(tox["classifier"], tox["classifier_model"], tox["classifier_label"])
                    if tox["classifier"] and tox["classifier"] != "none" else None),
        languages=set(tox["classifier_languages"] or []),
        blocklist=toxicity.DomainBlocklist.from_source(tox["url_blocklist"]) if tox["url_blocklist"] else None)


def _compute(text: str, ctx: Context) -> dict[str, Any]:
    st, lang = ctx.state, ctx.signals.get("lang")
    out = dict(st.wordlists.score(text, lang)) if st.wordlists is not None else dict(_NO_WORDS)
    if st.classifier is not None and (not st.languages or lang in st.languages):
        out.update(st.classifier.score(text))
    else:
        out.update(_NO_CLF)
    out["url_blocked_domain"] = st.blocklist.match(ctx.doc.get("url") or "") if st.blocklist is not None else None
    return out


WORDS = ThresholdRule(
    "toxicity_words.score",
    (Condition("tox_word_ratio", ">=", "wordlist_max_ratio", kind="ratio", label="word-list hits per word",
               by_language=True),
     Condition("tox_word_hits", ">=", "wordlist_min_hits", kind="count", label="word-list hits")),
    reason=lambda s, t: (f"{s['tox_word_hits']} word-list hits, {s['tox_word_ratio']:.4f} per word "
                         f"(>= {t['wordlist_min_hits']} and >= {t['wordlist_max_ratio']:g}; "
                         f"lists {s.get('tox_wordlist')})"))
CLASSIFIER = ThresholdRule(
    "toxicity_classifier.score",
    (Condition("tox_clf_frac", ">", "classifier_max_frac", kind="frac",
               label="characters in lines the classifier scores toxic"),),
    reason=lambda s, t: (f"{s['tox_clf_frac']:.3f} of characters in lines the classifier "
                         f"scores toxic > {t['classifier_max_frac']:g}"))


def _blocked(s: Mapping[str, Any], cfg: Mapping[str, Any], t: Mapping[str, Any]):
    domain = s.get("url_blocked_domain")
    return [("url_blocklist.domain", f"domain {domain} is on the blocklist")] if domain else []


FAMILY = SignalFamily(
    name="toxicity",
    fields=(pa.field("tox_word_hits", pa.int64()),
            pa.field("tox_word_ratio", pa.float64()),
            pa.field("tox_lines", pa.list_(pa.int32())),       # indices of lines with list matches
            pa.field("tox_wordlist", pa.string()),
            pa.field("tox_clf_frac", pa.float64()),
            pa.field("tox_clf_max", pa.float64()),
            pa.field("tox_clf_lines", pa.list_(pa.int32())),   # indices of lines the classifier scores toxic
            pa.field("url_blocked_domain", pa.string())),
    compute=_compute,
    setup=_setup,
    config_keys=(*(f"toxicity.{k}" for k in VERSION_KEYS), "toxicity.wordlist_min_hits",
                 "toxicity.wordlist_max_ratio", "toxicity.classifier_max_frac", "toxicity.audit_examples"),
    sections=("toxicity",),
    version_keys=tuple(f"toxicity.{k}" for k in VERSION_KEYS),
    version=lambda cfg: {"toxicity": {k: cfg["toxicity"][k] for k in VERSION_KEYS}},
    filters=(
        Filter("toxicity_words", rules=(WORDS,), thresholds_at="toxicity", audited=True,
               enabled=lambda cfg, rule: cfg["toxicity"]["wordlists"] is not None),
        Filter("toxicity_classifier", rules=(CLASSIFIER,), thresholds_at="toxicity", audited=True),
        Filter("url_blocklist", check=_blocked, audited=True),
    ),
)
