"""Rows cross the writers' GroupByKeys packed (pipelines.packed): exact round trips, half the
bytes on text, the same files as writing the plain rows, and a loud failure on a bad value."""
from __future__ import annotations

import math
import os
import pickle
import random

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import packed, refine_io, writers
from pipelines.packed import PackedValueError, pack, unpack

SCHEMA = pa.schema([("doc_id", pa.string()), ("url", pa.string()), ("text", pa.string()),
                    ("lang_score", pa.float64()), ("pii_redacted", pa.map_(pa.string(), pa.int32()))])


def _text(rng: random.Random, words: int) -> str:
    vocab = ["the", "Straße", "données", "東京", "😀", "line\n", "tab\t", "naïve", "x" * 12, "\u200b", "\x00"]
    return " ".join(rng.choice(vocab) for _ in range(words))


def _rows(n: int = 40, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = _text(rng, rng.randint(0, 900))
        out.append({"doc_id": f"{rng.getrandbits(64):016x}{i:04d}", "url": f"https://e{i}.example/ü?q={i}",
                    "text": text, "lang_score": rng.random() if i % 3 else None,
                    "pii_redacted": {"email": i} if i % 2 else None, "extra": [1, (2, b"\x00\xff")]})
    return out


@pytest.mark.parametrize("value", [
    None, 0, -1, 2 ** 70, 1.5, float("inf"), "", "a", "\ud800\udfff lone surrogates", b"", b"\x00" * 5000,
    {"b": 1, "a": 2}, ("row", ("fp", {"text": "y" * 3000, "n": None})), [set([1, 2]), frozenset()],
    {"text": "repetitive " * 10_000},
])
def test_unpack_gives_back_an_equal_value_of_the_same_type_and_key_order(value):
    back = unpack(pack(value))
    assert back == value and type(back) is type(value)
    if isinstance(value, dict):
        assert list(back) == list(value)
    assert pickle.dumps(back, protocol=5) == pickle.dumps(value, protocol=5)


def test_nan_survives():
    assert math.isnan(unpack(pack({"x": float("nan")}))["x"])


def test_text_rows_are_compressed_and_small_or_incompressible_values_stay_raw():
    big = {"text": "The quick brown fox jumps over the lazy dog. " * 200}
    data = pack(big)
    assert data[0] == packed.ZSTD
    assert len(data) < len(pickle.dumps(big, protocol=5)) / 4
    assert int.from_bytes(data[1:5], "little") == len(pickle.dumps(big, protocol=5))
    assert pack({"a": 1})[0] == packed.RAW                   # under MIN_COMPRESS: not worth a frame
    noise = os.urandom(20_000)
    assert pack(noise)[0] == packed.RAW                      # zstd would not make it smaller
    assert unpack(pack(noise)) == noise
    assert pack(big) == data                                 # the same value packs to the same bytes


@pytest.mark.parametrize("bad", [
    b"", b"\x07abc", b"\x01\x00", b"\x00not a pickle", "a str", None, 17,
])
def test_a_value_pack_did_not_make_raises_packed_value_error(bad):
    with pytest.raises(PackedValueError):
        unpack(bad)


def test_a_corrupted_or_truncated_frame_raises_packed_value_error():
    good = pack({"text": "hello world, " * 500, "n": 3})
    assert good[0] == packed.ZSTD
    size = int.from_bytes(good[1:5], "little")
    broken = [good[:-1], good[:10],
              good[:1] + (size + 1).to_bytes(4, "little") + good[5:],     # wrong length
              good[:1] + (size - 1).to_bytes(4, "little") + good[5:],
              good[:5] + bytes(len(good) - 5)]                           # frame zeroed
    for bad in broken:
        with pytest.raises(PackedValueError):
            unpack(bad)


def _expected_files(rows: list[dict], shards: int) -> dict[str, bytes]:
    """What the sharded writer must write, built without Beam, packing or the writer's DoFn."""
    by_shard: dict[int, list[dict]] = {}
    for r in rows:
        by_shard.setdefault(writers.shard_of(r["doc_id"], shards), []).append(r)
    names = set(SCHEMA.names)
    return {writers.part_name(i, shards, "sub"): writers.parquet_bytes(
        [{k: v for k, v in r.items() if k in names} for r in sorted(rs, key=lambda r: r["doc_id"])], SCHEMA)
        for i, rs in by_shard.items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_write_sharded_writes_the_plain_rows_files_and_moves_bytes(tmp_path, workers):
    from pipelines.runner import new_pipeline

    rows = _rows()
    pipeline = new_pipeline([], workers=workers)
    written = (pipeline | beam.Create(rows, reshuffle=False)
               | writers.WriteSharded(str(tmp_path), "sub", 3, SCHEMA, lambda r: r["doc_id"], label="T"))
    pipeline.run().wait_until_finish()
    got = {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted((tmp_path / "sub").glob("*.parquet"))}
    assert got == _expected_files(rows, 3)
    # what crosses the GroupByKey: (shard, bytes), so Beam uses its bytes coder
    group_input = written.producer.inputs[0].producer.inputs[0]
    coder = beam.coders.registry.get_coder(group_input.element_type)
    assert coder.is_kv_coder() and isinstance(coder.value_coder(), beam.coders.BytesCoder)


def test_the_writer_fails_loudly_on_a_bad_packed_row_and_writes_nothing(tmp_path):
    fn = writers.WriteShardFn(str(tmp_path), "", 1, SCHEMA, lambda r: r["doc_id"], packed=True)
    rows = [pack(r) for r in _rows(5)]
    rows.insert(2, rows[1][:-3])
    with pytest.raises(PackedValueError):
        list(fn.process((0, rows)))
    assert not list(tmp_path.rglob("*.parquet"))
    # the same rows unpacked fine give the plain rows' file
    list(fn.process((0, [pack(r) for r in _rows(5)])))
    plain = writers.WriteShardFn(str(tmp_path / "plain"), "", 1, SCHEMA, lambda r: r["doc_id"])
    list(plain.process((0, _rows(5))))
    assert (tmp_path / "part-00000-of-00001.parquet").read_bytes() == \
        (tmp_path / "plain" / "part-00000-of-00001.parquet").read_bytes()


class _Join:
    """A stand-in for dedup's JoinBack: stubs keep or remove the row they name by fp."""

    def apply_all(self, values):
        rows = {v[0]: v[1] for tag, v in values if tag == "row"}
        for tag, stub in values:
            if tag == "stub":
                yield rows[stub["fp"]], stub["gone"], [("seen", 1)]


def test_the_joined_writer_unpacks_every_value_and_fails_loudly_on_a_bad_one(tmp_path):
    rows = _rows(6)
    kept_schema = SCHEMA
    removed_schema = SCHEMA.append(pa.field("removed_by", pa.string()))
    fn = refine_io.JoinWriteShardFn(_Join(), lambda r: r, lambda r: dict(r, removed_by="dedup"), str(tmp_path), 1,
                                    kept_schema, removed_schema)
    codecs = refine_io.row_codecs(kept_schema, removed_schema)
    tag_row, tag_stub, tag_removed = (writers.packed_by_shard(t, 1, codecs.get(t)) for t in ("row", "stub", "removed"))
    values = ([tag_row((f"fp{i}", r))[1] for i, r in enumerate(rows[:4])]
              + [tag_stub({"fp": f"fp{i}", "gone": i == 3, "doc_id": rows[i]["doc_id"]})[1] for i in range(4)]
              + [tag_removed(dict(r, removed_by="filters"))[1] for r in rows[4:]])
    assert all(isinstance(v, bytes) for v in values)
    out = list(fn.process((0, values)))
    names = [o for o in out if isinstance(o, str)] + [o.value for o in out
                                                     if getattr(o, "tag", None) == refine_io.REMOVED]
    assert sorted(names) == ["part-00000-of-00001.parquet", "removed/part-00000-of-00001.parquet"]
    kept = pq.read_table(tmp_path / "part-00000-of-00001.parquet").to_pylist()
    removed = pq.read_table(tmp_path / "removed" / "part-00000-of-00001.parquet").to_pylist()
    assert [r["doc_id"] for r in kept] == sorted(r["doc_id"] for r in rows[:3])
    assert sorted(r["doc_id"] for r in removed) == sorted(r["doc_id"] for r in [rows[3], *rows[4:]])
    assert kept[0]["text"] == next(r for r in rows if r["doc_id"] == kept[0]["doc_id"])["text"]

    bad = values[:3] + [values[3][:-2]] + values[4:]
    with pytest.raises(PackedValueError):
        list(refine_io.JoinWriteShardFn(_Join(), lambda r: r, lambda r: r, str(tmp_path / "bad"), 1, kept_schema,
                                        removed_schema).process((0, bad)))
    assert not (tmp_path / "bad").exists()

    # a "row" value of the wrong shape fails loudly too
    for shape in (("row", ("fp0",)), ("row", ("fp0", 1, 2)), ("row", None), ("only-a-tag",)):
        with pytest.raises(PackedValueError):
            list(refine_io.JoinWriteShardFn(_Join(), lambda r: r, lambda r: r, str(tmp_path / "bad3"), 1,
                                            kept_schema, removed_schema).process((0, [pack(shape)] + values[1:])))
    assert not (tmp_path / "bad3").exists()
    # a row packed without the codec (a plain dict where an encoded row belongs) fails loudly too
    plain = writers.packed_by_shard("row", 1)((f"fp0", rows[0]))[1]
    with pytest.raises(PackedValueError):
        list(refine_io.JoinWriteShardFn(_Join(), lambda r: r, lambda r: r, str(tmp_path / "bad2"), 1, kept_schema,
                                        removed_schema).process((0, [plain] + values[1:])))
    assert not (tmp_path / "bad2").exists()


@pytest.mark.parametrize("row", [
    {}, {"doc_id": "a"}, {"text": None, "doc_id": "b"}, {"zz": 1, "doc_id": "c", "aa": [1, {"x": b"\x00"}]},
    {"url": "u", "text": "t" * 5000, "doc_id": "d", "lang_score": float("nan"), "pii_redacted": {"email": 2}},
])
def test_the_row_codec_gives_back_an_equal_row(row):
    codec = packed.RowCodec(SCHEMA.names)
    back = codec.decode(unpack(pack(codec.encode(row))))
    assert set(back) == set(row)
    for key, value in row.items():
        assert pickle.dumps(back[key], protocol=5) == pickle.dumps(value, protocol=5)
    assert list(back) == [n for n in SCHEMA.names if n in row] + [k for k in row if k not in SCHEMA.names]


def test_the_row_codec_leaves_the_key_names_out():
    codec = packed.RowCodec(SCHEMA.names)
    rows = _rows(50)
    assert sum(len(pack(codec.encode(r))) for r in rows) < sum(len(pack(r)) for r in rows) - 50 * 20


@pytest.mark.parametrize("bad", [None, 5, (), (1, 2), (1, (), None), (3, ("one",), None), ("1", (1,), None),
                                 (1, (1,), []), (1 << 40, tuple(range(1)), None), {"doc_id": "x"}, (-1, (), None),
                                 (1, (1,), {}), (1, (1,), {"doc_id": "shadows a schema name"})])
def test_the_row_codec_refuses_what_it_did_not_encode(bad):
    with pytest.raises(PackedValueError):
        packed.RowCodec(SCHEMA.names).decode(bad)


def test_the_row_codec_refuses_repeated_names():
    with pytest.raises(ValueError):
        packed.RowCodec(["a", "b", "a"])

