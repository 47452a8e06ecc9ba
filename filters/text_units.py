"""Words, lines and stop words per language — the units every word-based rule counts.

Space-delimited languages: whitespace tokens with surrounding punctuation stripped.  Chinese
(jieba), Japanese (fugashi + unidic-lite, i.e. MeCab) and Thai (PyThaiNLP's newmm) have no spaces
between words, so a whitespace split would make a whole sentence one "word" and every word-count,
word-length and stop-word rule meaningless; their segmenters ship their dictionaries in their
wheels, so nothing is downloaded at run time.  Stop words come from ``stopwordsiso`` (the
stopwords-iso collection, 57 languages); a language without a list gets an empty set and rules
that need one report "no stop-word list" instead of failing the document.

Segmenters load lazily, once per process; MeCab taggers are not shared between threads.  jieba's
prefix dictionary (~500,000 entries) is cached with ``filters.array_cache`` as one UTF-8 blob and
an array of counts, keyed by jieba's version and its dictionary file: rebuilt from them it is the
same dict jieba's own loader makes, at about a quarter of the CPU (its marshal cache: ~0.9 s).
"""
from __future__ import annotations

import logging
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

# lid.176 codes whose script is written without spaces and the segmenter used for each.
_SEGMENTER_OF = {"zh": "zh", "wuu": "zh", "yue": "zh", "gan": "zh", "ja": "ja", "th": "th"}

_lock = threading.Lock()
_local = threading.local()
_jieba = None
log = logging.getLogger(__name__)


def needs_segmenter(lang: str | None) -> bool:
    return (lang or "") in _SEGMENTER_OF


