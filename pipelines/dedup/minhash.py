"""Document-level near-duplicate removal: MinHash LSH + distributed connected components.

texts -> signatures (vectorised, batched per worker; ``MinHashFeatures``; the band keys of a
document packed into one bytes value) -> joined by row fingerprint to the node ids of the
documents still in the running (a marker per stub, not the stub) -> one (band key, node) per
band -> GroupByKey per bucket -> a star from each bucket's minimum node to the other members
(O(n) edges for an n-document bucket, not O(n^2)) -> optional verification of each candidate
pair by estimated or exact Jaccard (two joins on node id, no side inputs: the first carries
every feature, the second only those of the nodes some edge points to) -> connected components
-> in each component the minimum node is kept (the stubs, keyed by node, meet the component
labels; they leave the step without ``node``).  Node ids sort by the keep policy (highest
quality, newest fetch_date, smallest doc_id), so the component minimum is the document to keep.
Only stubs, signatures and node ids are shuffled, never texts.
"""
from __future__ import annotations

import typing
from typing import Any, Mapping

import apache_beam as beam
import numpy as np
from apache_beam import pvalue

from filters.dedup.minhash import (MinHasher, band_keys, check_lsh_params, estimated_jaccard,
                                   signature_from_bytes, signature_to_bytes)
from filters.dedup.policy import REASON_DUP_ID, REASON_MINHASH, first_two
from filters.dedup.text import jaccard, normalized_bytes, shingle_hashes
from pipelines.dedup.common import (compact_node_doc_id, count, removed, tagged, with_fields,
                                    without)
from pipelines.dedup.components import ConnectedComponents, star

VERIFY_MODES = ("none", "estimated", "exact")


class Signatures(beam.DoFn):
    """Batches of (fp, text) -> (fp, (band keys packed into one bytes value, verification
    feature)); (fp, None) for a text without shingles."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.ngram = int(cfg["ngram"])
        self.bands = int(cfg["bands"])
        self.rows = int(cfg["rows"])
        self.seed = int(cfg["seed"])
        self.verify = cfg["verify"]

    def setup(self):
        self.hasher = MinHasher(self.bands * self.rows, self.seed)

    def process(self, batch):
        hashes = [shingle_hashes(normalized_bytes(text), self.ngram) for _, text in batch]
        sigs = self.hasher.signatures(hashes)
        for (fp, _), hv, sig in zip(batch, hashes, sigs):
            if sig is None:
                yield fp, None
                continue
            feature = None
            if self.verify == "estimated":
                feature = signature_to_bytes(sig)
            elif self.verify == "exact":
                feature = np.unique(hv).astype("<u8").tobytes()
            yield fp, (b"".join(band_keys(sig, self.bands, self.rows)), feature)


class MinHashFeatures(beam.PTransform):
    """(fp, text) -> (fp, (priority, signature features)) for ``DedupMinHash``, which uses the
    highest priority one of a row (a text shortened by line dedup outranks the original)."""

    def __init__(self, cfg: Mapping[str, Any], priority: int = 0):
        super().__init__()
        self.cfg = cfg
        self.priority = priority

    def expand(self, texts):
        return (texts
                | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=int(self.cfg["batch_docs"]))
                | "Signatures" >> beam.ParDo(Signatures(self.cfg))
                | "Priority" >> beam.MapTuple(lambda fp, feat, p=self.priority: (fp, (p, feat))))


def _node_marker(stub):
    """stub -> (fp, ("node", node)): what the signature of its row is joined with."""
    return stub["fp"], ("node", stub["node"])


def _by_node(stub):
    return stub["node"], stub


def unpack_band_keys(packed: bytes, bands: int) -> list[bytes]:
    """``bands`` equal-width keys back out of ``b"".join(band_keys(...))``."""
    width = len(packed) // bands
    return [packed[i * width:(i + 1) * width] for i in range(bands)]


class _AttachSignature(beam.DoFn):
    """(fp, [("feat", (priority, f)), ("node", node), ...]) -> bands (band key, node), features
    (node, feature) of each node marker (one per stub of the row), from the feature of the
    highest priority (that of the current text)."""

    def __init__(self, bands: int):
        self.bands = bands

    def process(self, element):
        _, values = element
        feat, found = None, None
        for tag, value in values:
            if tag == "feat" and (found is None or value[0] > found):
                found, feat = value
        for tag, node in values:
            if tag != "node":
                continue
            if feat is None:
                yield pvalue.TaggedOutput("stats", ("minhash_docs_without_shingles", 1))
                continue
            packed, feature = feat
            for key in unpack_band_keys(packed, self.bands):
                yield key, node
            if feature is not None:
                yield pvalue.TaggedOutput("features", (node, feature))


def _bucket_star(element):
    _, nodes = element
    first, second = first_two(nodes)
    if second is None:
        return
    yield from star(nodes, min(nodes))


def _edge_and_target(edge):
    """(a, b) -> (a, ("edge", b)) and (b, ("target", None)): b's feature goes on to the second join."""
    a, b = edge
    yield a, ("edge", b)
    yield b, ("target", None)


