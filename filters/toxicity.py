"""Toxicity signals: word-list score, classifier score, URL/domain blocklist.

* Word lists (LDNOOBW layout: one file per language code, one word or phrase per line) are read
  from a directory or an http(s) URL prefix.  Matches are *counted* (hits, hits per word, and the
  lines that hold them); the decision needs several hits and a minimum density, because a single
  word on these lists also appears in medical, LGBTQ+ and dialect pages.
* Classifier: ``profanity_check`` (alt-profanity-check: a linear SVM over TF-IDF shipped inside
  its wheel, English, works offline) or a fastText model (Dolma/Jigsaw style).  Lines are scored
  and combined as the share of characters in lines scored >= 0.5, so one rude comment does not
  outweigh a long article.  profanity_check's model is converted once into arrays (cached under
  ``filters.array_cache.default_cache_dir()``) and scored with numpy to the same floats as scikit-learn, without
  importing scikit-learn in the workers (``filters/linear_text.py``).
* Domain blocklist (e.g. UT1 ``adult/domains``): a listed domain blocks its subdomains.  Domains
  are kept as a sorted array of 64-bit hashes (8 bytes each), so a multi-million-entry list fits
  in a worker.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence
from urllib.parse import urlsplit

from filters import text_units
from filters.array_cache import default_cache_dir

if TYPE_CHECKING:
    from filters.linear_text import LinearTextModel

FETCH_TIMEOUT_S = 60


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_source(source: str, name: str | None = None, *, missing_ok: bool = False) -> str | None:
    """Text of a local file / ``dir/name``, or of ``URL`` / ``URL/name`` (gzip is undone).

    With ``missing_ok`` a missing file (or HTTP 404) gives None; other failures raise an error
    naming the source.
    """
    if _is_url(source):
        url = f"{source.rstrip('/')}/{name}" if name else source
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            raise OSError(f"cannot fetch {url}: HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise OSError(f"cannot fetch {url}: {exc.reason}") from None
    else:
        path = Path(source) / name if name else Path(source)
        if not path.is_file():
            if missing_ok:
                return None
            raise FileNotFoundError(f"not found: {path}")
        data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------ word lists
class WordList:
    """Phrases of one list, matched on word boundaries (substrings for unsegmented scripts)."""

    def __init__(self, entries: Iterable[str], lang: str):
        self.lang = lang
        self.substring = text_units.needs_segmenter(lang)
        self.phrases: set[tuple[str, ...]] = set()
        self.strings: list[str] = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry or entry.startswith("#"):
                continue
            if self.substring:
                self.strings.append(entry)
            else:
                words = tuple(w.lower() for w in text_units.words(entry, None))
                if words:
                    self.phrases.add(words)
        self.max_len = max((len(p) for p in self.phrases), default=0)

    def __len__(self) -> int:
        return len(self.phrases) + len(self.strings)

    def count(self, line: str, words: Sequence[str]) -> int:
        if self.substring:
            lower = line.lower()
            return sum(lower.count(s) for s in self.strings)
        hits = 0
        for i in range(len(words)):
            for n in range(1, min(self.max_len, len(words) - i) + 1):
                if tuple(words[i:i + n]) in self.phrases:
                    hits += 1
        return hits


class WordListScorer:
    """Counts list matches with the document's language list plus ``always`` lists."""

    def __init__(self, source: str, always: Iterable[str] = ()):
        self.source = source
        self.always = tuple(always)
        self._lists: dict[str, WordList | None] = {}
        self._lock = threading.Lock()

    def wordlist(self, lang: str) -> WordList | None:
        with self._lock:
            if lang not in self._lists:
                text = read_source(self.source, lang, missing_ok=True) if lang else None
                self._lists[lang] = WordList(text.splitlines(), lang) if text is not None else None
            return self._lists[lang]

    def score(self, text: str, lang: str | None) -> dict:
        """``tox_word_hits``, ``tox_word_ratio`` (hits per word), ``tox_lines`` (line indices with hits),
        and ``tox_wordlist`` (the lists used; empty when none exists for the language)."""
        langs = [l for l in dict.fromkeys([lang or "", *self.always]) if l]
        lists = [wl for wl in (self.wordlist(l) for l in langs) if wl is not None and len(wl)]
        hits, n_words, lines = 0, 0, []
        for index, line in enumerate(text.split("\n")):
            words = [w.lower() for w in text_units.words(line, lang)]
            n_words += len(words)
            line_hits = sum(wl.count(line, words) for wl in lists)
            if line_hits:
                hits += line_hits
                lines.append(index)
        return {"tox_word_hits": hits, "tox_word_ratio": hits / n_words if n_words else 0.0,
                "tox_lines": lines, "tox_wordlist": ",".join(wl.lang for wl in lists)}


