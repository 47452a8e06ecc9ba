"""Heuristic quality rules: Gopher quality + repetition, C4 (line and document), FineWeb extras.

Two steps, so a threshold change never needs the text again:

* ``measure(text, lang, ...)`` computes every measured value once (stored as signal columns:
  ``q_*`` numbers and per-line lists ``line_chars`` / ``line_words`` / ``line_flags`` /
  ``line_sentences`` that let the C4 line rules and FineWeb line ratios be re-decided with any
  threshold).
* ``evaluate(measures, thresholds)`` turns stored values into one ``RuleResult`` per rule: the
  measured value, pass/fail and a readable reason.  It does no text processing.

Rule definitions follow the papers (Gopher: Rae et al. 2021, App. A; C4: Raffel et al. 2020,
Sec. 2.2; FineWeb: Penedo et al. 2024) with two deliberate changes: words are counted with a
per-language segmenter (``filters.text_units``) and stop words come from a per-language list,
not the eight English words Gopher uses.  Thresholds live in ``configs/defaults/filters.yaml``
(``quality.thresholds`` with per-language overrides).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import chain, filterfalse
from typing import Any, Iterable, Mapping, Sequence

from filters import quality_ngrams, text_units

# Line flag bits (``line_flags`` signal).
TERMINAL_PUNCT = 1
JAVASCRIPT = 2
POLICY = 4
LONG_WORD = 8

# Closing punctuation in the scripts we see most: C4's . ! ? " plus closing quotes used in German
# (“ «) and Polish (”), the ellipsis, CJK full-width marks, Arabic/Urdu, Devanagari, Ethiopic,
# Myanmar and Khmer stops.  Thai has none (sentences end with a space): see language defaults.
TERMINAL_CHARS = ".!?\"”“»«…。！？．؟۔।॥።။។៕‼⁇⁈⁉"
_BULLETS = ("•", "●", "○", "◦", "▪", "▫", "■", "□", "‣", "⁃", "∙", "·", "-", "*", "–", "—", "➢", "→", "✓", "✔")
_ELLIPSES = ("...", "…")
_SENTENCE_END = re.compile(r"[.!?。！？．؟۔।॥።။។៕…]+[\"”“»«')\]]*(?=\s|$)")
_PARAGRAPHS = re.compile(r"\n\s*\n")

DEFAULT_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                          "use of cookies", "use cookies")
DEFAULT_MAX_WORD_CHARS = 1000

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

# name of every scalar measure -> type ("int" / "float" / "bool"); the signal schema is built from it.
SCALAR_MEASURES: dict[str, str] = {
    "q_words": "int",
    "q_mean_word_length": "float",
    "q_symbol_word_ratio": "float",
    "q_bullet_lines_frac": "float",
    "q_ellipsis_lines_frac": "float",
    "q_alpha_words_frac": "float",
    "q_stop_words": "int",          # null when the language has no stop-word list
    "q_stop_words_frac": "float",   # null likewise
    "q_dup_lines_frac": "float",
    "q_dup_paras_frac": "float",
    "q_dup_lines_char_frac": "float",
    "q_dup_paras_char_frac": "float",
    **{f"q_top_{n}gram_frac": "float" for n in TOP_NGRAMS},
    **{f"q_dup_{n}gram_frac": "float" for n in DUP_NGRAMS},
    "q_lorem_ipsum": "bool",
    "q_curly_bracket": "bool",
}
LINE_MEASURES = ("line_chars", "line_words", "line_flags", "line_sentences")


@dataclass(frozen=True)
class RuleResult:
    filter: str            # gopher_quality | gopher_repetition | c4 | fineweb
    rule: str              # e.g. "stop_words"
    value: float | None    # the measured value the decision used (None: not measurable)
    passed: bool
    reason: str            # why it failed, or why it was skipped; "" when it simply passed

    @property
    def name(self) -> str:
        return f"{self.filter}.{self.rule}"


# ------------------------------------------------------------------------------------ measuring
def _ends_with_terminal(line: str) -> bool:
    stripped = line.rstrip()
    return bool(stripped) and stripped[-1] in TERMINAL_CHARS


def _dup_fractions(units: Sequence[str]) -> tuple[float, float]:
    """(fraction of units that repeat an earlier one, fraction of their characters)."""
    units = [u for u in units if u.strip()]
    if not units:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_n = dup_chars = total_chars = 0
    for unit in units:
        total_chars += len(unit)
        if unit in seen:
            dup_n += 1
            dup_chars += len(unit)
        else:
            seen.add(unit)
    return dup_n / len(units), (dup_chars / total_chars if total_chars else 0.0)


def _line_flags(line: str, line_words: Sequence[str], policy_phrases: Sequence[str],
                max_word_chars: int, lower: str | None = None) -> int:
    flags = TERMINAL_PUNCT if _ends_with_terminal(line) else 0
    lower = line.lower() if lower is None else lower
    if "javascript" in lower:
        flags |= JAVASCRIPT
    if any(p in lower for p in policy_phrases):
        flags |= POLICY
    if line_words and max(map(len, line_words)) > max_word_chars:
        flags |= LONG_WORD
    return flags


# ``[^\W_]`` is exactly ``str.isalnum`` (``\w`` is isalnum plus "_"): one C-level search per span.
_ALNUM = re.compile(r"[^\W_]")


def _sentences(line: str) -> int:
    count, start = 0, 0
    search = _ALNUM.search
    for match in _SENTENCE_END.finditer(line):
        if search(line, start, match.start()) is not None:
            count += 1
        start = match.end()
    if search(line, start) is not None:
        count += 1
    return count


def measure(text: str, lang: str | None, *, policy_phrases: Iterable[str] = DEFAULT_POLICY_PHRASES,
            max_word_chars: int = DEFAULT_MAX_WORD_CHARS) -> dict[str, Any]:
    """Every quality measure of ``text`` (in language ``lang``), keyed by signal column name."""
    policy = tuple(p.lower() for p in policy_phrases)
    lines = text.split("\n")
    segmented = text_units.needs_segmenter(lang)
    if segmented:
        per_line_words = [text_units.words(line, lang) for line in lines]
    else:
        per_line_words = list(map(text_units.split_words, lines))   # what words() does for them
    words = list(chain.from_iterable(per_line_words))
    n_words = len(words)
    word_chars = sum(map(len, words))
    stripped = [line.strip() for line in lines]
    nonempty = [line for line in stripped if line]
    if segmented or not words:
        lower_words = list(map(str.lower, words))
    else:
        # Whitespace-split words hold no space, lower() makes none, and a space ends the context
        # that a final sigma's lower case depends on (it is neither cased nor case-ignorable):
        # lower-casing them joined by spaces gives each word's lower() at C speed.
        lower_words = " ".join(words).lower().split(" ")

    stops = text_units.stop_words(lang)
    if stops:
        n_stop = sum(map(stops.__contains__, lower_words))
        stop_frac = n_stop / n_words if n_words else 0.0
    else:
        n_stop, stop_frac = None, None

    symbols = text.count("#") + text.count("...") + text.count("…")
    dup_lines, dup_lines_chars = _dup_fractions(nonempty)
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]
    dup_paras, dup_paras_chars = _dup_fractions(paragraphs)
    lower_text = text.lower()
    # Lower-casing never crosses a "\n" (not even Greek final sigma), so these are each line's lower().
    lower_lines = lower_text.split("\n")
    not_alpha = list(filterfalse(str.isalpha, words))   # a wholly alphabetic word has a letter
    n_alpha = n_words - len(not_alpha) + sum(1 for w in not_alpha if text_units.has_alpha(w))

    out: dict[str, Any] = {
        "q_words": n_words,
        "q_mean_word_length": word_chars / n_words if n_words else 0.0,
        "q_symbol_word_ratio": symbols / n_words if n_words else (1.0 if symbols else 0.0),
        "q_bullet_lines_frac": (sum(1 for l in nonempty if l.startswith(_BULLETS)) / len(nonempty)
                                if nonempty else 0.0),
        "q_ellipsis_lines_frac": (sum(1 for l in nonempty if l.endswith(_ELLIPSES)) / len(nonempty)
                                  if nonempty else 0.0),
        "q_alpha_words_frac": n_alpha / n_words if n_words else 0.0,
        "q_stop_words": n_stop,
        "q_stop_words_frac": stop_frac,
        "q_dup_lines_frac": dup_lines,
        "q_dup_paras_frac": dup_paras,
        "q_dup_lines_char_frac": dup_lines_chars,
        "q_dup_paras_char_frac": dup_paras_chars,
        "q_lorem_ipsum": "lorem ipsum" in lower_text,
        "q_curly_bracket": "{" in text,
    }
    top, dup = quality_ngrams.ngram_fracs(lower_words, word_chars, TOP_NGRAMS, DUP_NGRAMS)
    for n in TOP_NGRAMS:
        out[f"q_top_{n}gram_frac"] = top[n]
    for n in DUP_NGRAMS:
        out[f"q_dup_{n}gram_frac"] = dup[n]
    # Phrases absent from the whole text are in no line: check only the others per line.
    present = tuple(p for p in policy if p in lower_text)
    out["line_chars"] = list(map(len, stripped))
    out["line_words"] = list(map(len, per_line_words))
    out["line_flags"] = [_line_flags(line, lw, present, max_word_chars, lower)
                         for line, lw, lower in zip(lines, per_line_words, lower_lines)]
    out["line_sentences"] = [_sentences(line) if line else 0 for line in lines]
    return out


# ------------------------------------------------------------------------------------ thresholds
def thresholds_for(quality_cfg: Mapping[str, Any], lang: str | None) -> dict[str, Any]:
    """Default thresholds, then the shipped per-language defaults, then the user's per-language
    overrides (``quality.per_language``).  An unknown threshold name is an error naming it."""
    base = dict(quality_cfg["thresholds"])
    merged = dict(base)
    for section in ("language_defaults", "per_language"):
        override = (quality_cfg.get(section) or {}).get(lang or "") or {}
        for key, value in override.items():
            if key not in base:
                raise ValueError(f"quality.{section}.{lang}: unknown threshold {key!r}; "
                                 f"known: {', '.join(sorted(base))}")
            merged[key] = value
    return merged


def validate_config(quality_cfg: Mapping[str, Any]) -> None:
    """Raise ValueError for a misspelled threshold anywhere in the per-language sections."""
    for section in ("language_defaults", "per_language"):
        for lang in (quality_cfg.get(section) or {}):
            thresholds_for(quality_cfg, lang)


# ------------------------------------------------------------------------------------ deciding
def c4_line_keep_mask(measures: Mapping[str, Any], t: Mapping[str, Any]) -> list[bool]:
    """Which lines the C4 line rules keep (empty lines are kept; they carry no words)."""
    drop_bits = 0
    if t["c4_remove_javascript_lines"]:
        drop_bits |= JAVASCRIPT
    if t["c4_remove_policy_lines"]:
        drop_bits |= POLICY
    if t["c4_remove_long_word_lines"]:
        drop_bits |= LONG_WORD
    keep = []
    min_words = t["c4_min_words_per_line"]
    for chars, n_words, flags in zip(measures["line_chars"], measures["line_words"], measures["line_flags"]):
        if chars == 0:
            keep.append(True)
            continue
        ok = not (flags & drop_bits) and n_words >= min_words
        # "ends with terminal punctuation" is a bit that must be present, not absent
        if t["c4_remove_no_terminal_punct_lines"] and not (flags & TERMINAL_PUNCT):
            ok = False
        keep.append(ok)
    return keep


def apply_c4_lines(text: str, measures: Mapping[str, Any], t: Mapping[str, Any],
                   mask: Sequence[bool] | None = None) -> str:
    """``text`` without the lines the C4 line rules remove (needs the measures of this text);
    ``mask``, when given, is ``c4_line_keep_mask(measures, t)`` already computed by the caller."""
    lines = text.split("\n")
    if mask is None:
        mask = c4_line_keep_mask(measures, t)
    if len(mask) != len(lines):
        raise ValueError("line signals do not match the text (were signals computed on other text?)")
    kept = "\n".join(line for line, k in zip(lines, mask) if k)
    return re.sub(r"\n{3,}", "\n\n", kept).strip("\n")


def _max_rule(filt: str, rule: str, value: float | None, limit: float | None, unit: str = "") -> RuleResult:
    if limit is None:
        return RuleResult(filt, rule, value, True, "disabled")
    if value is None:
        return RuleResult(filt, rule, None, True, "not measured")
    if value > limit:
        return RuleResult(filt, rule, value, False, f"{rule} {value:.3g}{unit} > {limit:g}")
    return RuleResult(filt, rule, value, True, "")


def _min_rule(filt: str, rule: str, value: float | None, limit: float | None, unit: str = "") -> RuleResult:
    if limit is None:
        return RuleResult(filt, rule, value, True, "disabled")
    if value is None:
        return RuleResult(filt, rule, None, True, "not measured")
    if value < limit:
        return RuleResult(filt, rule, value, False, f"{rule} {value:.3g}{unit} < {limit:g}")
    return RuleResult(filt, rule, value, True, "")


def _flag_rule(filt: str, rule: str, present: bool | None, enabled: bool, what: str) -> RuleResult:
    if not enabled:
        return RuleResult(filt, rule, float(bool(present)), True, "disabled")
    if present:
        return RuleResult(filt, rule, 1.0, False, f"contains {what}")
    return RuleResult(filt, rule, 0.0, True, "")


def evaluate_gopher_quality(m: Mapping[str, Any], t: Mapping[str, Any]) -> list[RuleResult]:
    f = "gopher_quality"
    stop = (_min_rule(f, "stop_words", m["q_stop_words"], t["gopher_min_stop_words"])
            if m["q_stop_words"] is not None
            else RuleResult(f, "stop_words", None, True, "no stop-word list for this language"))
    stop_frac = (_min_rule(f, "stop_words_frac", m["q_stop_words_frac"], t["gopher_min_stop_words_frac"])
                 if m["q_stop_words_frac"] is not None
                 else RuleResult(f, "stop_words_frac", None, True, "no stop-word list for this language"))
    return [
        _min_rule(f, "min_words", m["q_words"], t["gopher_min_words"], " words"),
        _max_rule(f, "max_words", m["q_words"], t["gopher_max_words"], " words"),
        _min_rule(f, "mean_word_length", m["q_mean_word_length"], t["gopher_min_mean_word_length"]),
        _max_rule(f, "max_mean_word_length", m["q_mean_word_length"], t["gopher_max_mean_word_length"]),
        _max_rule(f, "symbol_word_ratio", m["q_symbol_word_ratio"], t["gopher_max_symbol_word_ratio"]),
        _max_rule(f, "bullet_lines", m["q_bullet_lines_frac"], t["gopher_max_bullet_lines_frac"]),
        _max_rule(f, "ellipsis_lines", m["q_ellipsis_lines_frac"], t["gopher_max_ellipsis_lines_frac"]),
        _min_rule(f, "alpha_words", m["q_alpha_words_frac"], t["gopher_min_alpha_words_frac"]),
        stop,
        stop_frac,
    ]


def evaluate_gopher_repetition(m: Mapping[str, Any], t: Mapping[str, Any]) -> list[RuleResult]:
    f = "gopher_repetition"
    out = [
        _max_rule(f, "dup_lines", m["q_dup_lines_frac"], t["gopher_max_dup_lines_frac"]),
        _max_rule(f, "dup_paragraphs", m["q_dup_paras_frac"], t["gopher_max_dup_paras_frac"]),
        _max_rule(f, "dup_lines_chars", m["q_dup_lines_char_frac"], t["gopher_max_dup_lines_char_frac"]),
        _max_rule(f, "dup_paragraphs_chars", m["q_dup_paras_char_frac"], t["gopher_max_dup_paras_char_frac"]),
    ]
    out += [_max_rule(f, f"top_{n}gram", m[f"q_top_{n}gram_frac"], t[f"gopher_max_top_{n}gram_frac"])
            for n in TOP_NGRAMS]
    out += [_max_rule(f, f"dup_{n}gram", m[f"q_dup_{n}gram_frac"], t[f"gopher_max_dup_{n}gram_frac"])
            for n in DUP_NGRAMS]
    return out


def evaluate_c4(m: Mapping[str, Any], t: Mapping[str, Any]) -> list[RuleResult]:
    f = "c4"
    mask = c4_line_keep_mask(m, t)
    sentences = sum(s for s, keep in zip(m["line_sentences"], mask) if keep)
    kept_words = sum(w for w, keep in zip(m["line_words"], mask) if keep)
    nonempty = sum(1 for c in m["line_chars"] if c)
    removed = sum(1 for c, keep in zip(m["line_chars"], mask) if c and not keep)
    lines = RuleResult(f, "lines_removed", float(removed), True,
                       f"{removed} of {nonempty} lines removed by line rules" if removed else "")
    return [
        _flag_rule(f, "lorem_ipsum", m["q_lorem_ipsum"], t["c4_drop_lorem_ipsum"], "'lorem ipsum'"),
        _flag_rule(f, "curly_bracket", m["q_curly_bracket"], t["c4_drop_curly_bracket"], "'{'"),
        _min_rule(f, "min_sentences", float(sentences), t["c4_min_sentences"], " sentences after line rules"),
        RuleResult(f, "words_after_lines", float(kept_words), kept_words > 0 or not nonempty,
                   "" if kept_words > 0 or not nonempty else "no words left after line rules"),
        lines,
    ]


def evaluate_fineweb(m: Mapping[str, Any], t: Mapping[str, Any]) -> list[RuleResult]:
    f = "fineweb"
    chars = [c for c in m["line_chars"] if c]
    flags = [fl for c, fl in zip(m["line_chars"], m["line_flags"]) if c]
    n = len(chars)
    punct = sum(1 for fl in flags if fl & TERMINAL_PUNCT) / n if n else 0.0
    short = sum(1 for c in chars if c <= t["fineweb_short_line_chars"]) / n if n else 0.0
    newline_ratio = (len(m["line_chars"]) - 1) / m["q_words"] if m["q_words"] else float(len(m["line_chars"]) - 1)
    return [
        _min_rule(f, "line_punct", punct, t["fineweb_min_line_punct_frac"]),
        _max_rule(f, "short_lines", short, t["fineweb_max_short_lines_frac"]),
        _max_rule(f, "dup_lines_chars", m["q_dup_lines_char_frac"], t["fineweb_max_dup_lines_char_frac"]),
        _max_rule(f, "newline_per_word", newline_ratio, t["fineweb_max_newline_per_word"]),
    ]


EVALUATORS = {
    "gopher_repetition": evaluate_gopher_repetition,
    "gopher_quality": evaluate_gopher_quality,
    "c4": evaluate_c4,
    "fineweb": evaluate_fineweb,
}


def evaluate(measures: Mapping[str, Any], thresholds: Mapping[str, Any],
             filters: Iterable[str] = tuple(EVALUATORS)) -> list[RuleResult]:
    """Every rule of the named filter groups, in order, from stored measures."""
    out: list[RuleResult] = []
    for name in filters:
        if name not in EVALUATORS:
            raise ValueError(f"unknown quality filter {name!r}; choose from {', '.join(EVALUATORS)}")
        out += EVALUATORS[name](measures, thresholds)
    return out


def check(text: str, lang: str | None, quality_cfg: Mapping[str, Any]) -> list[RuleResult]:
    """Measure and evaluate in one go (for ad-hoc use and tests)."""
    m = measure(text, lang, policy_phrases=quality_cfg.get("policy_phrases", DEFAULT_POLICY_PHRASES),
                max_word_chars=quality_cfg.get("max_word_chars", DEFAULT_MAX_WORD_CHARS))
    return evaluate(m, thresholds_for(quality_cfg, lang), quality_cfg.get("filters", tuple(EVALUATORS)))