def _is_punct_or_symbol(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZC"


# The characters of categories P, S, Z and C in Latin-1 and in General Punctuation ("„“–’…"):
# ``str.strip`` removes them at C speed.  It removes a run of them from each end of a token, all of
# which ``_strip_punct`` would remove too; where the rest then starts and ends with a letter or
# digit (never P/S/Z/C), that run was all there was to strip, and otherwise ``_strip_punct`` of the
# rest finishes the job (the same result as on the whole token, since what was taken off was part
# of the run it strips).
_EDGE_PUNCT = tuple("".join(ch for ch in map(chr, range(*block)) if _is_punct_or_symbol(ch))
                    for block in ((0, 0x100), (0x2000, 0x2070)))


def _strip_punct(token: str) -> str:
    start, end = 0, len(token)
    while start < end and _is_punct_or_symbol(token[start]):
        start += 1
    while end > start and _is_punct_or_symbol(token[end - 1]):
        end -= 1
    return token[start:end]


JIEBA_CACHE_NAME = "jieba-prefix-dict.npz"
JIEBA_CACHE_FORMAT = 1


def _jieba_tokenizer():
    global _jieba
    with _lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            _jieba = load_jieba(jieba.Tokenizer())
        return _jieba


def load_jieba(tok, cache_dir: str | Path | None = None):
    """``tok`` (a fresh ``jieba.Tokenizer`` of the default dictionary) initialised: its prefix
    dictionary ``FREQ`` and ``total`` from our cache when it matches the installed jieba and its
    dictionary file, else built by jieba's ``gen_pfdict`` from that file (then cached; an
    unwritable cache folder only costs the build)."""
    import numpy as np

    from filters.array_cache import default_cache_dir, read_arrays, write_arrays

    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / JIEBA_CACHE_NAME
    key = _jieba_cache_key(tok)
    arrays = read_arrays(path, key)
    if arrays is not None:
        try:
            words = arrays["words"].tobytes().decode("utf-8").split("\0")
            counts = arrays["counts"].tolist()
            if len(words) != len(counts) or arrays["total"].shape != ():
                raise ValueError("words and counts differ in length")
            tok.FREQ, tok.total, tok.initialized = dict(zip(words, counts)), int(arrays["total"]), True
            return tok
        except (KeyError, ValueError, TypeError) as exc:   # a file this code did not write
            log.warning("jieba cache %s is inconsistent (%s); rebuilding", path, exc)
    # From the dictionary file itself (what the key names), not jieba's own marshal cache in the
    # temporary directory, which it trusts for the default dictionary whatever jieba wrote it.
    tok.FREQ, tok.total = tok.gen_pfdict(tok.get_dict_file())
    tok.initialized = True
    if not any("\0" in w for w in tok.FREQ):
        arrays = {"words": np.frombuffer("\0".join(tok.FREQ).encode("utf-8"), dtype=np.uint8),
                  "counts": np.fromiter(tok.FREQ.values(), dtype=np.int64, count=len(tok.FREQ)),
                  "total": np.array(tok.total, dtype=np.int64)}
        try:
            write_arrays(path, key, arrays)
        except OSError as exc:
            log.warning("cannot write the jieba cache %s (%s)", path, exc)
    return tok


def _jieba_cache_key(tok) -> str:
    """sha256 of the format, jieba's version and the bytes of the dictionary ``tok`` loads."""
    import hashlib

    import jieba

    h = hashlib.sha256(f"format={JIEBA_CACHE_FORMAT}\0jieba={jieba.__version__}\0".encode())
    with tok.get_dict_file() as fh:
        h.update(fh.read())
    return h.hexdigest()


def _mecab():
    tagger = getattr(_local, "mecab", None)
    if tagger is None:
        import fugashi

        tagger = fugashi.Tagger()  # finds the unidic-lite dictionary installed with it
        _local.mecab = tagger
    return tagger


def _segment(text: str, segmenter: str) -> list[str]:
    if segmenter == "zh":
        return _jieba_tokenizer().lcut(text)
    if segmenter == "ja":
        return [w.surface for w in _mecab()(text)]
    if segmenter == "th":
        from pythainlp.tokenize import word_tokenize

        return word_tokenize(text, engine="newmm", keep_whitespace=False)
    raise ValueError(f"no segmenter {segmenter!r}")


def words(text: str, lang: str | None) -> list[str]:
    """The words of ``text``: punctuation-only tokens dropped, surrounding punctuation stripped.

    Numbers and mixed tokens (``3D``, ``COVID-19``) are words; ``—`` or ``...`` are not.
    """
    segmenter = _SEGMENTER_OF.get(lang or "")
    out: list[str] = []
    if segmenter is None:
        return split_words(text)
    # Segmenters are slow on huge inputs made of one line (newmm is superlinear) and MeCab crashes
    # the process on a ~200,000-character token: feed them line by line, in bounded pieces.
    for line in text.splitlines():
        if not line.strip():
            continue
        for piece in bounded_pieces(line, SEGMENT_CHARS):
            for token in _segment(piece, segmenter):
                token = _strip_punct(token.strip())
                if token:
                    out.append(token)
    return out


def split_words(text: str) -> list[str]:
    """``words`` of a language without a segmenter: whitespace tokens, punctuation stripped."""
    out: list[str] = []
    append = out.append
    for token in text.split():
        # A token that starts and ends with a letter or digit (category L* or N*, never P/S/Z/C)
        # has nothing to strip: the common case skips the per-character look-ups.
        if token[0].isalnum() and token[-1].isalnum():
            append(token)
            continue
        for chars in _EDGE_PUNCT:
            token = token.strip(chars)
            if not token or (token[0].isalnum() and token[-1].isalnum()):
                break
        else:
            token = _strip_punct(token)
        if token:
            append(token)
    return out


SEGMENT_CHARS = 10_000


def bounded_pieces(line: str, limit: int) -> list[str]:
    """``line`` cut into pieces of at most ``limit`` characters, each cut after the last whitespace
    of the window when there is one (a hard cut otherwise); a shorter line is one piece."""
    if len(line) <= limit:
        return [line]
    pieces = []
    start = 0
    while len(line) - start > limit:
        window = line[start:start + limit]
        cut = max(window.rfind(" "), window.rfind("\t"), window.rfind("\u3000"))
        end = start + (cut + 1 if cut > 0 else limit)
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return pieces


def has_alpha(word: str) -> bool:
    return any(ch.isalpha() for ch in word)


@lru_cache(maxsize=256)
def stop_words(lang: str | None) -> frozenset[str]:
    """Lower-cased stop words of ``lang`` (empty when the collection has no list for it)."""
    import stopwordsiso

    code = {"wuu": "zh", "yue": "zh", "gan": "zh", "nb": "no", "nn": "no"}.get(lang or "", lang or "")
    if not code or not stopwordsiso.has_lang(code):
        return frozenset()
    return frozenset(w.lower() for w in stopwordsiso.stopwords(code))


def has_stop_words(lang: str | None) -> bool:
    return bool(stop_words(lang))
