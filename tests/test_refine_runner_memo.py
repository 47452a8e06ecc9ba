"""Refine's dedup runner cuts: the memoised class mapping shared by MinHash and line dedup
(``filters.dedup.text``) and the typed line-key shuffle (``pipelines.dedup.lines``)."""
from __future__ import annotations

import sys
import threading

import apache_beam as beam
import numpy as np
import pytest

import filters.dedup.text as text_mod
from filters.dedup.lines import line_keys
from filters.dedup.text import normalize_lines, normalized_bytes
from pipelines.config import load_config
from pipelines.dedup import Deduplicate
from pipelines.runner import new_pipeline

TEXTS = ["Plain ASCII text, with 123 digits and\npunctuation!!  ",
         "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ ١٢٣ digits\nﬁ ligature; Ünïcödé ÄÖÜ",
         "日本語のテキスト。\n\n\tтекст на русском 42\n", "", "\n\n", "x" * 5000 + "\né" * 300]


@pytest.fixture(autouse=True)
def _fresh_memo():
    text_mod._memo.clear()
    text_mod._memo_size[0] = 0
    yield
    text_mod._memo.clear()
    text_mod._memo_size[0] = 0


def _copy(s: str) -> str:
    """An equal str that is a different object (the memo is keyed by the object)."""
    return "".join(list(s))


def test_memoised_mapping_equals_a_fresh_one_for_the_same_and_for_equal_texts():
    for t in TEXTS:
        fresh = text_mod._class_map(_copy(t))
        copy = _copy(t)
        if copy is t:   # "" is one object in CPython: nothing to tell apart
            assert text_mod._class_mapped(t).tobytes() == fresh.tobytes()
            continue
        first = text_mod._class_mapped(t)
        other = text_mod._class_mapped(copy)      # an equal text, another object: computed again
        assert other is not first
        again = text_mod._class_mapped(t)         # a hit: the very array of the first call ...
        assert again is first
        third = text_mod._class_mapped(t)         # ... once: the entry went with its reuse
        assert third is not first
        for arr in (first, other, third):
            assert arr.dtype == np.uint8 and arr.tobytes() == fresh.tobytes()
        text_mod._memo.clear()
        text_mod._memo_size[0] = 0


def test_line_keys_and_minhash_bytes_do_not_depend_on_the_memo():
    for t in TEXTS:
        keys, norm, lines = line_keys(t, 3), normalized_bytes(t).tobytes(), normalize_lines(t)
        # Second round: everything comes from the memo; then a fresh memo with the calls swapped.
        assert (line_keys(t, 3), normalized_bytes(t).tobytes(), normalize_lines(t)) == (keys, norm, lines)
        text_mod._memo.clear()
        text_mod._memo_size[0] = 0
        assert normalized_bytes(t).tobytes() == norm and line_keys(t, 3) == keys
        # Line keys by hand: blake2b of each normalised line (the definition in filters.dedup.lines).
        want = list(dict.fromkeys(text_mod.line_hash(" ".join(n.split())).to_bytes(8, "big")
                                  for n in (text_mod.normalize_text(line) for line in t.split("\n"))
                                  if len(n) >= 3))
        assert keys == want


def test_a_memoised_array_cannot_be_changed_in_place():
    arr = text_mod._class_mapped("Ünïcödé text that is not ASCII")
    with pytest.raises(ValueError):
        arr[0] = 0
    assert text_mod._class_mapped("Ünïcödé text that is not ASCII".upper().lower()).tobytes() == arr.tobytes()


def test_an_entry_under_the_id_of_another_object_is_not_used():
    t = "the real text"
    text_mod._memo[id(t)] = ("a different text", np.frombuffer(b"WRONG", dtype=np.uint8), 5)
    assert text_mod._class_mapped(t).tobytes() == b"the real text"


