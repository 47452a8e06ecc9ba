"""filters.text_units.load_jieba: jieba's prefix dictionary from our array cache is the very dict
jieba builds itself, a stale or damaged cache is rebuilt (never trusted), and an unwritable cache
folder only costs jieba's own load."""
from __future__ import annotations

import logging

import numpy as np
import pytest

jieba = pytest.importorskip("jieba", reason="jieba (requirements.lock) is not installed")

from filters import array_cache, text_units  # noqa: E402

TEXT = "我们在北京大学学习中文分词。南京市长江大桥在一九六八年建成通车，全长六千七百米。"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """jieba's own tokenizer (its loader, no cache of ours; its own marshal cache in a fresh folder,
    since jieba trusts whatever /tmp/jieba.cache holds for the default dictionary)."""
    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    tok.tmp_dir = str(tmp_path_factory.mktemp("jieba"))
    tok.initialize()
    return tok


def _fresh(cache_dir):
    return text_units.load_jieba(jieba.Tokenizer(), cache_dir)


def _cache(tmp_path):
    return tmp_path / text_units.JIEBA_CACHE_NAME


def _assert_same(tok, reference):
    assert tok.initialized
    assert tok.total == reference.total
    assert tok.FREQ == reference.FREQ
    assert tok.lcut(TEXT) == reference.lcut(TEXT)


def test_cached_dictionary_is_jiebas_own(reference, tmp_path, monkeypatch):
    built = _fresh(tmp_path)                     # miss: jieba loads, we write the cache
    _assert_same(built, reference)
    assert _cache(tmp_path).is_file()
    for name in ("initialize", "gen_pfdict"):
        monkeypatch.setattr(jieba.Tokenizer, name, lambda *a, **k: pytest.fail("the cache was not used"))
    _assert_same(_fresh(tmp_path), reference)    # hit: no jieba load at all


def test_stale_cache_is_rebuilt(reference, tmp_path):
    _fresh(tmp_path)
    with np.load(_cache(tmp_path), allow_pickle=False) as npz:
        arrays = {n: npz[n] for n in npz.files if n not in ("key", "digest")}
    arrays["counts"] = arrays["counts"] * 2       # what an older dictionary might hold
    array_cache.write_arrays(_cache(tmp_path), "made-for-another-jieba", arrays)
    _assert_same(_fresh(tmp_path), reference)
    assert array_cache.read_arrays(_cache(tmp_path), text_units._jieba_cache_key(jieba.Tokenizer())) is not None


@pytest.mark.parametrize("damage", ["truncated", "tampered", "inconsistent"])
def test_damaged_cache_is_rebuilt_not_trusted(reference, tmp_path, damage):
    _fresh(tmp_path)
    path = _cache(tmp_path)
    key = text_units._jieba_cache_key(jieba.Tokenizer())
    with np.load(path, allow_pickle=False) as npz:
        arrays = {n: npz[n] for n in npz.files if n not in ("key", "digest")}
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "tampered":                    # right key, changed counts: the digest tells
        good = array_cache.arrays_digest(arrays)
        np.savez(path, **{**arrays, "counts": arrays["counts"] + 1}, key=np.array(key), digest=np.array(good))
    else:                                         # valid file, one count missing
        array_cache.write_arrays(path, key, {**arrays, "counts": arrays["counts"][:-1]})
    _assert_same(_fresh(tmp_path), reference)
    assert array_cache.read_arrays(path, key)["counts"].shape == arrays["counts"].shape   # good again


def test_unwritable_cache_folder_still_segments(reference, tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    _assert_same(_fresh(blocked / "sub"), reference)
