"""Keep or remove a document from its stored signals and the configured thresholds.

Nothing here looks at the text or recomputes a signal: a decision is a pure function of the
signal columns and the config, so changing a threshold only needs this step to run again.
Filters run in ``refine.filters`` order; the first failing one is the removal reason, and every
failing rule is listed too (the summary shows both "removed by" and "would also fail").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from filters import quality

FILTERS = ("url_blocklist", "consent", "language", "quality", "quality_model", "toxicity_words",
           "toxicity_classifier")
TOXICITY_FILTERS = ("toxicity_words", "toxicity_classifier", "url_blocklist")


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
        order = list(cfg["refine"]["filters"])
        unknown = [f for f in order if f not in FILTERS]
        if unknown:
            raise ValueError(f"refine.filters: unknown filter {unknown[0]!r}; choose from {', '.join(FILTERS)}")
        self.order = order
        self.quality_groups = list(cfg["quality"]["filters"])
        for group in self.quality_groups:
            if group not in quality.EVALUATORS:
                raise ValueError(f"quality.filters: unknown group {group!r}; "
                                 f"choose from {', '.join(quality.EVALUATORS)}")
        quality.validate_config(cfg["quality"])
        self.consent_drop_on = list((cfg.get("consent") or {}).get("drop_on") or [])
        if self.consent_drop_on:
            from filters.consent import drop_reason

            drop_reason({}, self.consent_drop_on)   # raises on an unknown signal name
        self._thresholds: dict[str | None, dict] = {}

    def thresholds(self, lang: str | None) -> dict:
        if lang not in self._thresholds:
            self._thresholds[lang] = quality.thresholds_for(self.cfg["quality"], lang)
        return self._thresholds[lang]

    # Each check returns [(rule, reason)] of failures.
    def _url_blocklist(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        domain = s.get("url_blocked_domain")
        return [("url_blocklist.domain", f"domain {domain} is on the blocklist")] if domain else []

    def _consent(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not self.consent_drop_on:
            return []
        from filters.consent import drop_reason

        reason = drop_reason(dict(s), self.consent_drop_on)
        if not reason:
            return []
        detail = s.get("optout_detail") or ""
        if reason == "optout_robots":
            detail = f"robots.txt disallows {s.get('robots_disallowed_agents')}"
        return [(f"consent.{reason}", f"{reason}: {detail}".rstrip(": "))]

    def _language(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        cfg = self.cfg["language"]
        lang, score = s.get("lang"), s.get("lang_score")
        out = []
        if cfg["keep"] and lang not in cfg["keep"]:
            out.append(("language.not_kept", f"language {lang} not in language.keep"))
        if cfg["min_score"] is not None and (score or 0.0) < cfg["min_score"]:
            out.append(("language.low_score", f"language score {score or 0.0:.3f} < {cfg['min_score']:g} ({lang})"))
        return out

    def _quality(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        results = quality.evaluate(s, self.thresholds(s.get("lang")), self.quality_groups)
        return [(r.name, r.reason) for r in results if not r.passed]

    def _quality_model(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        score = s.get("quality_model_score")
        limit = self.cfg["quality_model"]["min_score"]
        if score is None or limit is None or score >= limit:
            return []
        return [("quality_model.score", f"quality model score {score:.3f} < {limit:g}")]

    def _toxicity_words(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        hits, ratio = s.get("tox_word_hits"), s.get("tox_word_ratio")
        tox = self.cfg["toxicity"]
        if hits is None or ratio is None:
            return []
        if hits >= tox["wordlist_min_hits"] and ratio >= tox["wordlist_max_ratio"]:
            return [("toxicity_words.score", f"{hits} word-list hits, {ratio:.4f} per word "
                     f"(>= {tox['wordlist_min_hits']} and >= {tox['wordlist_max_ratio']:g}; "
                     f"lists {s.get('tox_wordlist')})")]
        return []

    def _toxicity_classifier(self, s: Mapping[str, Any]) -> list[tuple[str, str]]:
        frac = s.get("tox_clf_frac")
        limit = self.cfg["toxicity"]["classifier_max_frac"]
        if frac is None or limit is None or frac <= limit:
            return []
        return [("toxicity_classifier.score", f"{frac:.3f} of characters in lines the classifier "
                 f"scores toxic > {limit:g}")]

    def decide(self, signals: Mapping[str, Any]) -> Decision:
        failed: list[tuple[str, str]] = []
        first: tuple[str, str, str] | None = None
        for name in self.order:
            fails = getattr(self, f"_{name}")(signals)
            if fails and first is None:
                rule, reason = fails[0]
                first = (rule.split(".", 1)[0], rule, reason)
            failed += fails
        names = [rule for rule, _ in failed]
        if first is None:
            return Decision(keep=True, failed=names)
        return Decision(keep=False, removed_by=first[0], rule=first[1], reason=first[2], failed=names)
