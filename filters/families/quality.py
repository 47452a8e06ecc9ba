"""Quality family: the Gopher / C4 / FineWeb measures of ``filters.quality.measure``.

Columns: every scalar ``q_*`` measure (``quality.SCALAR_MEASURES``) and the per-line lists
(``line_chars``, ``line_words``, ``line_flags`` bits TERMINAL_PUNCT|JAVASCRIPT|POLICY|LONG_WORD,
``line_sentences``) from which the C4 line rules and FineWeb line ratios are re-decided with any
threshold.  Filter ``quality``: the groups in ``quality.filters``, thresholds per language
(``quality.thresholds`` < ``language_defaults`` < ``per_language``), decided by
``filters.quality.evaluate``; ``RULES`` lists its threshold rules for the report's what-if tables.
"""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

from filters import quality
from filters.family import Condition, Context, Filter, SignalFamily, ThresholdRule

_ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
DERIVED_GROUPS = ("c4", "fineweb")   # rules whose value comes from the per-line signals


def _compute(text: str, ctx: Context) -> dict[str, Any]:
    q = ctx.cfg["quality"]
    return quality.measure(text, ctx.signals.get("lang"), policy_phrases=q["policy_phrases"],
                           max_word_chars=q["max_word_chars"])


def _validate(cfg: Mapping[str, Any]) -> None:
    for group in cfg["quality"]["filters"]:
        if group not in quality.EVALUATORS:
            raise ValueError(f"quality.filters: unknown group {group!r}; "
                             f"choose from {', '.join(quality.EVALUATORS)}")
    quality.validate_config(cfg["quality"])


def _check(s: Mapping[str, Any], cfg: Mapping[str, Any], t: Mapping[str, Any]):
    results = quality.evaluate(s, t, cfg["quality"]["filters"])
    return [(r.name, r.reason) for r in results if not r.passed]


def _values(row: Mapping[str, Any], t: Mapping[str, Any]) -> dict[str, Any]:
    """The C4/FineWeb values the decision compares (null when the line signals are missing)."""
    if any(row.get(c) is None for c in quality.LINE_MEASURES):
        return {}
    return {r.name: r.value for group in DERIVED_GROUPS for r in quality.EVALUATORS[group](row, t)}


def _rule(key: str, rule: str, column: str | None, op: str, kind: str, label: str,
          by_language: bool = False) -> ThresholdRule:
    return ThresholdRule(rule, (Condition(column, op, key, kind=kind, label=label, by_language=by_language),))


MIN, MAX = "<", ">"
RULES = (
    _rule("gopher_min_words", "gopher_quality.min_words", "q_words", MIN, "count", "words per document", True),
    _rule("gopher_max_words", "gopher_quality.max_words", "q_words", MAX, "count", "words per document"),
    _rule("gopher_min_mean_word_length", "gopher_quality.mean_word_length", "q_mean_word_length", MIN, "ratio",
          "mean word length (characters)", True),
    _rule("gopher_max_mean_word_length", "gopher_quality.max_mean_word_length", "q_mean_word_length", MAX,
          "ratio", "mean word length (characters)", True),
    _rule("gopher_max_symbol_word_ratio", "gopher_quality.symbol_word_ratio", "q_symbol_word_ratio", MAX,
          "ratio", "'#' and ellipses per word"),
    _rule("gopher_max_bullet_lines_frac", "gopher_quality.bullet_lines", "q_bullet_lines_frac", MAX, "frac",
          "share of lines starting with a bullet"),
    _rule("gopher_max_ellipsis_lines_frac", "gopher_quality.ellipsis_lines", "q_ellipsis_lines_frac", MAX,
          "frac", "share of lines ending with an ellipsis"),
    _rule("gopher_min_alpha_words_frac", "gopher_quality.alpha_words", "q_alpha_words_frac", MIN, "frac",
          "share of words with a letter", True),
    _rule("gopher_min_stop_words", "gopher_quality.stop_words", "q_stop_words", MIN, "count",
          "stop words of the document's language", True),
    _rule("gopher_min_stop_words_frac", "gopher_quality.stop_words_frac", "q_stop_words_frac", MIN, "frac",
          "stop words per word", True),
    _rule("gopher_max_dup_lines_frac", "gopher_repetition.dup_lines", "q_dup_lines_frac", MAX, "frac",
          "share of lines repeating an earlier line"),
    _rule("gopher_max_dup_paras_frac", "gopher_repetition.dup_paragraphs", "q_dup_paras_frac", MAX, "frac",
          "share of paragraphs repeating an earlier one"),
    _rule("gopher_max_dup_lines_char_frac", "gopher_repetition.dup_lines_chars", "q_dup_lines_char_frac", MAX,
          "frac", "characters in repeated lines"),
    _rule("gopher_max_dup_paras_char_frac", "gopher_repetition.dup_paragraphs_chars", "q_dup_paras_char_frac",
          MAX, "frac", "characters in repeated paragraphs"),
    *[_rule(f"gopher_max_top_{n}gram_frac", f"gopher_repetition.top_{n}gram", f"q_top_{n}gram_frac", MAX, "frac",
            f"characters covered by the most frequent {n}-gram") for n in quality.TOP_NGRAMS],
    *[_rule(f"gopher_max_dup_{n}gram_frac", f"gopher_repetition.dup_{n}gram", f"q_dup_{n}gram_frac", MAX, "frac",
            f"characters covered by repeated {n}-grams") for n in quality.DUP_NGRAMS],
    _rule("c4_min_sentences", "c4.min_sentences", None, MIN, "count", "sentences left after the C4 line rules",
          True),
    _rule("fineweb_min_line_punct_frac", "fineweb.line_punct", None, MIN, "frac",
          "share of lines ending in terminal punctuation", True),
    _rule("fineweb_max_short_lines_frac", "fineweb.short_lines", None, MAX, "frac", "share of short lines"),
    _rule("fineweb_max_dup_lines_char_frac", "fineweb.dup_lines_chars", "q_dup_lines_char_frac", MAX, "frac",
          "characters in repeated lines"),
    _rule("fineweb_max_newline_per_word", "fineweb.newline_per_word", None, MAX, "ratio", "line breaks per word"),
)

QUALITY = Filter(
    "quality", rules=RULES, thresholds_at="quality.thresholds",
    per_language=lambda cfg, lang: quality.thresholds_for(cfg["quality"], lang),
    check=_check, values=_values,
    value_columns=(*quality.LINE_MEASURES, "q_words", "q_dup_lines_char_frac", "q_lorem_ipsum", "q_curly_bracket"),
    enabled=lambda cfg, rule: rule.name.split(".", 1)[0] in cfg["quality"]["filters"],
)

FAMILY = SignalFamily(
    name="quality",
    fields=(*[pa.field(name, _ARROW[kind]) for name, kind in quality.SCALAR_MEASURES.items()],
            pa.field("line_chars", pa.list_(pa.int32())),   # per line of text.split("\n")
            pa.field("line_words", pa.list_(pa.int32())),
            pa.field("line_flags", pa.list_(pa.uint8())),
            pa.field("line_sentences", pa.list_(pa.int32()))),
    compute=_compute,
    config_keys=("quality.filters", "quality.policy_phrases", "quality.max_word_chars", "quality.thresholds",
                 "quality.language_defaults", "quality.per_language"),
    sections=("quality",),
    version_keys=("quality.policy_phrases", "quality.max_word_chars"),
    version=lambda cfg: {"policy_phrases": list(cfg["quality"]["policy_phrases"]),
                         "max_word_chars": cfg["quality"]["max_word_chars"]},
    validate=_validate,
    filters=(QUALITY,),
)
