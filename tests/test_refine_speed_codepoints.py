"""The lazily filled code point class table gives exactly ``char_class`` for every code point."""
from __future__ import annotations

import numpy as np

from filters.dedup import text as dt


def test_lazy_table_equals_char_class_over_all_code_points():
    cps = np.arange(0x110000, dtype=np.uint32)
    # In shuffled blocks, so entries are filled in several calls and in no particular order.
    order = np.random.default_rng(0).permutation(cps)
    for block in np.array_split(order, 7):
        got = dt._codepoint_classes(block)
        want = [dt.SEPARATOR if 0xD800 <= c <= 0xDFFF else dt.char_class(chr(c)) for c in block.tolist()]
        assert got.tolist() == want


def test_normalisation_of_non_ascii_text_uses_the_classes():
    text = "Ｆｕｌｌ－width Ⅻ ٣٤٥ café\u00a0naïve… 東京！\nnext　line ½"
    assert dt.normalize_text(text) == "full width xii 0 café naïve 東京 next line 0 0"
    assert dt.normalize_lines(text) == ["full width xii 0 café naïve 東京", "next line 0 0"]
