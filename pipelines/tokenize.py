"""The tokenize stage: documents in Parquet -> Megatron indexed-dataset shards + manifest.json.

Graph::

    parquet files --Reshuffle--> ReadDocs (doc id, seeded hash h, split from h)
        --Reshuffle--> BatchElements --> Encode (encode_batch, + <|endoftext|>, tokens as bytes)
        encoded --(split -> docs, tokens)--> CombinePerKey --> totals per split (tiny)
        encoded --bucket = h mod ceil(tokens / shard_tokens) [totals as side input]-->
            GroupByKey(split, bucket) --> sort by h --> _staging/<split>-b<bucket>.bin/.idx
        all shard metadata + totals + drop counts --> Finalize: rename staged shards to
            contiguous <split>-NNNNN names, copy tokenizer.json, write manifest.json last

No worker ever holds more than one shard's documents.  Tokens, not text, cross the big shuffle
(about half the bytes).  Every placement decision is a function of the document hash, so the bytes
of every output are independent of worker count and bundle order.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import posixpath
import re
import time
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import outputs
from pipelines.inputs import iter_documents
from pipelines.inputs import list_inputs
from pipelines.config import load_config
from pipelines.runner import is_local, make_options, new_pipeline
from pipelines.schema import row_doc_id
from pipelines.writers import WriteDeadLettersFn, dead_letter
from pipelines.tokenize_cli import (load_stage_tokenizer, print_summary, resolve_settings,  # noqa: F401
                                    stage_manifest_config, stage_summary)
from tokenization import manifest as mf
from tokenization.encoding import DEFAULT_MAX_CHARS, encode_documents
from tokenization.indexed import dtype_for_vocab, write_indexed
from tokenization.shards import assign_bucket, buckets_for, doc_hash, shard_name, split_of, split_sizes
from tokenization.tokenizer import tokenizer_meta

log = logging.getLogger("pipelines.tokenize")

REJECTED = "rejected"
STAGING = "_staging"
SHARD_FILE_RE = re.compile(r"^(train|val)-\d{5}\.(bin|idx)$")


# ---------------------------------------------------------------------------------------- files
class BeamFileSystem:
    """tokenization's filesystem interfaces (indexed writing; ``iter_parquet_docs`` reading) over
    Beam's FileSystems (local, gs://, s3://)."""

    def open_input_file(self, path: str):
        from apache_beam.io.filesystems import CompressionTypes, FileSystems

        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def create(self, path: str):
        from apache_beam.io.filesystems import CompressionTypes, FileSystems

        return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def rename(self, src: str, dst: str) -> None:
        from apache_beam.io.filesystems import FileSystems

        if FileSystems.exists(dst):
            FileSystems.delete([dst])
        FileSystems.rename([src], [dst])

    def delete(self, path: str) -> None:
        from apache_beam.io.filesystems import FileSystems

        if FileSystems.exists(path):
            FileSystems.delete([path])


