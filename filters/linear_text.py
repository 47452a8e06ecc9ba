"""A TF-IDF + calibrated linear classifier (scikit-learn's TfidfVectorizer and a sigmoid
CalibratedClassifierCV over linear folds) as plain arrays, scored with numpy to the same floats.

``LinearTextModel.from_sklearn`` reads the fitted attributes (vocabulary, token pattern, idf, each
fold's coefficients, intercept and sigmoid parameters) and refuses settings it does not implement.
``predict`` does the arithmetic in the order of the CSR row loops scikit-learn runs: counts * idf,
the sum of squares added left to right, division by its square root, each fold's dot product added
left to right, + intercept, ``a * d + b``, ``1 / (1 + exp(.))`` with the C library's exp, and the
mean of the folds; so the probabilities are the same floats, not approximately equal.  The arrays are
cached with ``filters.array_cache`` (``write_cache`` / ``read_cache``).
Pure logic and numpy; scikit-learn is imported only by ``from_sklearn``.
"""
from __future__ import annotations

import logging
import math
import re
import sys
from itertools import repeat
from pathlib import Path
from typing import Sequence

import numpy as np

from filters.array_cache import read_arrays, write_arrays

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"     # scikit-learn's default, used by profanity_check
_log = logging.getLogger(__name__)


class _RowsInOrder:
    """Sums of the rows of CSR-ordered values (row ids ascending, ``row[i]`` for value i), each added
    left to right from 0.0 as a CSR row loop adds them.  ``np.add.reduceat`` and ``sum`` add pairwise,
    which changes the last bits; ``np.cumsum`` adds in order.  The values go into a zero-padded matrix
    (column 0 holds the starting 0.0) whose last cumsum column is the sum; when one matrix would be
    mostly padding, rows are grouped by length within a factor of 4."""

    PADDING_CELLS = 65536

    def __init__(self, row, lengths):
        self.n_rows = lengths.size
        starts = np.cumsum(lengths) - lengths
        column = np.arange(row.size) - starts[row] + 1
        width = int(lengths.max(initial=0)) + 1
        if self.n_rows * width <= 4 * row.size + self.PADDING_CELLS:
            self.parts = [(None, self.n_rows, width, row, column, None)]
            return
        group = np.frexp(lengths)[1] // 2      # lengths 0-1, 2-7, 8-31, 32-127, ... (empty rows sum to 0)
        local = np.zeros(self.n_rows, dtype=np.int64)
        self.parts = []
        for g in np.unique(group[lengths > 0]):
            rows = np.flatnonzero(group == g)
            local[rows] = np.arange(rows.size)
            members = group[row] == g
            self.parts.append((rows, rows.size, int(lengths[rows].max()) + 1, local[row[members]],
                               column[members], members))

    def sums(self, values):
        out = np.zeros((self.n_rows,) + values.shape[1:])
        for rows, height, width, r, c, members in self.parts:
            padded = np.zeros((height, width) + values.shape[1:])
            padded[r, c] = values if members is None else values[members]
            total = np.cumsum(padded, axis=1)[:, -1]
            if rows is None:
                out = total
            else:
                out[rows] = total
        return out


_LOG_DBL_MAX = math.log(sys.float_info.max)


def _calibrated(t):
    """``1 / (1 + exp(t))`` elementwise with the C library's exp, as scipy's expit computes it
    (numpy's SIMD exp differs from it in the last bit for some inputs); exp overflow gives 0.0."""
    flat = t.ravel().tolist()
    if max(flat, default=0.0) > _LOG_DBL_MAX:
        exps = np.array([math.exp(v) if v <= _LOG_DBL_MAX else math.inf for v in flat])
    else:
        exps = np.fromiter(map(math.exp, flat), dtype=np.float64, count=len(flat))
    return 1.0 / (1.0 + exps.reshape(t.shape))


