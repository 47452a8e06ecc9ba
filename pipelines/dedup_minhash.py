"""Document-level near-duplicate removal: MinHash LSH + distributed connected components.

docs -> signatures (vectorised, batched per worker) -> one (band key, node) per band ->
GroupByKey per bucket -> a star from each bucket's minimum node to the other members (O(n) edges
for an n-document bucket, not O(n^2)) -> optional verification of each candidate pair by
estimated or exact Jaccard (two joins on node id, no side inputs) -> connected components ->
in each component the minimum node is kept.  Node ids sort by the keep policy (highest quality,
newest fetch_date, smallest doc_id), so the component minimum is the document to keep.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
import numpy as np
from apache_beam import pvalue

from filters.dedup_text import jaccard, normalized_bytes, shingle_hashes
from filters.minhash import (MinHasher, band_keys, check_lsh_params, estimated_jaccard,
                             signature_from_bytes, signature_to_bytes)
from pipelines.connected_components import ConnectedComponents
from pipelines.dedup_common import (REASON_DUP_ID, REASON_MINHASH, fingerprint, first_two, node_doc_id,
                                    node_key, removed)

VERIFY_MODES = ("none", "estimated", "exact")


class _Signatures(beam.DoFn):
    def __init__(self, cfg: Mapping[str, Any], quality_column: str | None):
        self.ngram = int(cfg["ngram"])
        self.bands = int(cfg["bands"])
        self.rows = int(cfg["rows"])
        self.seed = int(cfg["seed"])
        self.verify = cfg["verify"]
        self.quality_column = quality_column

    def setup(self):
        self.hasher = MinHasher(self.bands * self.rows, self.seed)

    def process(self, batch):
        hashes = [shingle_hashes(normalized_bytes(d["text"]), self.ngram) for d in batch]
        sigs = self.hasher.signatures(hashes)
        for doc, hv, sig in zip(batch, hashes, sigs):
            node = node_key(doc, self.quality_column)
            yield node, doc
            if sig is None:
                yield pvalue.TaggedOutput("stats", ("minhash_docs_without_shingles", 1))
                continue
            for key in band_keys(sig, self.bands, self.rows):
                yield pvalue.TaggedOutput("bands", (key, node))
            if self.verify == "estimated":
                yield pvalue.TaggedOutput("features", (node, signature_to_bytes(sig)))
            elif self.verify == "exact":
                yield pvalue.TaggedOutput("features", (node, np.unique(hv).astype("<u8").tobytes()))


def _bucket_star(element):
    _, nodes = element
    first, second = first_two(nodes)
    if second is None:
        return
    m = None
    for node in nodes:
        if m is None or node < m:
            m = node
    for node in nodes:
        if node != m:
            yield m, node


def _tagged(tag):
    return lambda kv: (kv[0], (tag, kv[1]))


def _feature_of(values):
    for tag, value in values:
        if tag == "feature":
            return value
    return None


def _attach_first(element):
    """(a, [("feature", fa), ("edge", b), ...]) -> (b, (a, fa)) for every edge.

    A GroupByKey over tagged values read in two passes instead of CoGroupByKey, which collects
    each key's values into lists: a star centre can have one edge per member of a huge bucket.
    """
    a, values = element
    feature = _feature_of(values)
    if feature is None:
        return
    for tag, b in values:
        if tag == "edge":
            yield b, (a, feature)


class _VerifyPairs(beam.DoFn):
    def __init__(self, mode: str, threshold: float):
        self.mode = mode
        self.threshold = threshold

    def similarity(self, fa: bytes, fb: bytes) -> float:
        if self.mode == "estimated":
            return estimated_jaccard(signature_from_bytes(fa), signature_from_bytes(fb))
        return jaccard(np.frombuffer(fa, dtype="<u8"), np.frombuffer(fb, dtype="<u8"))

    def process(self, element):
        b, values = element
        fb = _feature_of(values)
        if fb is None:
            return
        for tag, pair in values:
            if tag != "pending":
                continue
            a, fa = pair
            if self.similarity(fa, fb) >= self.threshold:
                yield a, b
            else:
                yield pvalue.TaggedOutput("stats", ("minhash_pairs_rejected", 1))


class _Decide(beam.DoFn):
    def process(self, element):
        node, groups = element
        docs = groups["doc"]
        first, second = first_two(docs)
        if first is None:
            return
        doc = first
        if second is not None:
            rows = sorted(docs, key=fingerprint)  # rows with one doc_id: normally exactly one
            doc = rows[0]
            for dup in rows[1:]:
                yield pvalue.TaggedOutput("removed", removed(dup, REASON_DUP_ID, dup["doc_id"]))
                yield pvalue.TaggedOutput("stats", ("duplicate_doc_id", 1))
        label = None
        for candidate in groups["label"]:
            label = candidate if label is None or candidate < label else label
        if label is None:
            yield dict(doc, dup_cluster_id=doc["doc_id"], dup_cluster_size=1)
            return
        root, size = label
        if root == node:
            yield dict(doc, dup_cluster_id=doc["doc_id"], dup_cluster_size=size)
        else:
            kept_id = node_doc_id(root)
            out = removed(doc, REASON_MINHASH, kept_id)
            out["dup_cluster_id"] = kept_id
            out["dup_cluster_size"] = size
            yield pvalue.TaggedOutput("removed", out)
            yield pvalue.TaggedOutput("stats", ("minhash_removed", 1))


def _count(name):
    return lambda _: (name, 1)


class DedupMinHash(beam.PTransform):
    """docs -> {"kept", "removed", "stats"}; kept docs get dup_cluster_id / dup_cluster_size."""

    def __init__(self, cfg: Mapping[str, Any], quality_column: str | None):
        super().__init__()
        self.cfg = dict(cfg)
        self.quality_column = quality_column
        bands, rows = int(cfg["bands"]), int(cfg["rows"])
        check_lsh_params(bands * rows, bands, rows)
        if int(cfg["ngram"]) < 1:
            raise ValueError(f"dedup.minhash.ngram must be >= 1, got {cfg['ngram']}")
        if cfg["verify"] not in VERIFY_MODES:
            raise ValueError(f"dedup.minhash.verify must be one of {', '.join(VERIFY_MODES)}, "
                             f"got {cfg['verify']!r}")
        if not 0.0 <= float(cfg["verify_threshold"]) <= 1.0:
            raise ValueError(f"dedup.minhash.verify_threshold must be in [0, 1], got {cfg['verify_threshold']}")

    def expand(self, docs):
        cfg = self.cfg
        sig = (docs
               | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=int(cfg["batch_docs"]))
               | "Signatures" >> beam.ParDo(_Signatures(cfg, self.quality_column))
               .with_outputs("bands", "features", "stats", main="docs"))
        candidates = (sig.bands
                      | "GroupByBand" >> beam.GroupByKey()
                      | "BucketStars" >> beam.FlatMap(_bucket_star)
                      | "DistinctPairs" >> beam.Distinct())
        stats = [sig.stats, candidates | "CountCandidates" >> beam.Map(_count("minhash_candidate_pairs"))]
        edges = candidates
        if cfg["verify"] != "none":
            features = sig.features | "TagFeature" >> beam.Map(_tagged("feature"))
            pending = ((features, candidates | "TagEdge" >> beam.Map(_tagged("edge")))
                       | "FlattenFirst" >> beam.Flatten()
                       | "JoinFirst" >> beam.GroupByKey()
                       | "AttachFirst" >> beam.FlatMap(_attach_first))
            verified = ((features, pending | "TagPending" >> beam.Map(_tagged("pending")))
                        | "FlattenSecond" >> beam.Flatten()
                        | "JoinSecond" >> beam.GroupByKey()
                        | "Verify" >> beam.ParDo(_VerifyPairs(cfg["verify"], float(cfg["verify_threshold"])))
                        .with_outputs("stats", main="edges"))
            edges = verified.edges
            stats.append(verified.stats)
        cc = edges | "Components" >> ConnectedComponents(int(cfg["max_cc_rounds"]))
        stats.append(cc["stats"])
        out = ({"doc": sig.docs, "label": cc["labels"]}
               | "JoinLabels" >> beam.CoGroupByKey()
               | "Decide" >> beam.ParDo(_Decide()).with_outputs("removed", "stats", main="kept"))
        stats.append(out.stats)
        return {"kept": out.kept, "removed": out.removed,
                "stats": tuple(stats) | "MinHashStats" >> beam.Flatten()}