def _file_stem(path: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", posixpath.basename(path.rstrip("/")))[:80] or "input"
    return f"{base}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


# ---------------------------------------------------------------------------------------- DoFns
def _rejected(path: str, row: int | None, reason: str, detail: str = "", doc_id: str | None = None):
    return beam.pvalue.TaggedOutput(REJECTED, (path, dead_letter("tokenize", reason, detail[:500], file=path,
                                                                 row=row, doc_id=doc_id)))


# The reader's problems under the reasons this stage has always reported.
PROBLEM_REASONS = {"missing_columns": "missing_text_column", "unreadable_file": "unreadable_parquet",
                   "corrupt_file": "unreadable_parquet"}


class ReadDocsFn(beam.DoFn):
    """One Parquet file -> (split, h, doc_id, text); unusable rows/files go to the rejected output."""

    def __init__(self, seed: int, val_fraction: float, max_chars: int, batch_rows: int = 2048):
        self.seed = seed
        self.val_fraction = val_fraction
        self.max_chars = max_chars
        self.batch_rows = batch_rows
        self.docs = Metrics.counter("tokenize", "documents_read")
        self.bad = Metrics.counter("tokenize", "documents_rejected")

    def process(self, path: str) -> Iterable[Any]:
        from tokenization.encoding import text_problem

        for kind, value in iter_documents(path, self.batch_rows):
            if kind == "problem":  # a file that cannot be read (further) is one dead letter
                self.bad.inc()
                yield _rejected(path, value.row, PROBLEM_REASONS.get(value.reason, value.reason), value.detail)
                continue
            row, doc_id, url, text = value
            problem = text_problem(text, self.max_chars)
            if problem:
                self.bad.inc()
                yield _rejected(path, row, *problem, doc_id=doc_id)
                continue
            did = row_doc_id(doc_id, url, text)
            h = doc_hash(self.seed, did)
            self.docs.inc()
            yield split_of(h, self.val_fraction), h, did, text


class EncodeFn(beam.DoFn):
    """A batch of documents -> (split, h, doc_id, tokens as shard-dtype bytes, text bytes).

    The tokenizer is either fixed when the graph is built or, when ``tokenizer_json`` is None, the
    side input of the same name (a tokenizer trained earlier in the same job).  No tokenizer call
    gets more than ``chunk_chars`` characters (tokenization/encoding.py)."""

    def __init__(self, tokenizer_json: str | None, vocab_size: int, parallelism: bool,
                 chunk_chars: int = DEFAULT_MAX_CHARS):
        self.tokenizer_json = tokenizer_json
        self.vocab_size = vocab_size
        self.parallelism = parallelism
        self.chunk_chars = chunk_chars
        self.tok = None
        self.tokens = Metrics.counter("tokenize", "tokens")

    def setup(self) -> None:
        # Set before the first encode so HF's thread pool follows the config.
        os.environ["TOKENIZERS_PARALLELISM"] = "true" if self.parallelism else "false"
        self.dtype = dtype_for_vocab(self.vocab_size).newbyteorder("<")
        if self.tokenizer_json is not None:
            self._load(self.tokenizer_json)

    def _load(self, tokenizer_json: str) -> None:
        from tokenization.tokenizer import eot_id, tokenizer_from_json

        self.tok = tokenizer_from_json(tokenizer_json)
        self.eot = eot_id(self.tok)

    def process(self, batch: list, tokenizer_json: str | None = None) -> Iterable[Any]:
        if self.tok is None:
            self._load(tokenizer_json)
        encoded = encode_documents(self.tok, [d[3] for d in batch], eot=self.eot, dtype=self.dtype,
                                   max_chars=self.chunk_chars)
        for (split, h, doc_id, text), ids in zip(batch, encoded):
            self.tokens.inc(len(ids))
            yield split, h, doc_id, ids.tobytes(), len(text.encode("utf-8"))


class SumTuples(beam.CombineFn):
    def create_accumulator(self):
        return (0, 0, 0)

    def add_input(self, acc, x):
        return tuple(a + b for a, b in zip(acc, x))

    def merge_accumulators(self, accs):
        out = (0, 0, 0)
        for acc in accs:
            out = tuple(a + b for a, b in zip(out, acc))
        return out

    def extract_output(self, acc):
        return acc


class WriteShardFn(beam.DoFn):
    """All documents of one (split, bucket) -> staged .bin/.idx; yields the shard's metadata."""

    def __init__(self, output: str, vocab_size: int):
        self.output = output
        self.vocab_size = vocab_size
        self.bytes_written = Metrics.counter("tokenize", "shard_bytes")

    def process(self, element) -> Iterable[dict]:
        (split, bucket), docs = element
        docs = sorted(docs)  # (h, doc_id, tokens): the shuffle order, ties fully resolved
        staged = outputs.join(self.output, STAGING, f"{split}-b{bucket:05d}")
        info = write_indexed(staged, (d[2] for d in docs), self.vocab_size, fs=BeamFileSystem())
        self.bytes_written.inc(info["tokens"] * dtype_for_vocab(self.vocab_size).itemsize)
        yield {"split": split, "bucket": bucket, "staged": staged, **info}


def WriteRejectedFn(output: str) -> WriteDeadLettersFn:  # noqa: N802 - the DoFn it always was
    """(input path, dead letters) -> ``dead-letter/<input file stem>.jsonl`` (the one format)."""
    return WriteDeadLettersFn(output, "dead-letter", _file_stem, "tokenize")


class FinalizeFn(beam.DoFn):
    """Runs once after every shard is staged: final names, tokenizer copy, manifest last.

    ``dtype_vocab`` is the vocabulary size the shards were written for (it fixes the dtype); a
    tokenizer trained in the same job arrives as the ``tokenizer_json`` side input."""

    def __init__(self, output: str, tokenizer_json: str | None, source: str, dtype_vocab: int,
                 manifest_config: Mapping[str, Any], shard_tokens: int):
        self.output = output
        self.tokenizer_json = tokenizer_json
        self.source = source
        self.dtype_vocab = dtype_vocab
        self.manifest_config = dict(manifest_config)
        self.shard_tokens = shard_tokens

    def process(self, _, shards, totals, outcome_counts, rejected_files, input_files, tokenizer_json=None):
        from apache_beam.io.filesystems import FileSystems

        tokenizer_json = self.tokenizer_json if self.tokenizer_json is not None else tokenizer_json

        fs = BeamFileSystem()
        entries, keep = [], set()
        for split in mf.SPLITS:
            staged = sorted((s for s in shards if s["split"] == split), key=lambda s: s["bucket"])
            for i, s in enumerate(staged):
                name = shard_name(split, i)
                for ext in (".bin", ".idx"):  # .bin first: an .idx never names missing data
                    fs.rename(s["staged"] + ext, outputs.join(self.output, name + ext))
                    keep.add(name + ext)
                entries.append({"file": name, "split": split, **{k: s[k] for k in mf.SHARD_FIELDS}})
        # Shards of an earlier, larger run in the same directory would otherwise linger.
        for split in mf.SPLITS:
            for m in FileSystems.match([outputs.join(self.output, f"{split}-*")])[0].metadata_list:
                base = posixpath.basename(m.path)
                if SHARD_FILE_RE.match(base) and base not in keep:
                    FileSystems.delete([m.path])
        staging = outputs.join(self.output, STAGING)
        leftovers = FileSystems.match([outputs.join(staging, "*")])[0].metadata_list
        if leftovers:  # temporary files of retried bundles
            FileSystems.delete([m.path for m in leftovers])
        if "://" not in staging and os.path.isdir(staging):
            os.rmdir(staging)

        tok_bytes = tokenizer_json.encode("utf-8")
        outputs.write_bytes_atomic(outputs.join(self.output, mf.TOKENIZER_NAME), tok_bytes)
        tokenizer = {**tokenizer_meta(tokenizer_json, self.source), "file": mf.TOKENIZER_NAME,
                     "sha256": mf.sha256_bytes(tok_bytes)}
        counts = dict(outcome_counts)
        plan = {split: {"buckets": buckets_for(totals[split][1], self.shard_tokens),
                        "text_bytes": totals[split][2]} for split in sorted(totals)}
        extra = {"input": {"files": input_files,
                           "documents_read": sum(t[0] for t in totals.values()),
                           "rejected": dict(sorted(counts.items())),
                           "dead_letter_files": sorted(rejected_files)},
                 "plan": plan}
        manifest = mf.build_manifest(tokenizer=tokenizer, dtype=dtype_for_vocab(self.dtype_vocab).name,
                                     shards=entries, config=self.manifest_config, extra=extra)
        outputs.write_bytes_atomic(outputs.join(self.output, mf.MANIFEST_NAME), mf.manifest_json(manifest))
        yield manifest


# ---------------------------------------------------------------------------------------- graph
class Tokenize(beam.PTransform):
    """Parquet paths -> shard metadata dicts, per-split totals, rejected rows.

    ``tokenizer`` is the tokenizer JSON, or a PCollection holding it (trained in the same job);
    ``vocab_size`` fixes the token dtype (for a trained tokenizer: the configured target size)."""

    def __init__(self, output: str, settings: Mapping[str, Any], tokenizer, vocab_size: int):
        super().__init__()
        self.output = output
        self.s = dict(settings)
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size

    def expand(self, paths):
        s = self.s
        read = (paths
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadDocs" >> beam.ParDo(ReadDocsFn(s["seed"], s["val_fraction"], s["max_document_chars"]))
                .with_outputs(REJECTED, main="docs"))
        docs = read.docs
        if s["reshuffle_docs"]:
            docs = docs | "SpreadDocs" >> beam.Reshuffle()
        encoded = (docs
                   | "Batch" >> beam.BatchElements(min_batch_size=s["encode_batch_docs"],
                                                   max_batch_size=s["encode_batch_docs"])
                   | "Encode" >> beam.ParDo(EncodeFn(*_tokenizer_args(self.tokenizer), self.vocab_size,
                                                     s["tokenizers_parallelism"], s["encode_chunk_chars"]),
                                            **_tokenizer_side(self.tokenizer)))
        totals = (encoded
                  | "SplitSizes" >> beam.Map(split_sizes, itemsize=_itemsize(self.vocab_size))
                  | "SumSplits" >> beam.CombinePerKey(SumTuples())
                  | "TotalsDict" >> beam.combiners.ToDict())
        shards = (encoded
                  | "AssignShard" >> beam.Map(assign_bucket, totals=beam.pvalue.AsSingleton(totals),
                                              shard_tokens=s["shard_tokens"])
                  | "GroupShards" >> beam.GroupByKey()
                  | "WriteShards" >> beam.ParDo(WriteShardFn(self.output, self.vocab_size)))
        return shards, totals, read[REJECTED]


def _itemsize(vocab_size: int) -> int:
    return dtype_for_vocab(vocab_size).itemsize


def _tokenizer_args(tokenizer) -> tuple:
    return (None,) if isinstance(tokenizer, beam.PCollection) else (tokenizer,)


def _tokenizer_side(tokenizer) -> dict:
    if isinstance(tokenizer, beam.PCollection):
        return {"tokenizer_json": beam.pvalue.AsSingleton(tokenizer)}
    return {}


class WriteSummaryFn(beam.DoFn):
    def __init__(self, output: str, input_desc: str, final_output: str | None = None):
        self.output = output
        self.input_desc = input_desc
        self.final_output = final_output or output

    def process(self, manifest):
        summary = stage_summary(manifest, self.input_desc, self.final_output)
        outputs.write_json(outputs.join(self.output, "summary.json"), summary)
        yield summary


def build(pipeline, inputs, output: str, settings: Mapping[str, Any], tokenizer, vocab_size: int,
          source: str, manifest_config: Mapping[str, Any], final_output: str | None = None) -> dict:
    """The tokenize graph.  ``inputs``: Parquet paths, or a PCollection of them (written earlier in
    the same job); ``tokenizer``: its JSON, or a single-element PCollection of it.  Returns
    ``{"summary": PCollection[dict]}``; manifest.json and summary.json are written last.
    ``final_output``: where a staged ``output`` is moved at commit (named in summary.json)."""
    paths = inputs if isinstance(inputs, beam.PCollection) else pipeline | "Inputs" >> beam.Create(inputs)
    input_count = paths | "CountInputs" >> beam.combiners.Count.Globally()
    shards, totals, rejected = paths | "Tokenize" >> Tokenize(output, settings, tokenizer, vocab_size)
    rejected_files = (rejected | "GroupRejected" >> beam.GroupByKey()
                      | "WriteRejected" >> beam.ParDo(WriteRejectedFn(output)))
    outcome_counts = (rejected | "Reasons" >> beam.Map(lambda kv: kv[1]["reason"])
                      | "CountReasons" >> beam.combiners.Count.PerElement())
    manifest = (pipeline
                | "FinalizeTrigger" >> beam.Create([None])
                | "Finalize" >> beam.ParDo(
                    FinalizeFn(output, *_tokenizer_args(tokenizer), source, vocab_size, manifest_config,
                               settings["shard_tokens"]),
                    shards=beam.pvalue.AsList(shards),
                    totals=beam.pvalue.AsSingleton(totals),
                    outcome_counts=beam.pvalue.AsList(outcome_counts),
                    rejected_files=beam.pvalue.AsList(rejected_files),
                    input_files=beam.pvalue.AsSingleton(input_count),
                    **_tokenizer_side(tokenizer)))
    summary = manifest | "WriteSummary" >> beam.ParDo(WriteSummaryFn(output, manifest_config.get("input", ""),
                                                                       final_output))
    return {"summary": summary}


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True,
                        help="Parquet documents (need a 'text' column): comma list of folders (their top-level "
                             "*.parquet), files and globs; local, gs:// or s3://")
    parser.add_argument("--tokenizer", required=True,
                        help="tokenizer.json, or a tiktoken-format BPE file (base64 token + rank per line)")
    parser.add_argument("--output", required=True, help="shards directory (local, gs:// or s3://)")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="fraction of documents in the validation split (config tokenize.val_fraction)")
    parser.add_argument("--shard-tokens", type=int, default=None,
                        help="target tokens per shard (config tokenize.shard_tokens)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the shuffle/split hash (config tokenize.seed)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the shards of an earlier run in --output (else refuse)")


