"""A giant near-duplicate cluster (10,000 copies) through the whole dedup stage."""
from __future__ import annotations

import argparse
import random

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import dedup

COPIES = 10_000


def _letters(i: int) -> str:
    return "".join(chr(97 + (i // 26 ** k) % 26) for k in range(4))  # no digits: they normalise to 0


def test_ten_thousand_near_copies_form_one_cluster(tmp_path):
    rng = random.Random(8)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 8))) for _ in range(500)]
    base = " ".join(rng.choice(vocab) for _ in range(60))
    rows = [dict(doc_id=f"g{i:05d}", url=f"https://mirror{i}.example/page",
                 text=f"{base} variant {_letters(i)} {_letters(i * 7 + 3)}") for i in range(COPIES)]
    # A few unrelated pages must stay out of the cluster.
    rows += [dict(doc_id=f"other{j}", url=f"https://other.example/{j}",
                  text=" ".join(rng.choice(vocab) for _ in range(60))) for j in range(5)]
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), inp / "giant.parquet")
    cfg = tmp_path / "cfg.yaml"
    # Lines would remove the shared text line by line; this test is about MinHash clusters.
    cfg.write_text("dedup:\n  lines:\n    enabled: false\n  output:\n    shards: 2\n")
    summary = dedup.run(argparse.Namespace(input=str(inp), output=str(tmp_path / "out"), config=str(cfg),
                                           shards=None), [], workers=2)
    kept = {}
    for f in (tmp_path / "out").glob("part-*.parquet"):
        kept.update({r["doc_id"]: r for r in pq.read_table(f, columns=["doc_id", "dup_cluster_size"]).to_pylist()})
    removed = []
    for f in (tmp_path / "out" / "removed").glob("part-*.parquet"):
        removed += pq.read_table(f, columns=["doc_id", "dedup_reason", "dup_kept_doc_id"]).to_pylist()
    assert summary["minhash"]["cc_converged"] is True
    assert summary["minhash"]["largest_cluster"] == COPIES
    assert sorted(kept) == ["g00000"] + [f"other{j}" for j in range(5)]
    assert kept["g00000"]["dup_cluster_size"] == COPIES
    assert len(removed) == COPIES - 1
    assert {(r["dedup_reason"], r["dup_kept_doc_id"]) for r in removed} == {("minhash", "g00000")}
    # Buckets became stars, not cliques: O(n) candidate pairs for the 10k bucket(s).
    assert summary["minhash"]["candidate_pairs"] < 14 * COPIES
