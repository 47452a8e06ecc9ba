"""Training the BPE tokenizer inside a job (``pipelines all --tokenizer train``).

Graph::

    kept-document paths --Reshuffle--> HashDocs (seeded hash of each document id)
        --> Top.Smallest(sample_docs)  (per-bundle heaps of small tuples, merged: no big shuffle)
        --> wanted rows per file (side input)
    kept-document paths --Reshuffle--> ReadChosen (texts of the wanted rows)
        --> GroupByKey on one key --> Train (sorted by file and row, tokenizers' BPE trainer)
        --> OUTPUT/tokenizer.json, and the JSON as a one-element PCollection for the encoders

The sample is the same as ``python -m tokenization train-tokenizer`` picks on the same documents:
the ``sample_docs`` documents with the smallest seeded hash, fed in file and row order.  Only the
sample's texts cross the shuffle, and only the training step holds them (``sample_docs`` texts,
about 1 GB at the default 200,000).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import outputs
from pipelines.inputs import iter_documents
from pipelines.schema import row_doc_id


def training_docs(path: str) -> Iterable[tuple[int, str, str]]:
    """(row, doc id, text) of every row of one file with a non-empty text (``pipelines.inputs``
    reads it); a file that cannot be read fails the training step, naming the file.  The same rows
    and ids as ``tokenization.tokenizer.iter_parquet_docs`` gives the standalone trainer."""
    for kind, value in iter_documents(path):
        if kind == "problem":
            raise ValueError(f"{path}: cannot train on it: {value.reason} ({value.detail})")
        row, doc_id, url, text = value
        if isinstance(text, str) and text:
            yield row, row_doc_id(doc_id, url, text), text


class HashDocsFn(beam.DoFn):
    """One Parquet file -> (seeded hash, path, row) per document with text."""

    def __init__(self, seed: int):
        self.seed = seed

    def process(self, path: str) -> Iterable[tuple[bytes, str, int]]:
        from tokenization.shards import doc_hash

        for row, doc_id, _ in training_docs(path):
            yield doc_hash(self.seed, doc_id), path, row


def wanted_rows(chosen: Iterable[tuple[bytes, str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for _, path, row in chosen:
        out.setdefault(path, []).append(row)
    return {path: sorted(rows) for path, rows in out.items()}


class ReadChosenFn(beam.DoFn):
    """One Parquet file -> ((path, row), text) for the sampled rows (every row when ``wanted`` is
    None, i.e. ``sample_docs: null``)."""

    def __init__(self):
        self.docs = Metrics.counter("tokenizer_training", "sample_documents")

    def process(self, path: str, wanted):
        rows = None if wanted is None else set(wanted.get(path, ()))
        if rows is not None and not rows:
            return
        for row, _, text in training_docs(path):
            if rows is None or row in rows:
                self.docs.inc()
                yield (path, row), text


class TrainFn(beam.DoFn):
    """All sampled texts (one key) -> tokenizer JSON, also written to ``out_path``."""

    def __init__(self, train_cfg: Mapping[str, Any], out_path: str, where: str):
        self.cfg = dict(train_cfg)
        self.out_path = out_path
        self.where = where

    def process(self, element) -> Iterable[str]:
        from tokenization.tokenizer import train_bpe

        _, docs = element
        docs = sorted(d for d in docs if d is not None)
        if not docs:
            raise ValueError(f"--tokenizer train: no documents with text in {self.where}")
        tok = train_bpe((text for _, text in docs), self.cfg["vocab_size"], min_frequency=self.cfg["min_frequency"])
        data = tok.to_str(pretty=True)
        outputs.write_bytes_atomic(self.out_path, data.encode("utf-8"))
        yield data


class TrainTokenizer(beam.PTransform):
    """Parquet paths -> a one-element PCollection holding the trained tokenizer's JSON."""

    def __init__(self, tokenize_cfg: Mapping[str, Any], out_path: str, where: str):
        super().__init__()
        self.train = dict(tokenize_cfg["train"])
        self.seed = int(tokenize_cfg["seed"])
        self.out_path = out_path
        self.where = where

    def expand(self, paths):
        pipeline = paths.pipeline
        sample_docs = self.train["sample_docs"]
        if sample_docs is None:
            wanted = pipeline | "AllRows" >> beam.Create([None])
        else:
            wanted = (paths
                      | "SpreadHashFiles" >> beam.Reshuffle()
                      | "HashDocs" >> beam.ParDo(HashDocsFn(self.seed))
                      | "SmallestHashes" >> beam.combiners.Top.Smallest(int(sample_docs))
                      | "WantedRows" >> beam.Map(wanted_rows))
        sample = (paths
                  | "SpreadSampleFiles" >> beam.Reshuffle()
                  | "ReadSample" >> beam.ParDo(ReadChosenFn(), wanted=beam.pvalue.AsSingleton(wanted))
                  | "OneKey" >> beam.Map(lambda kv: (0, kv)))
        # The marker makes the training step run (and fail clearly) even with no documents at all.
        marker = pipeline | "Marker" >> beam.Create([(0, None)])
        return ((sample, marker)
                | "WithMarker" >> beam.Flatten()
                | "Gather" >> beam.GroupByKey()
                | "Train" >> beam.ParDo(TrainFn(self.train, self.out_path, self.where)))