# ------------------------------------------------------------------------------------ classifier
class ToxicityClassifier:
    """Line-level toxicity probabilities combined into one document score (0..1).

    ``cache_dir``: where profanity_check's converted arrays are cached (default ``filters.array_cache.default_cache_dir()``)."""

    def __init__(self, kind: str, model_path: str | None = None, label: str = "__label__toxic", *,
                 cache_dir: str | Path | None = None):
        self.kind = kind
        if kind == "profanity_check":
            self._predict = load_profanity_model(cache_dir).predict
        elif kind == "fasttext":
            import fasttext

            if not model_path or not Path(model_path).is_file():
                raise FileNotFoundError(f"toxicity.classifier_model not found: {model_path}")
            model = fasttext.load_model(model_path)
            if label not in model.get_labels():
                raise ValueError(f"toxicity model {model_path} has no label {label!r}")

            def predict(lines):
                out = []
                for line in lines:
                    labels, probs = model.predict(" ".join(line.lower().split()), k=-1)
                    out.append(next((float(p) for l, p in zip(labels, probs) if l == label), 0.0))
                return out

            self._predict = predict
        else:
            raise ValueError(f"toxicity.classifier must be profanity_check, fasttext or none, got {kind!r}")

    def line_scores(self, lines: Sequence[str]) -> list[float]:
        return self._predict(lines) if lines else []

    def score(self, text: str) -> dict:
        """``tox_clf_frac``: share of characters in lines scored >= 0.5; ``tox_clf_max``: top line
        score; ``tox_clf_lines``: indices (in ``text.split("\\n")``) of the lines scored >= 0.5."""
        indexed = _scored_lines(text)
        return _combine(indexed, self.line_scores([l for _, l in indexed]))

    def score_many(self, texts: Sequence[str]) -> list[dict]:
        """``score`` of each text with one classifier call for all their lines: the same values
        (every line is scored on its own), without a model call's fixed cost per document."""
        per_text = [_scored_lines(text) for text in texts]
        scores = self.line_scores([l for indexed in per_text for _, l in indexed])
        out, pos = [], 0
        for indexed in per_text:
            out.append(_combine(indexed, scores[pos:pos + len(indexed)]))
            pos += len(indexed)
        return out


def _scored_lines(text: str) -> list[tuple[int, str]]:
    """(index in ``text.split("\\n")``, stripped line) of the lines with a letter."""
    return [(i, l.strip()) for i, l in enumerate(text.split("\n")) if any(map(str.isalpha, l))]


def _combine(indexed: Sequence[tuple[int, str]], scores: Sequence[float]) -> dict:
    total = sum(len(l) for _, l in indexed)
    toxic = [(i, l) for (i, l), s in zip(indexed, scores) if s >= 0.5]
    return {"tox_clf_frac": sum(len(l) for _, l in toxic) / total if total else 0.0,
            "tox_clf_max": max(scores, default=0.0), "tox_clf_lines": [i for i, _ in toxic]}


# ------------------------------------------------------------------------------------ profanity_check as arrays
# ``profanity_check`` unpickles a scikit-learn TfidfVectorizer and a CalibratedClassifierCV (sigmoid
# calibration over linear SVM folds); importing scikit-learn and unpickling cost ~1.7 CPU-s per worker.
# The fitted attributes are converted once into plain arrays (filters/linear_text.py: the same floats
# as predict_proba), cached as .npz keyed by the model files' bytes and the package versions.
# scikit-learn is imported only to convert (cache missing, stale or corrupt); a conversion that differs
# from ``predict_proba`` by more than PROFANITY_TOLERANCE on the probe lines raises.  On x86-64 the
# scores are the same floats (0 differences on realweb's 26,607 lines); a platform whose compiled
# scikit-learn/scipy fuses multiply-adds may differ in the last bit, within the tolerance.
# Bump PROFANITY_FORMAT with any change to filters/linear_text.py's arrays or arithmetic: it is part
# of the cache key, so old caches are rebuilt.
PROFANITY_FORMAT = 1
PROFANITY_CACHE_NAME = "profanity_check.npz"
PROFANITY_TOLERANCE = 1e-12
_log = logging.getLogger(__name__)
_profanity_lock = threading.Lock()
_profanity_models: dict[str, "LinearTextModel"] = {}