class LinearTextModel:
    """TF-IDF (word unigrams, l2 norm) -> linear decision per fold -> sigmoid calibration -> mean.

    Built from plain arrays: ``vocab`` (feature terms joined by ``\\n``, utf-8), ``vocab_index``,
    ``token_pattern``, ``lowercase``, ``idf``, ``coef`` (features x folds), ``intercept``, ``a``, ``b``
    (the folds' calibration ``1 / (1 + exp(a * d + b))``)."""

    ARRAYS = ("vocab", "vocab_index", "token_pattern", "lowercase", "idf", "coef", "intercept", "a", "b")

    def __init__(self, arrays: dict):
        missing = [k for k in self.ARRAYS if k not in arrays]
        if missing:
            raise ValueError(f"model arrays lack {missing}")
        terms = bytes(np.asarray(arrays["vocab"], dtype=np.uint8)).decode("utf-8").split("\n")
        index = np.asarray(arrays["vocab_index"], dtype=np.int64)
        self.idf = np.ascontiguousarray(arrays["idf"], dtype=np.float64)
        self.coef = np.ascontiguousarray(arrays["coef"], dtype=np.float64)
        self.intercept = np.ascontiguousarray(arrays["intercept"], dtype=np.float64)
        self.a = np.ascontiguousarray(arrays["a"], dtype=np.float64)
        self.b = np.ascontiguousarray(arrays["b"], dtype=np.float64)
        n_features, folds = self.idf.size, self.intercept.size
        if (self.idf.ndim != 1 or self.coef.shape != (n_features, folds) or folds == 0
                or self.a.shape != (folds,) or self.b.shape != (folds,) or len(terms) != index.size
                or (index.size and (index.min() < 0 or index.max() >= n_features))):
            raise ValueError("model arrays have inconsistent shapes")
        self.vocab = dict(zip(terms, index.tolist()))
        if len(self.vocab) != len(terms):
            raise ValueError("model vocabulary has repeated terms")
        self.token_pattern = str(arrays["token_pattern"])
        self.lowercase = bool(arrays["lowercase"])
        self._findall = re.compile(self.token_pattern).findall
        self._split_findall = None
        self._lookup = dict(self.vocab)
        if self.token_pattern == DEFAULT_TOKEN_PATTERN:
            # findall of \b\w\w+\b = every maximal run of 2+ word characters = findall of \w\w+ (a
            # scan reaches a run at its first character, where \b holds, and greedy \w+ stops where
            # \b holds), cheaper; "\n" is no word character, so the alternative only marks line ends
            self._split_findall = re.compile(r"(?u)\w\w+|\n").findall
            self._lookup["\n"] = -2

    def arrays(self) -> dict:
        return {**_vocab_arrays(self.vocab), "token_pattern": np.array(self.token_pattern),
                "lowercase": np.array(self.lowercase), "idf": self.idf, "coef": self.coef,
                "intercept": self.intercept, "a": self.a, "b": self.b}

    def _features(self, lines: Sequence[str]):
        """(row, feature id) of every known token, row by row in text order."""
        get = self._lookup.get
        joined = "\n".join(lines)
        if self._split_findall is not None and joined.count("\n") == len(lines) - 1:
            # one regex pass: the token pattern cannot match "\n" nor see past it, so the pattern
            # with a "\n" alternative finds the same tokens plus the line ends (and str.lower maps
            # the joined text as it maps each line: only a final sigma looks at neighbours, and a
            # line end stops it as the end of the text does)
            tokens = self._split_findall(joined.lower() if self.lowercase else joined)
            ids = np.fromiter(map(get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
            ends = ids == -2
            row = np.cumsum(ends) - ends
        else:
            findall, ids_list, counts = self._findall, [], []
            for line in lines:
                tokens = findall(line.lower() if self.lowercase else line)
                counts.append(len(tokens))
                ids_list.extend(map(get, tokens, repeat(-1)))
            ids = np.array(ids_list, dtype=np.int64)
            row = np.repeat(np.arange(len(lines), dtype=np.int64), counts)
        known = ids >= 0
        return row[known], ids[known]

    def predict(self, lines: Sequence[str]) -> list[float]:
        """Probability of the positive class for each line, all lines in one vectorised pass."""
        if not lines:
            return []
        n_rows, n_features = len(lines), self.idf.size
        row, feature = self._features(lines)
        cell, tf = np.unique(row * n_features + feature, return_counts=True)   # rows, then features
        row, feature = np.divmod(cell, n_features)
        rows = _RowsInOrder(row, np.bincount(row, minlength=n_rows))
        weight = tf.astype(np.float64) * self.idf[feature]
        norm = np.sqrt(rows.sums(weight * weight))
        weight = weight / np.where(norm == 0.0, 1.0, norm)[row]
        decision = rows.sums(weight[:, None] * self.coef[feature]) + self.intercept
        proba = _calibrated(self.a * decision + self.b)
        mean = np.zeros(n_rows)
        for fold in range(proba.shape[1]):
            mean += proba[:, fold]
        return (mean / proba.shape[1]).tolist()

    # --------------------------------------------------------------------------------- conversion
    @classmethod
    def from_sklearn(cls, vectorizer, model) -> "LinearTextModel":
        """The arrays of a fitted TfidfVectorizer + binary CalibratedClassifierCV(sigmoid, linear folds);
        anything else is a ValueError naming what differs."""
        from sklearn.linear_model._base import LinearClassifierMixin

        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"model cannot be converted to arrays: {what}")

        params = vectorizer.get_params()
        expected = {"analyzer": "word", "tokenizer": None, "preprocessor": None, "strip_accents": None,
                    "ngram_range": (1, 1), "binary": False, "sublinear_tf": False, "use_idf": True,
                    "norm": "l2", "input": "content"}
        for name, value in expected.items():
            need(params.get(name) == value, f"vectorizer {name}={params.get(name)!r}, expected {value!r}")
        need(np.dtype(params.get("dtype")) == np.float64, f"vectorizer dtype {params.get('dtype')!r}")
        need(isinstance(params.get("token_pattern"), str), "vectorizer has no token_pattern")
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        n_features = idf.size
        need(np.all(np.isfinite(idf)) and np.all(idf > 0), "idf has non-positive or non-finite values")
        stop = frozenset(vectorizer.get_stop_words() or ())
        vocab = {t: int(i) for t, i in vectorizer.vocabulary_.items() if t not in stop}  # stop words never match
        need(sorted(vectorizer.vocabulary_.values()) == list(range(n_features)), "vocabulary is not 0..n-1")
        need(all(t and "\n" not in t for t in vocab), "vocabulary has empty or multi-line terms")
        need(list(getattr(model, "classes_", [])) == [0, 1], f"classes {getattr(model, 'classes_', None)!r}")
        folds = getattr(model, "calibrated_classifiers_", None)
        need(bool(folds), "no calibrated_classifiers_")
        coef, intercept, a, b = [], [], [], []
        for i, fold in enumerate(folds):
            est = fold.estimator
            need(fold.method == "sigmoid", f"fold {i} calibration {fold.method!r}")
            need(list(fold.classes) == [0, 1] and list(est.classes_) == [0, 1], f"fold {i} classes")
            need(isinstance(est, LinearClassifierMixin) and hasattr(est, "decision_function"),
                 f"fold {i} estimator {type(est).__name__} is not a linear classifier")
            need(est.coef_.shape == (1, n_features) and np.shape(est.intercept_) == (1,),
                 f"fold {i} coef_ {est.coef_.shape} / intercept_ {np.shape(est.intercept_)}")
            need(len(fold.calibrators) == 1 and type(fold.calibrators[0]).__name__ == "_SigmoidCalibration",
                 f"fold {i} calibrators {[type(c).__name__ for c in fold.calibrators]}")
            coef.append(np.asarray(est.coef_[0], dtype=np.float64))
            intercept.append(float(est.intercept_[0]))
            a.append(float(fold.calibrators[0].a_))
            b.append(float(fold.calibrators[0].b_))
        return cls({**_vocab_arrays(vocab), "token_pattern": np.array(params["token_pattern"]),
                    "lowercase": np.array(bool(params["lowercase"])),
                    "idf": idf, "coef": np.stack(coef, axis=1), "intercept": np.array(intercept),
                    "a": np.array(a), "b": np.array(b)})


def _vocab_arrays(vocab: dict[str, int]) -> dict:
    terms = sorted(vocab, key=vocab.__getitem__)
    return {"vocab": np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
            "vocab_index": np.array([vocab[t] for t in terms], dtype=np.int64)}


def probe_lines(model: LinearTextModel) -> list[str]:
    """Deterministic lines that use every feature (in rows of 1 to 400 terms, repeated, upper case)
    plus edge cases: empty, punctuation only, unknown words, non-Latin scripts, a long line."""
    terms = sorted(model.vocab, key=model.vocab.__getitem__)
    lines = ["", " ", "!!! ... ???", "The museum opens at nine.", "you are a fucking idiot",
             "SHIT shit Shit sh1t", "Ünïcödé straße ΣΑΣ мир 世界 こんにちは", "a b c d e f", "x" * 5000,
             "fuck " * 2000, "\t".join(terms[:50]) + " 1234 5678 the and of"]
    sizes, i, step = (1, 2, 3, 5, 8, 13, 40, 120, 400), 0, 0
    while i < len(terms):
        size = sizes[step % len(sizes)]
        chunk = terms[i:i + size]
        lines.append(" ".join(chunk + chunk[: size // 3] + [chunk[0].upper()]))
        i, step = i + size, step + 1
    return lines


def read_cache(path: Path, key: str) -> LinearTextModel | None:
    """The cached model (``filters.array_cache``), or None when the file is missing, made for other
    model files/versions (stale) or damaged (unreadable, digest mismatch, inconsistent arrays)."""
    arrays = read_arrays(path, key)
    if arrays is None:
        return None
    try:
        return LinearTextModel(arrays)
    except Exception as exc:  # inconsistent arrays: rebuild from the package files
        _log.warning("model cache %s is unreadable (%s: %s); rebuilding", path, type(exc).__name__, exc)
        return None


def write_cache(path: Path, key: str, model: LinearTextModel) -> None:
    """Atomic write (``filters.array_cache.write_arrays``)."""
    write_arrays(path, key, model.arrays())
