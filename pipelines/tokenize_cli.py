"""The tokenize stage's command-line side, Beam-free: settings from flags and config, the tokenizer
file, the stage summary and its printout.  ``pipelines.tokenize`` (the graph) and
``pipelines.all_stages`` use these; ``pipelines.tokenize`` re-exports them under their old names.

Contract: ``resolve_settings`` / ``load_stage_tokenizer`` raise ``CliError`` (one line, exit 2)
naming the flag or config key; nothing here touches the output directory.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from pipelines.cli import CliError
from settings import config_hash
from tokenization import manifest as mf


def resolve_settings(args, cfg: Mapping[str, Any]) -> dict:
    s = dict(cfg["tokenize"])
    for flag, key in (("val_fraction", "val_fraction"), ("shard_tokens", "shard_tokens"), ("seed", "seed")):
        value = getattr(args, flag, None)
        if value is not None:
            s[key] = value
    vf = s["val_fraction"]
    if not isinstance(vf, (int, float)) or not 0 <= vf < 1:
        raise CliError(f"--val-fraction must be in [0, 1), got {vf}")
    if not isinstance(s["shard_tokens"], int) or s["shard_tokens"] < 1:
        raise CliError(f"--shard-tokens must be a positive integer, got {s['shard_tokens']}")
    if not isinstance(s["seed"], int):
        raise CliError(f"--seed must be an integer, got {s['seed']!r}")
    for key, least in (("encode_batch_docs", 1), ("max_document_chars", 1), ("encode_chunk_chars", 2)):
        if not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < least:
            raise CliError(f"tokenize.{key} must be an integer >= {least}, got {s[key]!r}")
    return s


def stage_manifest_config(s: Mapping[str, Any], cfg: Mapping[str, Any], input_desc: str) -> dict:
    return {"seed": s["seed"], "val_fraction": s["val_fraction"], "shard_tokens": s["shard_tokens"],
            "config_sha256": config_hash(cfg["tokenize"]), "input": input_desc}


def load_stage_tokenizer(path: str, s: Mapping[str, Any]):
    from tokenization.tokenizer import TokenizerError, load_tokenizer_file

    if not os.path.isfile(path):
        raise CliError(f"--tokenizer {path}: file not found")
    try:
        return load_tokenizer_file(path, pattern=s["tiktoken_pattern"], eot=s["tiktoken_eot_id"])
    except (TokenizerError, ValueError) as exc:
        raise CliError(f"--tokenizer {path}: {exc}") from None


def stage_summary(manifest: Mapping[str, Any], input_desc: str, output: str) -> dict:
    return {"stage": "tokenize", "input": input_desc, "output": output,
            "input_files": manifest["input"]["files"], "splits": manifest["splits"],
            "documents_read": manifest["input"]["documents_read"],
            "rejected": manifest["input"]["rejected"],
            "tokenizer": manifest["tokenizer"], "dtype": manifest["format"]["dtype"]}


def print_summary(summary: Mapping[str, Any], output: str, seconds: float) -> None:
    lines = [f"tokenize: {summary['documents_read']} documents from {summary['input_files']} file(s) "
             f"in {seconds:.1f}s ({summary['dtype']} tokens, vocab {summary['tokenizer']['vocab_size']})"]
    for split, info in summary["splits"].items():
        lines.append(f"  {split:<6}{info['documents']:>10} docs {info['tokens']:>14} tokens "
                     f"in {info['shards']} shard(s)")
    rejected = sum(summary["rejected"].values())
    lines.append(f"  rejected {rejected}" + (f"  {summary['rejected']} (see {output}/dead-letter/)"
                                             if rejected else ""))
    lines.append(f"  shards:   {output}/{{train,val}}-NNNNN.bin/.idx")
    lines.append(f"  manifest: {output}/{mf.MANIFEST_NAME}")
    print("\n".join(lines))
