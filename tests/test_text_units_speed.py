"""The faster word splitting and n-gram measures give exactly the plain definitions' values."""
from __future__ import annotations

import random
import sys
import unicodedata
from collections import Counter

from filters import quality_ngrams, text_units


def _plain_words(text: str) -> list[str]:
    """The definition: whitespace tokens with every leading/trailing P/S/Z/C character removed."""
    out = []
    for token in text.split():
        chars = list(token)
        while chars and unicodedata.category(chars[0])[0] in "PSZC":
            chars.pop(0)
        while chars and unicodedata.category(chars[-1])[0] in "PSZC":
            chars.pop()
        if chars:
            out.append("".join(chars))
    return out


def test_edge_punctuation_sets_hold_only_punctuation_symbols_separators_and_controls():
    chars = "".join(text_units._EDGE_PUNCT)
    assert chars and all(unicodedata.category(ch)[0] in "PSZC" for ch in chars)
    assert {",", ".", "(", "\u201e", "\u201c", "\u2013", "\u2019", "\u2026", "\xbb", "\xa0"} <= set(chars)


def test_letters_and_digits_are_never_punctuation():
    # split_words keeps a token whose first and last characters are isalnum() as it is.
    bad = [cp for cp in range(sys.maxunicode + 1)
           if chr(cp).isalnum() and unicodedata.category(chr(cp))[0] in "PSZC"]
    assert bad == []


def test_split_words_matches_the_definition_on_every_edge_character():
    for cp in range(0x3100):
        ch = chr(cp)
        for text in (f"{ch}a{ch}", f"a{ch}", f"{ch}a", f"{ch}", f"{ch}{ch}\u0301b,{ch}", f"\u201e{ch}x{ch}\u201c",
                     f"(\u0301{ch}", f"{ch}1\u2019"):
            assert text_units.split_words(text) == _plain_words(text), (hex(cp), text)
            assert text_units.words(text, "en") == _plain_words(text), (hex(cp), text)


def test_split_words_matches_the_definition_on_random_text():
    rng = random.Random(11)
    alphabet = ("abcXYZ019 ,.;:!?\"'()[]-_/\\@#%&*\u00a0\u00ab\u00bb\u00bf\u00a1\u00b7\u00d7\u00e9\u00df"
                "\u0301\u0308\u200b\u2013\u2014\u2018\u2019\u201c\u201e\u2026\u2022\u20ac\u3001\u3002"
                "\uff0c\uff01\u4e2d\u0e01\u0e31\u0915\u093f\U0001f600\u2028\x85\t\n")
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert text_units.split_words(text) == _plain_words(text), repr(text)


def _plain_ngrams(words, total, top, dup):
    top_out, dup_out = {n: 0.0 for n in top}, {n: 0.0 for n in dup}
    if not total:
        return top_out, dup_out
    for n in top:
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        if counts:
            best = max(counts.values())
            if best >= 2:
                gram = next(g for g in grams if counts[g] == best)
                top_out[n] = min(1.0, best * sum(map(len, gram)) / total)
    for n in dup:
        if len(words) < 2 * n:
            continue
        seen, covered = set(), [False] * len(words)
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            if gram in seen:
                covered[i:i + n] = [True] * n
            seen.add(gram)
        dup_out[n] = sum(len(w) for w, c in zip(words, covered) if c) / total
    return top_out, dup_out


def test_ngram_fracs_match_the_plain_definitions():
    rng = random.Random(3)
    top, dup = (2, 3, 4), (5, 6, 7, 8, 9, 10)
    for _ in range(1500):
        vocab = ["".join(rng.choice("abé") for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 7))]
        words = [rng.choice(vocab) for _ in range(rng.choice((0, 1, 2, 3, 4, 5, 9, 10, 11, 19, 20, 21, 60, 300)))]
        total = sum(map(len, words)) + rng.choice((0, 0, 3))
        assert quality_ngrams.ngram_fracs(words, total, top, dup) == _plain_ngrams(words, total, top, dup), words


def test_measure_lower_cases_each_word_on_its_own():
    # Final sigma: "ΟΔΟΣ".lower() ends in "ς", "ΣΑΣ".lower() starts with "σ"; measure lower-cases the
    # words of a text in one call and must get each word's own lower() (the n-gram ids use them).
    from filters import quality

    text = "ΟΔΟΣ ΣΑΣ. ΟΔΟΣ, ΣΑΣ ΌΣΟΣ İstanbul ǅemal\nΟΔΟΣ ΣΑΣ ΟΔΟΣ ΣΑΣ οδος σας Οδοσ\n" * 3
    for lang in ("el", "en", None):
        got = quality.measure(text, lang)
        words = text_units.words(text, lang)
        top, dup = _plain_ngrams([w.lower() for w in words], sum(map(len, words)), quality.TOP_NGRAMS,
                                 quality.DUP_NGRAMS)
        assert [got[f"q_top_{n}gram_frac"] for n in quality.TOP_NGRAMS] == [top[n] for n in quality.TOP_NGRAMS]
        assert [got[f"q_dup_{n}gram_frac"] for n in quality.DUP_NGRAMS] == [dup[n] for n in quality.DUP_NGRAMS]