def test_memo_stays_within_its_bounds(monkeypatch):
    kept = [f"text number {i} " * 2 for i in range(10, 30)]
    one = text_mod._class_map(kept[0]).nbytes + sys.getsizeof(kept[0])   # the same for each text
    monkeypatch.setattr(text_mod, "_MEMO_ENTRIES", 5)
    monkeypatch.setattr(text_mod, "_MEMO_BYTES", 3 * one + 1)
    for t in kept:
        text_mod._class_mapped(t)
        assert len(text_mod._memo) <= 5 and text_mod._memo_size[0] <= 3 * one + 1
        assert text_mod._memo_size[0] == sum(a.nbytes + sys.getsizeof(t) for t, a, _ in text_mod._memo.values())
    assert [entry[0] for entry in text_mod._memo.values()] == kept[-3:]   # the newest three fit
    assert text_mod._class_mapped(kept[-1]).tobytes() == text_mod._class_map(kept[-1]).tobytes()  # a hit leaves
    assert len(text_mod._memo) == 2 and text_mod._memo_size[0] == 2 * one
    monkeypatch.setattr(text_mod, "_MEMO_ENTRIES", 3)
    for t in kept[:10]:
        text_mod._class_mapped(t)
    assert [entry[0] for entry in text_mod._memo.values()] == kept[7:10]   # the entry bound
    big = "y" * (3 * one)
    assert text_mod._class_mapped(big).tobytes() == big.encode()
    assert all(entry[0] is not big for entry in text_mod._memo.values())   # too large to keep


def test_memo_under_threads_gives_each_text_its_own_mapping(monkeypatch):
    monkeypatch.setattr(text_mod, "_MEMO_ENTRIES", 7)
    texts = [f"Thread text {i} ÄÖÜ {'word ' * (i % 13)}" for i in range(400)]
    want = [text_mod._class_map(t).tobytes() for t in texts]
    errors = []

    def work(offset):
        for i in range(offset, offset + 400):
            j = i % 400
            if text_mod._class_mapped(texts[j]).tobytes() != want[j]:
                errors.append(j)

    threads = [threading.Thread(target=work, args=(k * 50,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(text_mod._memo) <= 7


def test_line_dedup_owner_is_the_smallest_non_ascii_doc_id(tmp_path):
    """The line keys cross their shuffle typed (bytes, str): non-ASCII doc_ids come back as the
    same strings, and the line's owner (kept_one_occurrence) is the smallest in code-point order."""
    shared = "This exact boilerplate sentence appears in every one of the documents here."
    ids = ["ü-doc", "日本-doc", "a-doc", "Z-doc"]     # code-point order: Z < a < ü < 日
    body = {d: " ".join(f"{d}{k} word{k}" for k in range(60)) for d in ids}
    rows = [{"doc_id": d, "url": f"https://x.example/{i}", "text": f"{body[d]}\n{shared}"}
            for i, d in enumerate(ids)]
    cfg = load_config(overrides={"dedup": {"minhash": {"enabled": False}, "url": {"enabled": False}}})
    out = tmp_path / "kept"
    with new_pipeline([], workers=1) as p:
        kept = p | beam.Create(rows) | Deduplicate(cfg)
        (kept["kept"] | beam.Map(lambda r: f"{r['doc_id']}\t{r['dup_lines_removed']}\t{shared in r['text']}")
         | beam.io.WriteToText(str(out)))
    got = {}
    for f in tmp_path.glob("kept*"):
        for line in f.read_text(encoding="utf-8").splitlines():
            doc_id, removed, has = line.split("\t")
            got[doc_id] = (int(removed), has == "True")
    owner = min(ids)
    assert owner == "Z-doc"
    assert got == {d: (0, True) if d == owner else (1, False) for d in ids}


def test_shuffle_bench_counts_what_the_declared_coders_write():
    """bench/shuffle_refine.py's ``coded`` bytes: a declared Tuple[bytes, str] is a length-prefixed
    key and value (no type tags); an undeclared type pays FastPrimitivesCoder's tags."""
    import typing

    from bench.shuffle_refine import kv_coder

    key, value = b"\x01" * 8, "dög-1"
    # (A coder's own encode() is the outer context: the last component goes without its length.)
    typed = kv_coder(typing.Tuple[bytes, str]).encode((key, value))
    assert typed == bytes([8]) + key + value.encode()
    untyped = kv_coder(typing.Any).encode((key, value))
    assert len(untyped) == len(typed) + 2          # FastPrimitivesCoder: a type tag per component
    assert kv_coder(typing.Tuple[bytes, bytes]).encode((key, b"n" * 26)) == bytes([8]) + key + b"n" * 26
