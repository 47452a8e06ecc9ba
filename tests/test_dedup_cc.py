"""Distributed connected components (large-star / small-star) on the local Beam runner."""
from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam

from pipelines.dedup.components import ConnectedComponents
from pipelines.runner import new_pipeline


def _run(edges, max_rounds, tmp_path: Path, workers=1):
    out = tmp_path / "cc"
    p = new_pipeline([], workers=workers)
    res = p | beam.Create(edges) | ConnectedComponents(max_rounds)
    (res["labels"] | "L" >> beam.Map(lambda kv: json.dumps(["L", kv[0], kv[1][0], kv[1][1]]))
     | "WL" >> beam.io.WriteToText(str(out / "labels")))
    (res["stats"] | "S" >> beam.Map(lambda kv: json.dumps(["S", kv[0], kv[1]]))
     | "WS" >> beam.io.WriteToText(str(out / "stats")))
    p.run().wait_until_finish()
    labels, stats = {}, {}
    for f in out.glob("*"):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if rec[0] == "L":
                _, node, root, size = rec
                labels[node] = min(labels.get(node, (root, size)), (root, size))
            else:
                stats[rec[1]] = max(stats.get(rec[1], 0), rec[2]) if rec[1].startswith("max_") else stats.get(rec[1], 0) + rec[2]
    return labels, stats


def _components(edges):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    comps = {}
    for node in list(parent):
        comps.setdefault(find(node), set()).add(node)
    return {node: (min(c), len(c)) for c in comps.values() for node in c}


def test_chains_stars_and_random_graph_match_union_find(tmp_path):
    rng = random.Random(4)
    ids = [f"n{rng.randrange(10**9):09d}" for _ in range(1200)]
    chain = [(ids[i], ids[i + 1]) for i in range(299)]                 # random-order chain of 300
    sorted_chain = [(f"s{i:05d}", f"s{i + 1:05d}") for i in range(150)]  # worst case ordering
    star = [(ids[300], x) for x in ids[301:500]] + [(x, ids[300]) for x in ids[301:320]]
    rnd = [(rng.choice(ids[500:1200]), rng.choice(ids[500:1200])) for _ in range(600)]
    edges = chain + sorted_chain + star + rnd + [("self", "self")]
    labels, stats = _run(edges, 12, tmp_path)
    expected = _components([e for e in edges if e[0] != e[1]])
    assert labels == expected
    assert stats.get("cc_unconverged_nodes", 0) == 0
    assert labels[ids[0]] == (min(ids[:300]), 300)  # A~B, B~C ... all in one cluster
    assert labels["s00150"] == ("s00000", 151)
    assert "self" not in labels


def test_round_bound_reports_nonconvergence_and_stays_safe(tmp_path):
    edges = [(f"s{i:05d}", f"s{i + 1:05d}") for i in range(400)]
    labels, stats = _run(edges, 2, tmp_path)
    assert stats["cc_unconverged_nodes"] > 0
    # Labels never cross components and never point to a larger node.
    assert all(root <= node and root.startswith("s") for node, (root, _) in labels.items())
    # Unconverged: the chain ends up in more than one cluster (under-merging, never over-merging).
    assert len({root for root, _ in labels.values()}) > 1
