"""Toxicity signals: word-list score, classifier score, URL/domain blocklist.

* Word lists (LDNOOBW layout: one file per language code, one word or phrase per line) are read
  from a directory or an http(s) URL prefix.  Matches are *counted* (hits, hits per word, and the
  lines that hold them); the decision needs several hits and a minimum density, because a single
  word on these lists also appears in medical, LGBTQ+ and dialect pages.
* Classifier: ``profanity_check`` (alt-profanity-check: a linear SVM over TF-IDF shipped inside
  its wheel, English, works offline) or a fastText model (Dolma/Jigsaw style).  Lines are scored
  and combined as the share of characters in lines scored >= 0.5, so one rude comment does not
  outweigh a long article.
* Domain blocklist (e.g. UT1 ``adult/domains``): a listed domain blocks its subdomains.  Domains
  are kept as a sorted array of 64-bit hashes (8 bytes each), so a multi-million-entry list fits
  in a worker.
"""
from __future__ import annotations

import gzip
import hashlib
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlsplit

from filters import text_units

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
    """Line-level toxicity probabilities combined into one document score (0..1)."""

    def __init__(self, kind: str, model_path: str | None = None, label: str = "__label__toxic"):
        self.kind = kind
        if kind == "profanity_check":
            from profanity_check import predict_prob

            self._predict = lambda lines: [float(p) for p in predict_prob(list(lines))]
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
