"""Document-level near-duplicate removal: MinHash LSH + distributed connected components.

texts -> signatures (vectorised, batched per worker; ``MinHashFeatures``) -> joined to the stubs
of the documents still in the running by row fingerprint -> one (band key, node) per band ->
GroupByKey per bucket -> a star from each bucket's minimum node to the other members (O(n) edges
for an n-document bucket, not O(n^2)) -> optional verification of each candidate pair by
estimated or exact Jaccard (two joins on node id, no side inputs) -> connected components ->
in each component the minimum node is kept.  Node ids sort by the keep policy (highest quality,
newest fetch_date, smallest doc_id), so the component minimum is the document to keep.
Only stubs, signatures and node ids are shuffled, never texts.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
import numpy as np
from apache_beam import pvalue

from filters.dedup.minhash import (MinHasher, band_keys, check_lsh_params, estimated_jaccard,
                                   signature_from_bytes, signature_to_bytes)
from filters.dedup.policy import REASON_DUP_ID, REASON_MINHASH, first_two, node_doc_id
from filters.dedup.text import jaccard, normalized_bytes, shingle_hashes
from pipelines.dedup.common import by_row, count, first_tagged, removed, tagged, with_fields
from pipelines.dedup.components import ConnectedComponents, star

VERIFY_MODES = ("none", "estimated", "exact")


class Signatures(beam.DoFn):
    """Batches of (fp, text) -> (fp, (band keys, verification feature)); (fp, None) for a text
    without shingles."""

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
            yield fp, (band_keys(sig, self.bands, self.rows), feature)


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


class _AttachSignature(beam.DoFn):
    """(fp, [("feat", (priority, f)), ("stub", s), ...]) -> (node, stub), bands and features of
    each stub, from the feature of the highest priority (that of the current text)."""

    def process(self, element):
        _, values = element
        feat, found = None, None
        for tag, value in values:
            if tag == "feat" and (found is None or value[0] > found):
                found, feat = value
        for tag, stub in values:
            if tag != "stub":
                continue
            node = stub["node"]
            yield node, stub
            if feat is None:
                yield pvalue.TaggedOutput("stats", ("minhash_docs_without_shingles", 1))
                continue
            keys, feature = feat
            for key in keys:
                yield pvalue.TaggedOutput("bands", (key, node))
            if feature is not None:
                yield pvalue.TaggedOutput("features", (node, feature))


def _bucket_star(element):
    _, nodes = element
    first, second = first_two(nodes)
    if second is None:
        return
    yield from star(nodes, min(nodes))


def _attach_first(element):
    """(a, [("feature", fa), ("edge", b), ...]) -> (b, (a, fa)) for every edge.

    A GroupByKey over tagged values read in two passes instead of CoGroupByKey, which collects
    each key's values into lists: a star centre can have one edge per member of a huge bucket.
    """
    a, values = element
    feature = first_tagged(values, "feature")
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
        fb = first_tagged(values, "feature")
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
        stub = first
        if second is not None:
            rows = sorted(stubs, key=lambda s: s["fp"])  # rows with one doc_id: normally exactly one
            stub = rows[0]
            for dup in rows[1:]:
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
            kept_id = node_doc_id(root)
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
                stubs | "KeyStubByRow" >> beam.Map(by_row))
               | "FlattenSignatures" >> beam.Flatten()
               | "JoinSignatures" >> beam.GroupByKey()
               | "AttachSignatures" >> beam.ParDo(_AttachSignature())
               .with_outputs("bands", "features", "stats", main="docs"))
        candidates = (sig.bands
                      | "GroupByBand" >> beam.GroupByKey()
                      | "BucketStars" >> beam.FlatMap(_bucket_star)
                      | "DistinctPairs" >> beam.Distinct())
        stats = [sig.stats, candidates | "CountCandidates" >> beam.Map(count("minhash_candidate_pairs"))]
        edges = candidates
        if cfg["verify"] != "none":
            features = sig.features | "TagFeature" >> beam.Map(tagged("feature"))
            pending = ((features, candidates | "TagEdge" >> beam.Map(tagged("edge")))
                       | "FlattenFirst" >> beam.Flatten()
                       | "JoinFirst" >> beam.GroupByKey()
                       | "AttachFirst" >> beam.FlatMap(_attach_first))
            verified = ((features, pending | "TagPending" >> beam.Map(tagged("pending")))
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
