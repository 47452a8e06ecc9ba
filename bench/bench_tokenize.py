"""Encoding and shard-writing throughput of the tokenize stage (prints figures; asserts nothing).

    python bench/bench_tokenize.py [--tokenizer tokenizer.json] [--input DIR_OF_PARQUET]
                                   [--vocab-size 32000] [--repeat 3] [--stage]

Text comes from ``--input`` (Parquet with a ``text`` column, e.g. the extract stage's output on
the realweb WARC) or else from the shared WikiText-2 and Shakespeare files, cut into documents.
Per-core figures are CPU seconds of this single process with HF tokenizers' thread pool off
(the pipeline runs one worker process per core, so that is what one core delivers).  ``--stage``
also runs the whole Beam stage on the local runner and reports wall-clock throughput.
"""
from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # before tokenizers is imported

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokenization.indexed import IndexedDataset, dtype_for_vocab, write_indexed  # noqa: E402
from tokenization.manifest import sha256_file  # noqa: E402
from tokenization.tokenizer import eot_id, load_tokenizer_file, train_bpe  # noqa: E402


def shared_dir() -> Path:
    return Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_docs(input_dir: str | None) -> list[str]:
    if input_dir:
        from tokenization.tokenizer import list_parquet, iter_parquet_docs

        fs, files = list_parquet(input_dir)
        return [t for f in files for _, _, t in iter_parquet_docs(fs, f)]
    docs = []
    for name in ("wikitext-2-valid.txt", "wikitext-2-test.txt", "tinyshakespeare.txt"):
        path = shared_dir() / "text" / name
        if not path.exists():
            sys.exit(f"missing {path}; set CORPUS_SHARED_DATA or pass --input")
        paras = path.read_text(encoding="utf-8").split("\n\n")
        # ~4 KB documents, roughly the size of an extracted web page
        cur, size = [], 0
        for p in paras:
            cur.append(p)
            size += len(p)
            if size > 4000:
                docs.append("\n\n".join(cur))
                cur, size = [], 0
        if cur:
            docs.append("\n\n".join(cur))
    return docs


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def report(name, nbytes, ntokens, wall, cpu):
    print(f"  {name:<34} {nbytes / 1e6 / cpu:8.2f} MB/s/core {ntokens / cpu / 1e6:8.3f} Mtok/s/core"
          f"   (wall {wall:.2f}s, cpu {cpu:.2f}s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", help="tokenizer.json or tiktoken file (default: train one on the text)")
    ap.add_argument("--input", help="Parquet directory to take text from")
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the text per measurement")
    ap.add_argument("--batch", type=int, default=256, help="documents per encode_batch call")
    ap.add_argument("--stage", action="store_true", help="also time the whole Beam stage")
    ap.add_argument("--stage-scale", type=int, default=10,
                    help="with --stage: repeat the text this many times (distinct urls) for the stage run")
    args = ap.parse_args()

    docs = load_docs(args.input)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    print(f"text: {len(docs)} documents, {nbytes / 1e6:.2f} MB; cores available: {os.cpu_count()}")
    if args.tokenizer:
        tok = load_tokenizer_file(args.tokenizer)
        print(f"tokenizer: {args.tokenizer}")
    else:
        tok, wall, cpu = timed(lambda: train_bpe(docs, args.vocab_size))
        print(f"tokenizer: trained byte-level BPE, vocab {tok.get_vocab_size()}, on {nbytes / 1e6:.2f} MB "
              f"in {wall:.1f}s wall")
    eot = eot_id(tok)
    dtype = dtype_for_vocab(tok.get_vocab_size())
    tok.encode(docs[0])  # warm-up

    print(f"encoding ({args.repeat} passes, thread pool off = one core):")
    def one_at_a_time():
        n = 0
        for _ in range(args.repeat):
            for d in docs:
                n += len(tok.encode(d, add_special_tokens=False).ids)
        return n
    n, wall, cpu = timed(one_at_a_time)
    report("encode() one at a time", nbytes * args.repeat, n, wall, cpu)

    def batched(fast: bool):
        def run():
            n = 0
            enc = tok.encode_batch_fast if fast else tok.encode_batch
            for _ in range(args.repeat):
                for i in range(0, len(docs), args.batch):
                    n += sum(len(e.ids) for e in enc(docs[i:i + args.batch], add_special_tokens=False))
            return n
        return run
    n, wall, cpu = timed(batched(False))
    report("encode_batch()", nbytes * args.repeat, n, wall, cpu)
    n, wall, cpu = timed(batched(True))
    report("encode_batch_fast()", nbytes * args.repeat, n, wall, cpu)

    def stage_work():
        # What EncodeFn does per batch: encode, append <|endoftext|>, pack to shard-dtype bytes.
        out = []
        for i in range(0, len(docs), args.batch):
            for e in tok.encode_batch_fast(docs[i:i + args.batch], add_special_tokens=False):
                ids = e.ids
                ids.append(eot)
                out.append(np.asarray(ids, dtype=dtype).tobytes())
        return out
    packed, wall, cpu = timed(stage_work)
    ntok = sum(len(p) for p in packed) // dtype.itemsize
    report("EncodeFn work (+eot, to bytes)", nbytes, ntok, wall, cpu)
    print(f"  tokens per byte of text: {ntok / nbytes:.3f} ({nbytes / ntok:.2f} bytes/token)")

    # Shard writing/reading: the same documents repeated to a shard of realistic size.
    reps = max(1, int(200e6 // max(1, sum(len(p) for p in packed))))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "train-00000")
        stream = (p for _ in range(reps) for p in packed)
        info, wall, cpu = timed(lambda: write_indexed(prefix, stream, tok.get_vocab_size()))
        size = os.path.getsize(prefix + ".bin") + os.path.getsize(prefix + ".idx")
        print(f"shard write: {info['documents']} docs, {info['tokens'] / 1e6:.1f} M tokens, {size / 1e6:.0f} MB "
              f"in {wall:.2f}s wall = {size / 1e6 / wall:.0f} MB/s ({info['tokens'] / 1e6 / wall:.0f} Mtok/s), "
              f"incl. sha256")
        ds, wall, _ = timed(lambda: IndexedDataset(prefix))
        print(f"shard open (index checks): {wall * 1e3:.1f} ms")
        _, wall, _ = timed(lambda: sha256_file(prefix + ".bin"))
        print(f"shard verify (sha256 of .bin): {size / 1e6 / wall:.0f} MB/s")
        rng = np.random.default_rng(0)
        picks = rng.integers(0, len(ds), 20000)
        total, wall, _ = timed(lambda: sum(int(ds[int(i)][0]) for i in picks))
        print(f"random document access: {len(picks) / wall / 1e3:.0f} k docs/s")

    if args.stage:
        bench_stage(docs * args.stage_scale, tok, nbytes * args.stage_scale)


def bench_stage(docs, tok, nbytes) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp, "in")
        inp.mkdir()
        half = len(docs) // 2
        for k, part in enumerate((docs[:half], docs[half:])):
            pq.write_table(pa.table({"url": [f"https://bench/{k}/{i}" for i in range(len(part))], "text": part}),
                           inp / f"part-{k}.parquet")
        tok_path = Path(tmp, "tokenizer.json")
        tok_path.write_text(tok.to_str())
        start = time.perf_counter()
        rc = cli_main(["tokenize", "--input", str(inp), "--tokenizer", str(tok_path), "--output",
                       str(Path(tmp, "out")), "--shard-tokens", "2000000"])
        wall = time.perf_counter() - start
        cores = len(os.sched_getaffinity(0))
        print(f"whole Beam stage (local runner, {cores} workers, incl. start-up): rc={rc}, {nbytes / 1e6:.1f} MB "
              f"in {wall:.1f}s wall = {nbytes / 1e6 / wall:.2f} MB/s ({nbytes / 1e6 / wall / cores:.2f} MB/s/core)")


if __name__ == "__main__":
    main()