def profanity_model_files() -> list[Path]:
    """The vectorizer and model files inside the installed ``profanity_check`` package (not imported:
    importing it loads scikit-learn)."""
    import importlib.util

    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.origin:
        raise ImportError("toxicity.classifier profanity_check needs the alt-profanity-check package")
    data = Path(spec.origin).parent / "data"
    return [data / "vectorizer.joblib", data / "model.joblib"]


def profanity_cache_key(files: Sequence[Path]) -> str:
    """sha256 of the format, the package versions and the model files' bytes."""
    from importlib import metadata

    h = hashlib.sha256(f"format={PROFANITY_FORMAT}".encode())
    for dist in ("alt-profanity-check", "scikit-learn"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"\0{dist}={version}".encode())
    for path in files:
        h.update(f"\0{path.name}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def convert_profanity_model(files: Sequence[Path]) -> LinearTextModel:
    """Load the pickles with joblib/scikit-learn, convert, and check the arrays reproduce
    ``predict_proba`` on the probe lines (RuntimeError when not)."""
    import joblib
    import numpy as np

    from filters.linear_text import LinearTextModel, probe_lines

    vectorizer_path, model_path = files
    vectorizer, model = joblib.load(vectorizer_path), joblib.load(model_path)
    converted = LinearTextModel.from_sklearn(vectorizer, model)
    probes = probe_lines(converted)
    expected = model.predict_proba(vectorizer.transform(probes))[:, 1]
    got = np.array(converted.predict(probes))
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= PROFANITY_TOLERANCE:
        raise RuntimeError(f"profanity_check arrays do not reproduce scikit-learn's predict_proba "
                           f"(max difference {worst:g} on {len(probes)} probe lines); refusing to score")
    return converted


def load_profanity_model(cache_dir: Path | str | None = None, *, reuse: bool = True) -> LinearTextModel:
    """The profanity_check model as arrays: from the cache in ``cache_dir`` (default
    ``filters.array_cache.default_cache_dir()``) when it matches the installed files, else converted (scikit-learn
    imported once) and cached.  An unwritable cache directory only costs the conversion per process.
    ``reuse``: return the model this process already loaded from the same cache file and key."""
    from filters.linear_text import read_cache, write_cache

    files = profanity_model_files()
    key = profanity_cache_key(files)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / PROFANITY_CACHE_NAME
    with _profanity_lock:
        memo = f"{path}\0{key}"
        if reuse and memo in _profanity_models:
            return _profanity_models[memo]
        model = read_cache(path, key)
        if model is None:
            model = convert_profanity_model(files)
            try:
                write_cache(path, key, model)
            except OSError as exc:
                _log.warning("cannot write the profanity_check cache %s (%s); scoring from memory", path, exc)
        _profanity_models[memo] = model
        return model


# ------------------------------------------------------------------------------------ domains
def _hash64(domain: str) -> int:
    return int.from_bytes(hashlib.blake2b(domain.encode("utf-8"), digest_size=8).digest(), "little")


def url_host(url: str) -> str | None:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def parse_domains(text: str) -> list[str]:
    """Domains of a blocklist: one per line; ``#`` comments, URLs and ``*.`` prefixes tolerated."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if "://" in line:
            line = url_host(line) or ""
        line = line.removeprefix("*.").removeprefix(".").rstrip(".")
        if line:
            out.append(line)
    return out


class DomainBlocklist:
    """``match(url)``: the listed domain covering the URL's host (itself or a parent), else None."""

    def __init__(self, domains: Iterable[str]):
        import numpy as np

        self._hashes = np.unique(np.fromiter((_hash64(d) for d in domains), dtype=np.uint64))

    @classmethod
    def from_source(cls, source: str) -> "DomainBlocklist":
        return cls(parse_domains(read_source(source) or ""))

    def __len__(self) -> int:
        return int(self._hashes.size)

    def _contains(self, domain: str) -> bool:
        import numpy as np

        h = np.uint64(_hash64(domain))
        i = int(np.searchsorted(self._hashes, h))
        return i < self._hashes.size and self._hashes[i] == h

    def match(self, url: str) -> str | None:
        host = url_host(url)
        if not host:
            return None
        labels = host.split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if self._contains(candidate):
                return candidate
        return None
