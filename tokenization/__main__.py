"""``python -m tokenization``: train or convert a tokenizer; inspect or verify a shards directory."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from tokenization.manifest import ManifestError
from tokenization.indexed import IndexedDatasetError


class UsageError(ValueError):
    """A bad command-line value; the message names the option."""


def _load_cfg(path: str | None) -> dict:
    from settings import load_config  # YAML only, no Beam, no pipelines

    return load_config(path)["tokenize"]


def _write_text_atomic(path: str, text: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def cmd_train(args) -> int:
    from tokenization.tokenizer import EOT_TOKEN, MIN_VOCAB_SIZE, eot_id, sample_texts, train_bpe

    cfg = _load_cfg(args.config)["train"]
    vocab = args.vocab_size if args.vocab_size is not None else cfg["vocab_size"]
    sample = args.sample_docs if args.sample_docs is not None else cfg["sample_docs"]
    seed = args.seed if args.seed is not None else _load_cfg(args.config)["seed"]
    min_freq = args.min_frequency if args.min_frequency is not None else cfg["min_frequency"]
    if vocab < MIN_VOCAB_SIZE:
        raise UsageError(f"--vocab-size must be at least {MIN_VOCAB_SIZE} (256 bytes + {EOT_TOKEN}), got {vocab}")
    if sample is not None and sample < 1:
        raise UsageError(f"--sample-docs must be positive, got {sample}")
    if min_freq < 1:
        raise UsageError(f"--min-frequency must be positive, got {min_freq}")
    if os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a directory; give a file name such as tokenizer.json")
    try:
        texts = sample_texts(args.input, sample, seed)
        counted = {"docs": 0, "bytes": 0}

        def counting():
            for t in texts:
                counted["docs"] += 1
                counted["bytes"] += len(t.encode("utf-8"))
                yield t

        started = time.monotonic()
        tok = train_bpe(counting(), vocab, min_frequency=min_freq)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if counted["docs"] == 0:
        raise UsageError(f"--input {args.input}: no documents with text to train on")
    _write_text_atomic(args.out, tok.to_str(pretty=True))
    print(f"trained byte-level BPE: vocab {tok.get_vocab_size()} ({EOT_TOKEN} = {eot_id(tok)}) on "
          f"{counted['docs']} documents / {counted['bytes'] / 1e6:.1f} MB (seed {seed}) in "
          f"{time.monotonic() - started:.1f}s -> {args.out}")
    return 0


def cmd_convert(args) -> int:
    from tokenization.tokenizer import EOT_TOKEN, eot_id, load_tokenizer_file

    if not os.path.isfile(args.tokenizer):
        raise UsageError(f"--tokenizer {args.tokenizer}: file not found")
    cfg = _load_cfg(args.config)
    tok = load_tokenizer_file(args.tokenizer, pattern=args.pattern or cfg["tiktoken_pattern"],
                              eot=args.eot_id if args.eot_id is not None else cfg["tiktoken_eot_id"])
    _write_text_atomic(args.out, tok.to_str(pretty=True))
    print(f"vocab {tok.get_vocab_size()} ({EOT_TOKEN} = {eot_id(tok)}) -> {args.out}")
    return 0


def cmd_inspect(args) -> int:
    from tokenization.shards import load_manifest, load_tokenizer, open_split

    manifest = load_manifest(args.shards)
    tok = load_tokenizer(args.shards)
    fmt = manifest.get("format", {})
    print(f"{args.shards}: {fmt.get('name')} ({fmt.get('dtype')}), tokenizer vocab "
          f"{manifest['tokenizer']['vocab_size']}, eot id {manifest['tokenizer']['eot_id']}")
    for split, info in manifest.get("splits", {}).items():
        print(f"  {split:<6}{info['documents']:>10} docs {info['tokens']:>14} tokens in {info['shards']} shard(s)")
    datasets = open_split(args.shards, args.split, verify=False)
    shown = 0
    for ds in datasets:
        for i in range(len(ds)):
            if shown >= args.docs:
                return 0
            ids = ds[i].tolist()
            text = tok.decode(ids, skip_special_tokens=False)
            print(f"--- {os.path.basename(ds.path_prefix)}[{i}] {len(ids)} tokens")
            print(text[:args.chars] + ("..." if len(text) > args.chars else ""))
            shown += 1
    return 0


def cmd_verify(args) -> int:
    from tokenization.shards import verify_shards

    try:
        result = verify_shards(args.shards)
    except (IndexedDatasetError, ManifestError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    for split, info in result["splits"].items():
        print(f"{split}: {info['shards']} shard(s), {info['documents']} docs, {info['tokens']} tokens: OK")
    return 0


def cmd_contamination(args) -> int:
    from settings import load_config  # YAML only, no Beam, no pipelines
    from tokenization.contamination import check_shards, format_report

    if args.ngram is not None and args.ngram < 1:
        raise UsageError("--ngram must be at least 1")
    report = check_shards(args.shards, args.text, load_config(args.config), args.ngram)
    print(format_report(report))
    return 1 if report["documents_hit"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tokenization", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")

    t = sub.add_parser("train-tokenizer", help="train a byte-level BPE on a deterministic sample of documents")
    t.add_argument("--input", required=True, help="directory of Parquet documents (needs a 'text' column)")
    t.add_argument("--vocab-size", type=int, default=None, help="vocabulary size incl. <|endoftext|>")
    t.add_argument("--out", required=True, help="where to write tokenizer.json")
    t.add_argument("--sample-docs", type=int, default=None,
                   help="train on this many documents, chosen by seeded hash (config tokenize.train.sample_docs)")
    t.add_argument("--seed", type=int, default=None, help="sample seed (config tokenize.seed)")
    t.add_argument("--min-frequency", type=int, default=None, help="least count of a pair to merge")
    t.add_argument("--config", help="YAML config overriding configs/defaults/*.yaml")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("convert", help="tiktoken BPE file (or tokenizer.json) -> tokenizer.json")
    c.add_argument("--tokenizer", required=True, help="tiktoken-format BPE file or tokenizer.json")
    c.add_argument("--out", required=True)
    c.add_argument("--pattern", default=None, help="pre-tokenizer regex or gpt2 / cl100k_base")
    c.add_argument("--eot-id", type=int, default=None, help="id of <|endoftext|> (default: after the last rank)")
    c.add_argument("--config")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("inspect", help="print a shards directory's manifest and decode its first documents")
    i.add_argument("shards")
    i.add_argument("--split", default="train")
    i.add_argument("--docs", type=int, default=3)
    i.add_argument("--chars", type=int, default=300)
    i.set_defaults(func=cmd_inspect)

    v = sub.add_parser("verify", help="check every shard (hashes, sizes, token ids < vocabulary) "
                           "against manifest.json (exit 2 on a problem)")
    v.add_argument("shards")
    v.set_defaults(func=cmd_verify)

    k = sub.add_parser("contamination", help="does an evaluation text occur in the shards? (exit 1 if it does)")
    k.add_argument("--shards", required=True, help="shards directory (manifest.json + tokenizer)")
    k.add_argument("--text", required=True, help="evaluation text: plain text (one passage per paragraph), JSONL or Parquet")
    k.add_argument("--ngram", type=int, default=None, help="words per n-gram (config decontamination.ngram, 13)")
    k.add_argument("--config", help="YAML config overriding configs/defaults/*.yaml")
    k.set_defaults(func=cmd_contamination)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (UsageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