# What a tokenize run writes (outputs.StageOutput clears and lists these).
STAGE_OUTPUTS = (mf.MANIFEST_NAME, mf.TOKENIZER_NAME, "train-*", "val-*", "summary.json", "dead-letter/*.jsonl",
                 f"{STAGING}/*")


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    from tokenization.tokenizer import tokenizer_json, vocab_size

    cfg = load_config(args.config)
    s = resolve_settings(args, cfg)
    outputs.check_io(args.output, {"--input": args.input, "--tokenizer": args.tokenizer})
    tok = load_stage_tokenizer(args.tokenizer, s)
    paths = list_inputs(args.input)
    options = make_options(beam_args)
    tok_json = tokenizer_json(tok)
    manifest_config = stage_manifest_config(s, cfg, args.input)
    where = "locally" if is_local(options) else "on the configured runner"
    log.info("tokenize: %d input file(s) -> %s, running %s", len(paths), args.output, where)
    started = time.monotonic()
    def job(target):   # a staging folder; outputs.run_stage moves its files into args.output
        with new_pipeline(beam_args) as pipeline:
            build(pipeline, paths, target, s, tok_json, vocab_size(tok), posixpath.basename(args.tokenizer),
                  manifest_config, final_output=args.output)
        # Both are written by the job; parsing the manifest checks it is complete.
        mf.parse_manifest(outputs_read_bytes(outputs.join(target, mf.MANIFEST_NAME)),
                          outputs.join(target, mf.MANIFEST_NAME))

    summary = outputs.run_stage(args, "tokenize", STAGE_OUTPUTS, job)
    print_summary(summary, args.output, time.monotonic() - started)
    return summary


def outputs_read_bytes(path: str) -> bytes:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read()
