"""Normalisation, stable hashes and shingles used by line and MinHash dedup."""
from __future__ import annotations

import random
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

from filters.dedup.text import (char_class, jaccard, line_hash, normalize_line, normalize_lines, normalize_text,
                                shingle_hash_reference, shingle_hashes, shingle_set, word_shingles, KEEP,
                                SEPARATOR, DIGIT)


@pytest.mark.parametrize("a,b", [
    ("Hello World", "hello   world"),                       # case, whitespace
    ("Posted 12 days ago", "Posted 3 days ago"),              # digit runs -> 0
    ("Price: 1,299.00 EUR!", "price 1 299 00 eur"),           # punctuation -> space
    ("ﬁne ｆｕｌｌ width", "fine full width"),                 # NFKC ligature, full width
    ("«Zitat» — „so“", "zitat so"),                           # non-ASCII punctuation
    ("Straße\tÄPFEL", "straße äpfel"),                        # non-ASCII case
    ("٣ apples", "7 apples"),                                 # non-ASCII digits are digits too
])
def test_lines_that_normalise_equal(a, b):
    assert normalize_line(a) == normalize_line(b)


@pytest.mark.parametrize("a,b", [
    ("hello world", "hello word"),
    ("12 apples", "12 pears"),
    ("naïve", "naive"),          # accents are letters, not noise
    ("a_b", "ab"),               # underscore separates words
])
def test_lines_that_stay_different(a, b):
    assert normalize_line(a) != normalize_line(b)


def test_normalized_form_is_single_spaced_words():
    out = normalize_text("  One,two;;three\n\nFOUR 2024-05-01  ")
    assert out == "one two three four 0 0 0"
    assert normalize_text("") == "" and normalize_text(" ,;- ") == ""


def test_fast_path_matches_the_character_class_definition():
    # Every code point goes through the same classes whichever internal path handles it:
    # compare against a plain per-character implementation of the documented rule.
    def slow(text):
        text = unicodedata.normalize("NFKC", text).lower()
        out, prev_digit = [], False
        for ch in text:
            cls = char_class(ch)
            if cls == DIGIT:
                if not prev_digit:
                    out.append("0")
                prev_digit = True
                continue
            prev_digit = False
            out.append(ch if cls == KEEP else " ")
        return " ".join("".join(out).split())

    rng = random.Random(7)
    pool = [chr(c) for c in list(range(0, 0x250)) + list(range(0x370, 0x530)) + list(range(0x600, 0x700))
            + list(range(0x900, 0x980)) + list(range(0x2000, 0x2100)) + list(range(0x3000, 0x3100))
            + list(range(0xFF00, 0xFFF0)) + [0x1F600, 0x1D7CE, 0x20000, 0xE0001, 0x10FFFD]]
    for _ in range(2000):
        text = "".join(rng.choices(pool, k=rng.randint(0, 40)))
        assert normalize_text(text) == slow(text), repr(text)
    assert char_class("a") == KEEP and char_class("!") == SEPARATOR and char_class("٣") == DIGIT


def test_normalize_lines_aligns_with_split_lines():
    text = "First Line!\n\nSECOND line 42\r\nthird"
    lines = text.split("\n")
    assert normalize_lines(text) == [normalize_line(x) for x in lines]
    assert len(normalize_lines(text)) == len(lines)


def test_line_hash_is_stable_across_processes():
    value = line_hash("all rights reserved")
    code = "from filters.dedup.text import line_hash; print(line_hash('all rights reserved'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    assert int(other.stdout) == value
    assert 0 <= value < 2 ** 64 and line_hash("all rights reserved!") != value


def test_shingles_hash_by_content_not_position():
    a = normalize_text("the quick brown fox jumps over the lazy dog")
    b = normalize_text("Intro words here. The quick brown fox jumps over")
    ha, hb = shingle_hashes(a, 5), shingle_hashes(b, 5)
    assert len(ha) == len(word_shingles(a, 5)) == 5
    assert ha.tolist() == [shingle_hash_reference(s) for s in word_shingles(a, 5)]
    assert hb.tolist() == [shingle_hash_reference(s) for s in word_shingles(b, 5)]
    # The same n-grams at different offsets: shingles 0 and 1 of a are the last two of b.
    assert ha[0] == hb[-2] and ha[1] == hb[-1] and ha[2] not in hb
    assert len(set(ha.tolist())) == 5


def test_short_and_empty_texts():
    assert shingle_hashes("", 5).size == 0
    short = shingle_hashes("two words", 5)
    assert short.tolist() == [shingle_hash_reference("two words")]
    with pytest.raises(ValueError):
        shingle_hashes("x", 0)


def test_non_ascii_shingles_match_reference():
    text = normalize_text("Zażółć gęślą jaźń — 東京 タワー ünd straße αβγ δεζ")
    assert shingle_hashes(text, 3).tolist() == [shingle_hash_reference(s) for s in word_shingles(text, 3)]


def test_exact_jaccard():
    # Words without digits (digit runs normalise to "0", which would make all "w<i>" equal).
    words = ["".join(chr(97 + (i // 26 ** k) % 26) for k in range(3)) for i in range(150)]
    a = shingle_set(normalize_text(" ".join(words[:100])))
    b = shingle_set(normalize_text(" ".join(words[50:150])))
    # 96 shingles each, windows 50..95 shared = 46
    assert jaccard(a, b) == pytest.approx(46 / (96 + 96 - 46))
    assert jaccard(a, a) == 1.0
    assert jaccard(np.empty(0, np.uint64), np.empty(0, np.uint64)) == 1.0