def _attach_first(element):
    """(a, [("feature", fa), ("edge", b), ("target", None), ...]) -> (b, ("pending", (a, fa))) for
    every edge, and (a, ("feature", fa)) when some edge points to a (the second join needs no other
    feature).  ``fa`` is a's smallest feature: rows that share a node id (same doc_id, quality and
    fetch date) may have different texts, and the choice must not depend on the order values
    arrive in.

    A GroupByKey over tagged values read in two passes instead of CoGroupByKey, which collects
    each key's values into lists: a star centre can have one edge per member of a huge bucket.
    """
    a, values = element
    feature, targeted = None, False
    for tag, value in values:
        if tag == "feature" and (feature is None or value < feature):
            feature = value
        elif tag == "target":
            targeted = True
    if feature is None:
        return
    for tag, value in values:
        if tag == "edge":
            yield value, ("pending", (a, feature))
    if targeted:
        yield a, ("feature", feature)


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
        fb = min((value for tag, value in values if tag == "feature"), default=None)  # as _attach_first
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
        stubs = groups["doc"]
        first, second = first_two(stubs)
        if first is None:
            return
        if second is None:
            stub = without(first, "node")  # no later step reads it
        else:
            rows = sorted(stubs, key=lambda s: s["fp"])  # rows with one doc_id: normally exactly one
            stub = without(rows[0], "node")
            for dup in rows[1:]:
                dup = without(dup, "node")
                yield pvalue.TaggedOutput("removed", removed(dup, REASON_DUP_ID, dup["doc_id"]))
                yield pvalue.TaggedOutput("stats", ("duplicate_doc_id", 1))
        label = None
        for candidate in groups["label"]:
            label = candidate if label is None or candidate < label else label
        if label is None:
            yield with_fields(stub, dup_cluster_id=stub["doc_id"], dup_cluster_size=1)
            return
        root, size = label
        if root == node:
            yield with_fields(stub, dup_cluster_id=stub["doc_id"], dup_cluster_size=size)
        else:
            kept_id = compact_node_doc_id(root)
            yield pvalue.TaggedOutput("removed", removed(stub, REASON_MINHASH, kept_id,
                                                         dup_cluster_id=kept_id, dup_cluster_size=size))
            yield pvalue.TaggedOutput("stats", ("minhash_removed", 1))


class DedupMinHash(beam.PTransform):
    """(stubs, signature features (fp, (priority, features))) -> {"kept", "removed", "stats"};
    kept stubs get dup_cluster_id / dup_cluster_size."""

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

    def features(self, priority: int = 0) -> MinHashFeatures:
        return MinHashFeatures(self.cfg, priority)

    def expand(self, inputs):
        stubs, signatures = inputs
        cfg = self.cfg
        sig = ((signatures | "TagSignature" >> beam.Map(tagged("feat")),
                stubs | "NodeMarkerByRow" >> beam.Map(_node_marker))
               | "FlattenSignatures" >> beam.Flatten()
               | "JoinSignatures" >> beam.GroupByKey()
               | "AttachSignatures" >> beam.ParDo(_AttachSignature(int(cfg["bands"])))
               .with_output_types(typing.Tuple[bytes, bytes])
               .with_outputs("features", "stats", main="bands"))
        candidates = (sig.bands
                      | "GroupByBand" >> beam.GroupByKey()
                      | "BucketStars" >> beam.FlatMap(_bucket_star)
                      | "DistinctPairs" >> beam.Distinct())
        stats = [sig.stats, candidates | "CountCandidates" >> beam.Map(count("minhash_candidate_pairs"))]
        edges = candidates
        if cfg["verify"] != "none":
            features = sig.features | "TagFeature" >> beam.Map(tagged("feature"))
            pending = ((features, candidates | "TagEdge" >> beam.FlatMap(_edge_and_target))
                       | "FlattenFirst" >> beam.Flatten()
                       | "JoinFirst" >> beam.GroupByKey()
                       | "AttachFirst" >> beam.FlatMap(_attach_first))
            verified = (pending
                        | "JoinSecond" >> beam.GroupByKey()
                        | "Verify" >> beam.ParDo(_VerifyPairs(cfg["verify"], float(cfg["verify_threshold"])))
                        .with_outputs("stats", main="edges"))
            edges = verified.edges
            stats.append(verified.stats)
        cc = edges | "Components" >> ConnectedComponents(int(cfg["max_cc_rounds"]))
        stats.append(cc["stats"])
        out = ({"doc": stubs | "KeyStubByNode" >> beam.Map(_by_node), "label": cc["labels"]}
               | "JoinLabels" >> beam.CoGroupByKey()
               | "Decide" >> beam.ParDo(_Decide()).with_outputs("removed", "stats", main="kept"))
        stats.append(out.stats)
        return {"kept": out.kept, "removed": out.removed,
                "stats": tuple(stats) | "MinHashStats" >> beam.Flatten()}
