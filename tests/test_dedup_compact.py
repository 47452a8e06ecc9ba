"""Dedup's shuffles carry compact values: node ids as same-order bytes, no stub fields a step no
longer reads, markers instead of stubs in the joins with the rows, the second verification join
only the features an edge needs -- with the same decisions."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import execution

from filters.dedup.minhash import MinHasher, band_keys, signature_to_bytes
from filters.dedup.policy import node_doc_id, node_key
from filters.dedup.text import normalized_bytes, shingle_hashes
from pipelines.config import load_config
from pipelines.dedup import Deduplicate
from pipelines.dedup.common import compact_node, compact_node_doc_id, make_stub
from pipelines.dedup.minhash import unpack_band_keys
from pipelines.runner import new_pipeline

UTC = dt.timezone.utc


def _docs():
    qualities = [None, float("nan"), True, "high", 0.0, -0.0, 0.5, -3.25, 1e300, -1e300, float("inf"),
                 float("-inf"), 7]
    dates = [None, "not a date", dt.datetime(2024, 5, 1, tzinfo=UTC), dt.datetime(2024, 5, 1),
             dt.datetime(1900, 1, 1, tzinfo=UTC), dt.date(2030, 1, 2), "2024-05-01T00:00:00Z", 0, -5,
             float("nan"), 10 ** 30]
    ids = ["", "a", "ab", "b", "311b353db1b6618d", "311b353db1b6618e", "Z", "\u00e9", "\u4e2d\u6587",
           "\ud800lone", "\ue000", "\U0001f600", "a\x00b"]
    rng = random.Random(5)
    return [{"doc_id": rng.choice(ids), "quality_score": rng.choice(qualities), "fetch_date": rng.choice(dates)}
            for _ in range(400)]


def test_compact_node_sorts_like_the_node_string_and_keeps_the_doc_id():
    nodes = sorted({node_key(d, "quality_score") for d in _docs()} | {node_key(d, None) for d in _docs()})
    assert len(nodes) > 100
    compact = {n: compact_node(n) for n in nodes}
    assert len(set(compact.values())) == len(nodes)                       # one-to-one
    for a, b in itertools.combinations(nodes, 2):                        # nodes are sorted: a < b
        assert compact[a] < compact[b], (a, b)
    for n in nodes:
        assert compact_node_doc_id(compact[n]) == node_doc_id(n)
        assert len(compact[n]) <= len(n.encode("utf-8", "surrogatepass")) - 16


def test_compact_node_refuses_a_string_that_is_not_a_node_key():
    with pytest.raises(ValueError):
        compact_node("2" + "0" * 33 + "doc")
    with pytest.raises(ValueError):
        compact_node("0" + "ABCDEF0123456789" + "1" + "0" * 16 + "doc")  # upper case would not sort


def test_stub_has_only_the_fields_of_the_steps_that_run():
    doc = {"doc_id": "d1", "url": "https://a.example/", "fetch_date": None, "quality_score": 0.5}
    full = make_stub(doc, "f" * 32, "quality_score")
    assert list(full) == ["fp", "doc_id", "url", "urank", "node", "add", "drops"]
    assert full["node"] == compact_node(node_key(doc, "quality_score"))
    assert list(make_stub(doc, "f" * 32, None, url=False, node=False)) == ["fp", "doc_id", "add", "drops"]


def test_packed_band_keys_unpack_to_the_band_keys():
    rng = np.random.default_rng(1)
    for bands, rows in ((14, 8), (20, 5), (1, 1)):
        sig = rng.integers(0, 2 ** 32, size=bands * rows, dtype=np.uint64)
        keys = band_keys(sig, bands, rows)
        assert unpack_band_keys(b"".join(keys), bands) == keys


# -------------------------------------------------------------------- what crosses the shuffles
def _words(rng, n):
    return " ".join("".join(rng.choices("abcdefghij", k=6)) for _ in range(n))


URL = "https://qqurlsentinelqq.example/page"


def _rows():
    rng = random.Random(11)
    shared = "Subscribe to the newsletter of the example gazette for weekly news"
    body = _words(rng, 120)
    edited = body.split()
    edited[5] = "zzzzzz"
    rows = [dict(doc_id="dup-a", url=URL, text=body, fetch_date=dt.datetime(2024, 1, 2, tzinfo=UTC),
                 quality_score=0.9),
            dict(doc_id="dup-b", url="https://b.example/", text=" ".join(edited),
                 fetch_date=dt.datetime(2024, 1, 3, tzinfo=UTC), quality_score=0.1),
            dict(doc_id="url-old", url=URL + "#top", text=_words(rng, 90),
                 fetch_date=dt.datetime(2023, 1, 1, tzinfo=UTC), quality_score=0.3),
            dict(doc_id="alone", url="https://alone.example/", text=_words(rng, 150),
                 fetch_date=dt.datetime(2024, 2, 2, tzinfo=UTC), quality_score=0.2)]
    rows += [dict(doc_id=f"line-{i}", url=f"https://lines.example/{i}", text=f"{shared}\n" + _words(rng, 60),
                  fetch_date=None, quality_score=None) for i in range(4)]
    return rows


def _signature(text, cfg):
    mh = cfg["dedup"]["minhash"]
    hasher = MinHasher(int(mh["bands"]) * int(mh["rows"]), int(mh["seed"]))
    return signature_to_bytes(hasher.signatures([shingle_hashes(normalized_bytes(text), int(mh["ngram"]))])[0])


def _run_spied(tmp_path, monkeypatch, needles):
    """Deduplicate on the in-process runner; -> (decisions by doc_id, stats, {needle: number of
    GroupByKey buffers whose encoded elements contain it})."""
    buffers = {name: set() for name in needles}
    append = execution.GroupingBuffer.append

    def spy(self, elements_data):
        for name, needle in needles.items():
            if needle in elements_data:
                buffers[name].add(id(self))
        return append(self, elements_data)

    monkeypatch.setattr(execution.GroupingBuffer, "append", spy)
    cfg = load_config()
    out = tmp_path / "out"
    p = new_pipeline(["--direct_running_mode=in_memory"], workers=1)
    result = p | beam.Create(_rows(), reshuffle=False) | Deduplicate(cfg)
    for name in ("kept", "removed", "stats"):
        (result[name] | f"Json{name}" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, default=str))
         | f"Write{name}" >> beam.io.WriteToText(str(out / name)))
    p.run().wait_until_finish()
    rows = {}
    for name in ("kept", "removed"):
        for f in out.glob(f"{name}*"):
            for line in f.read_text().splitlines():
                r = json.loads(line)
                rows[r["doc_id"]] = (r.get("dedup_reason"), r.get("dup_kept_doc_id"), r.get("dup_cluster_id"),
                                     r.get("dup_cluster_size"), r.get("dup_lines_removed"))
    stats = json.loads(next(out.glob("stats*")).read_text())
    return rows, stats, {name: len(ids) for name, ids in buffers.items()}


def test_shuffles_carry_no_stub_field_a_step_no_longer_reads(tmp_path, monkeypatch):
    cfg = load_config()
    rows = {r["doc_id"]: r for r in _rows()}
    node_a = node_key(rows["dup-a"], "quality_score")
    needles = {"url": URL.encode(), "urank": b"urank", "node_str": node_a[:34].encode(),
               "stub": b"drops", "sig_alone": _signature(rows["alone"]["text"], cfg),
               "sig_dup_b": _signature(rows["dup-b"]["text"], cfg)}
    got, stats, seen = _run_spied(tmp_path, monkeypatch, needles)
    # The decisions (what the existing dedup tests pin down, on one small corpus).
    assert got["url-old"][:2] == ("url", "dup-a")
    assert got["dup-b"][:4] == ("minhash", "dup-a", "dup-a", 2)
    assert got["dup-a"] == (None, None, "dup-a", 2, 0)
    assert got["alone"] == (None, None, "alone", 1, 0)
    assert got["line-0"][4] == 0 and all(got[f"line-{i}"][4] == 1 for i in (1, 2, 3))
    assert stats["minhash_candidate_pairs"] == 1 and stats["kept"] == 6
    # The URL crosses GroupByUrl (as its key) and the join back (in the row), no other shuffle;
    # "urank" only GroupByUrl; node ids never as their 34-character string; the stubs themselves
    # cross only GroupByUrl, JoinLabels, JoinDrops and the join back: JoinSignatures and
    # JoinLineKeys join the rows' signatures and line keys with markers (node, doc_id).
    assert seen["url"] == 2
    assert seen["urank"] == 1
    assert seen["node_str"] == 0
    assert seen["stub"] == 4, seen
    # A signature crosses JoinSignatures and JoinFirst; the second verification join only gets
    # the signatures of nodes an edge points to (dup-b, the larger node of the one pair).
    assert seen["sig_alone"] == 2
    assert seen["sig_dup_b"] == 3


def test_verification_feature_of_a_shared_node_does_not_depend_on_arrival_order():
    """Rows that share a doc_id (one node) can have different texts: the pair verification uses the
    node's smallest feature whatever order the grouped values arrive in (it used the first one, so
    1 and 2 workers could decide differently)."""
    from pipelines.dedup.minhash import _attach_first, _VerifyPairs

    feats = [("feature", np.array([5, 9, 12], "<u8").tobytes()), ("feature", np.array([1, 9], "<u8").tobytes())]
    rest = [("edge", b"n2"), ("target", None), ("edge", b"n3")]
    outs = {tuple(sorted(_attach_first((b"n1", list(order))), key=repr)) for order in itertools.permutations(feats + rest)}
    assert len(outs) == 1
    assert (b"n1", ("feature", min(v for _, v in feats))) in next(iter(outs))
    verify = _VerifyPairs("exact", 0.5)
    pending = [("pending", (b"n0", np.array([1, 9, 40], "<u8").tobytes()))]   # J=2/3 with [1, 9], 1/5 with [5, 9, 12]
    decided = {tuple(verify.process((b"n1", list(order)))) for order in itertools.permutations(feats + pending)}
    assert decided == {((b"n0", b"n1"),)}
