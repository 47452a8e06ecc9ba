"""Distributions of the thresholded signals and "what if the threshold were X" counts.

For every threshold that ``filters.decisions`` applies to one stored value (``SPECS``), streaming
over kept + removed documents:

* a histogram of the value the decision used (overall and per language), with fixed bins, so
  memory does not grow with the number of documents;
* for several alternative thresholds: documents failing that rule, documents the filters would
  remove in total (the rule, or any other rule that fails today), and their characters.

The values are exactly those the decision reads: the stored signal columns, and for the C4 and
FineWeb rules whose value is derived from the per-line signals, ``filters.quality.evaluate_c4`` /
``evaluate_fineweb``'s ``RuleResult.value``.  Per-language thresholds come from
``filters.quality.thresholds_for`` with the changed config, as ``Decider`` resolves them.  The
comparison of a value with a threshold mirrors ``filters.quality._min_rule``/``_max_rule`` and the
``Decider`` checks (missing value or threshold: passes), vectorised with numpy so a million
documents take seconds; tests/test_report.py checks every number against ``Decider(changed
config).decide`` run row by row.  The "other rules" a document fails come from the stored
``failed_filters`` column (every failing rule, not only the first) when the run's config hash
matches, else from ``Decider(cfg).decide`` per row.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from filters import quality

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
    test: str                # min: fails below; max: fails above; tox_ratio / tox_hits: word lists
    kind: str                # frac | count | ratio (histogram bins)
    label: str
    by_language: bool = False

    @property
    def group(self) -> str:
        return self.rule.split(".", 1)[0]


def _q(key: str, rule: str, column: str | None, test: str, kind: str, label: str, by_language=False) -> Spec:
    return Spec(key, ("quality", "thresholds", key), rule, "quality", column, test, kind, label, by_language)


SPECS: tuple[Spec, ...] = (
    Spec("min_score", ("language", "min_score"), "language.low_score", "language", "lang_score", "min", "frac",
         "language-ID confidence of the top language", True),
    _q("gopher_min_words", "gopher_quality.min_words", "q_words", "min", "count", "words per document", True),
    _q("gopher_max_words", "gopher_quality.max_words", "q_words", "max", "count", "words per document"),
    _q("gopher_min_mean_word_length", "gopher_quality.mean_word_length", "q_mean_word_length", "min", "ratio",
       "mean word length (characters)", True),
    _q("gopher_max_mean_word_length", "gopher_quality.max_mean_word_length", "q_mean_word_length", "max",
       "ratio", "mean word length (characters)", True),
    _q("gopher_max_symbol_word_ratio", "gopher_quality.symbol_word_ratio", "q_symbol_word_ratio", "max", "ratio",
       "'#' and ellipses per word"),
    _q("gopher_max_bullet_lines_frac", "gopher_quality.bullet_lines", "q_bullet_lines_frac", "max", "frac",
       "share of lines starting with a bullet"),
    _q("gopher_max_ellipsis_lines_frac", "gopher_quality.ellipsis_lines", "q_ellipsis_lines_frac", "max", "frac",
       "share of lines ending with an ellipsis"),
    _q("gopher_min_alpha_words_frac", "gopher_quality.alpha_words", "q_alpha_words_frac", "min", "frac",
       "share of words with a letter", True),
    _q("gopher_min_stop_words", "gopher_quality.stop_words", "q_stop_words", "min", "count",
       "stop words of the document's language", True),
    _q("gopher_min_stop_words_frac", "gopher_quality.stop_words_frac", "q_stop_words_frac", "min", "frac",
       "stop words per word", True),
    _q("gopher_max_dup_lines_frac", "gopher_repetition.dup_lines", "q_dup_lines_frac", "max", "frac",
       "share of lines repeating an earlier line"),
    _q("gopher_max_dup_paras_frac", "gopher_repetition.dup_paragraphs", "q_dup_paras_frac", "max", "frac",
       "share of paragraphs repeating an earlier one"),
    _q("gopher_max_dup_lines_char_frac", "gopher_repetition.dup_lines_chars", "q_dup_lines_char_frac", "max",
       "frac", "characters in repeated lines"),
    _q("gopher_max_dup_paras_char_frac", "gopher_repetition.dup_paragraphs_chars", "q_dup_paras_char_frac",
       "max", "frac", "characters in repeated paragraphs"),
    *[_q(f"gopher_max_top_{n}gram_frac", f"gopher_repetition.top_{n}gram", f"q_top_{n}gram_frac", "max", "frac",
         f"characters covered by the most frequent {n}-gram") for n in quality.TOP_NGRAMS],
    *[_q(f"gopher_max_dup_{n}gram_frac", f"gopher_repetition.dup_{n}gram", f"q_dup_{n}gram_frac", "max", "frac",
         f"characters covered by repeated {n}-grams") for n in quality.DUP_NGRAMS],
    _q("c4_min_sentences", "c4.min_sentences", None, "min", "count", "sentences left after the C4 line rules", True),
    _q("fineweb_min_line_punct_frac", "fineweb.line_punct", None, "min", "frac",
       "share of lines ending in terminal punctuation", True),
    _q("fineweb_max_short_lines_frac", "fineweb.short_lines", None, "max", "frac", "share of short lines"),
    _q("fineweb_max_dup_lines_char_frac", "fineweb.dup_lines_chars", "q_dup_lines_char_frac", "max", "frac",
       "characters in repeated lines"),
    _q("fineweb_max_newline_per_word", "fineweb.newline_per_word", None, "max", "ratio", "line breaks per word"),
    Spec("min_score", ("quality_model", "min_score"), "quality_model.score", "quality_model", "quality_model_score",
         "min", "frac", "quality-model score"),
    Spec("wordlist_max_ratio", ("toxicity", "wordlist_max_ratio"), "toxicity_words.score", "toxicity_words",
         "tox_word_ratio", "tox_ratio", "ratio", "word-list hits per word", True),
    Spec("wordlist_min_hits", ("toxicity", "wordlist_min_hits"), "toxicity_words.score", "toxicity_words",
         "tox_word_hits", "tox_hits", "count", "word-list hits"),
    Spec("classifier_max_frac", ("toxicity", "classifier_max_frac"), "toxicity_classifier.score",
         "toxicity_classifier", "tox_clf_frac", "max", "frac", "characters in lines the classifier scores toxic"),
)
DERIVED_GROUPS = ("c4", "fineweb")
LINE_COLUMNS = ("line_chars", "line_words", "line_flags", "line_sentences")
DERIVED_EXTRA = ("q_words", "q_dup_lines_char_frac", "q_lorem_ipsum", "q_curly_bracket")


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
    """Specs whose filter (and quality group) runs and whose threshold is set."""
    order = list(cfg["refine"]["filters"])
    groups = list(cfg["quality"]["filters"])
    out = []
    for spec in SPECS:
        if spec.filter not in order or get_path(cfg, spec.path) is None:
            continue
        if spec.filter == "quality" and spec.group not in groups:
            continue
        if spec.filter == "toxicity_words" and cfg["toxicity"]["wordlists"] is None:
            continue
        out.append(spec)
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


def _fails(test: str, x: np.ndarray, t: np.ndarray, other: np.ndarray | None, other_t: float | None) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if test == "min":
            return x < t
        if test == "max":
            return x > t
        if test == "tox_ratio":      # hits >= min_hits and ratio >= max_ratio
            return (x >= t) & (other >= other_t)
        if test == "tox_hits":
            return (x >= t) & (other >= other_t)
    raise ValueError(f"unknown test {test!r}")


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
        self.alt_quality: dict[str, list[dict]] = {}
        self.edges: dict[str, np.ndarray] = {}
        for s in self.specs:
            sid = s.rule + "|" + s.key
            self.alts[sid] = alternatives(s, self.base[sid])
            self.edges[sid] = bin_edges(s, self.base[sid])
            if s.filter == "quality":
                self.alt_quality[sid] = [with_threshold(cfg, s.path, v)["quality"] for v in self.alts[sid]]
        self._thr_cache: dict[tuple, float] = {}
        self.hist: dict[str, dict[str, np.ndarray]] = {sid: {} for sid in self.alts}
        self.counts = {sid: np.zeros((len(v), 3), dtype=np.int64) for sid, v in self.alts.items()}
        self.documents = 0
        self.lang_thresholds: dict[str, dict[str, float]] = {sid: {} for sid in self.alts}

    @property
    def needs_lines(self) -> bool:
        return any(s.column is None for s in self.specs)

    def columns(self) -> list[str]:
        cols = {s.column for s in self.specs if s.column}
        cols |= {"tox_word_hits", "tox_word_ratio"} if any(s.filter == "toxicity_words" for s in self.specs) else set()
        if self.needs_lines:
            cols |= set(LINE_COLUMNS) | set(DERIVED_EXTRA)
        return sorted(cols)

    def _threshold(self, sid: str, i: int, lang: str | None) -> float:
        key = (sid, i, lang)
        if key not in self._thr_cache:
            value = quality.thresholds_for(self.alt_quality[sid][i], lang)[sid.split("|")[1]]
            self._thr_cache[key] = math.nan if value is None else float(value)
        return self._thr_cache[key]

    def _base_thresholds(self, lang: str) -> dict:
        key = ("base", lang)
        if key not in self._thr_cache:
            self._thr_cache[key] = quality.thresholds_for(self.cfg["quality"], lang)
        return self._thr_cache[key]

    def _derived(self, batch, langs: list) -> dict[str, np.ndarray]:
        groups = {s.group for s in self.specs if s.column is None}
        rows = batch.select([c for c in (*LINE_COLUMNS, *DERIVED_EXTRA) if c in batch.schema.names]).to_pylist()
        out: dict[str, list] = {}
        for row, lang in zip(rows, langs):
            values: dict[str, float] = {}
            if all(row.get(c) is not None for c in LINE_COLUMNS):
                t = self._base_thresholds(lang)
                for group in groups:
                    for r in quality.EVALUATORS[group](row, t):
                        values[r.name] = r.value
            for s in self.specs:
                if s.column is None:
                    v = values.get(s.rule)
                    out.setdefault(s.rule, []).append(math.nan if v is None else float(v))
        return {k: np.array(v, dtype=float) for k, v in out.items()}

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
        derived = self._derived(batch, langs) if self.needs_lines else {}
        hits = _column(batch, "tox_word_hits", n)
        ratio = _column(batch, "tox_word_ratio", n)
        lang_arr = np.array(langs, dtype=object)
        uniq = sorted(set(langs))
        for s in self.specs:
            sid = s.rule + "|" + s.key
            x = derived[s.rule] if s.column is None else _column(batch, s.column, n)
            if s.filter == "language":
                x = np.nan_to_num(x, nan=0.0)           # a missing score counts as 0 (Decider)
            others = np.array([any(r != s.rule for r in f) for f in failed], dtype=bool)
            finite = ~np.isnan(x)
            for lang in uniq:
                sel = (lang_arr == lang) & finite
                if sel.any():
                    h, _ = np.histogram(x[sel], bins=self.edges[sid])
                    acc = self.hist[sid].setdefault(lang, np.zeros(len(h), dtype=np.int64))
                    acc += h
            other, other_t = None, None
            if s.test == "tox_ratio":
                other, other_t = hits, float(self.cfg["toxicity"]["wordlist_min_hits"])
            elif s.test == "tox_hits":
                other, other_t = ratio, float(self.cfg["toxicity"]["wordlist_max_ratio"])
            for i, alt in enumerate(self.alts[sid]):
                if s.filter == "quality":
                    per_lang = {lang: self._threshold(sid, i, lang) for lang in uniq}
                    t = np.array([per_lang[lang] for lang in langs], dtype=float)
                    if alt == self.base[sid]:
                        self.lang_thresholds[sid].update(per_lang)
                else:
                    t = np.full(n, float(alt))
                fail = _fails(s.test, x, t, other, other_t)
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
