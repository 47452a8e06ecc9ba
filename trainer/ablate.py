"""Data ablation: train the same model on several pipeline variants and compare them.

    python -m trainer ablate --variant raw=out/raw/shards --variant full=out/full/shards \\
        --config configs/train/ablation-tiny.yaml --tokens 300000 --seeds 3 \\
        --eval wikitext=../shared/data/text/wikitext-2-test.txt --eval de=heldout-de.txt --out out/ablation

Contract:
* Every (variant, seed) run uses the same config, the same number of optimiser steps
  ``max_steps = tokens // tokens_per_step`` (so exactly the same token budget) and the same seeds
  (``config seed + i`` for i < K).  A variant with fewer training tokens than the budget is
  *repeated* (epochs > 1), one with more is *cut* (the run sees a random ``epochs`` share of it);
  windows are drawn by ``data.RandomWindows``.  Keep-best and early stopping are off: every run is
  judged on its final checkpoint, after the full budget.
* Each final checkpoint is evaluated on every ``--eval`` text: the text (UTF-8, at most
  ``--eval-bytes``, cut at a paragraph boundary) is tokenized with the variant's own tokenizer,
  ``<|endoftext|>`` is put in front so every token of the text is predicted, and
  ``bits_per_byte = total NLL (nats) / ln 2 / UTF-8 bytes of the text`` -- comparable across
  tokenizers -- together with the per-token loss and perplexity (tokenizer-dependent).
* The validation curve of each run is its loss on the first ``--eval`` text (``eval_windows``
  windows, every ``eval_interval`` steps), shown in bits per byte using that text's tokens/byte.
* Before training, every eval text is checked against every variant's shards (train and val) for
  shared word 13-grams (``tokenization.contamination.check_shards``, the decontamination code's
  normalisation); a hit is an error: evaluation text must be disjoint from the training data.
* Outputs: ``OUT/runs/<variant>/seed-<s>/`` (run directory + ``result.json``), ``OUT/results.json``,
  ``OUT/results.md`` and ``OUT/curves.svg`` (``ablate_report``).  Resuming: a run with a
  ``result.json`` is reused, one with only ``ckpt.pt`` continues from it; both only when their
  recorded settings match (else exit 2: use another ``--out``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# numpy/torch are imported where used: `python -m trainer --help` registers this parser cheaply

RESULT = "result.json"
SETTINGS = "ablate-run.json"


def parse_pairs(items, flag: str) -> dict[str, str]:
    """``NAME=PATH`` arguments -> {name: path}; names are unique and file-name safe."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise ValueError(f"{flag} {item!r}: expected NAME=PATH")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"{flag} {item!r}: NAME may hold only letters, digits, '.', '_', '-'")
        if name in out:
            raise ValueError(f"{flag} {name} is given twice")
        out[name] = path
    if not out:
        raise ValueError(f"give at least one {flag} NAME=PATH")
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Variant:
    name: str
    shards: Path
    tokenizer: dict           # vocab_size, eot_id, eot_token, sha256 (from the manifest)
    tokenizer_file: Path
    train_arrays: list
    train_tokens: int
    manifest_sha256: str


def open_variant(name: str, shards_dir: str) -> Variant:
    from tokenization.shards import load_manifest

    from .data import open_shards

    d = Path(shards_dir)
    if not (d / "manifest.json").is_file():
        raise FileNotFoundError(f"--variant {name}: {d} has no manifest.json (not a shards directory)")
    manifest = load_manifest(d)
    tok = manifest["tokenizer"]
    arrays = open_shards(d, "train")
    return Variant(name, d, {k: tok.get(k) for k in ("vocab_size", "eot_id", "eot_token", "sha256")},
                   d / tok["file"], arrays, int(sum(len(a) for a in arrays)), _sha256(d / "manifest.json"))


def read_eval_text(path: str, max_bytes: int | None) -> str:
    """The UTF-8 text of an eval file, cut to at most ``max_bytes`` at a paragraph (else line)
    boundary.  Not UTF-8 or empty: ValueError."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"--eval {path}: not UTF-8 ({err})") from None
    if max_bytes and len(raw) > max_bytes:
        head = raw[:max_bytes].decode("utf-8", errors="ignore")
        cut = head.rfind("\n\n")
        if cut < max_bytes // 2:
            cut = head.rfind("\n")
        text = head[:cut + 1] if cut > 0 else head
    if not text.strip():
        raise ValueError(f"--eval {path}: no text")
    return text


def encode_eval(text: str, tok, eot_id: int):
    """``<|endoftext|>`` + the text's tokens: every token of the text is then predicted once."""
    import numpy as np

    return np.asarray([eot_id] + tok.encode(text).ids, dtype=np.int64)


def bits_per_byte(model, ids, n_bytes: int, batch_size: int = 8, device="cpu") -> dict:
    """Total NLL of ``ids[1:]`` given their prefixes (non-overlapping windows of the model's
    context, ``data.eval_windows``), in bits per UTF-8 byte of the text, plus loss/perplexity."""
    from .data import eval_windows
    from .eval import nll_sum

    windows = eval_windows([ids], model.config.block_size)
    total, count = nll_sum(model, windows, batch_size, device)
    if count == 0:
        raise ValueError("eval text too short: nothing to predict")
    loss = total / count
    return {"bits_per_byte": total / math.log(2) / n_bytes, "loss": loss,
            "perplexity": math.exp(min(loss, 700)), "tokens": count, "bytes": n_bytes, "nll_nats": total}


def check_disjoint(variants: list[Variant], evals: dict[str, str]) -> list[dict]:
    """Every eval text against every variant (word 13-grams, see the module docstring)."""
    from settings import load_config  # YAML only, no Beam
    from tokenization.contamination import check_shards

    cfg = load_config(None)
    reports, dirty = [], []
    for ename, epath in evals.items():
        for v in variants:
            r = check_shards(str(v.shards), epath, cfg, examples=1)
            reports.append({"eval": ename, "variant": v.name, "ngram": r["ngram"], "ngrams": r["ngrams"],
                            "documents": r["documents"], "documents_hit": r["documents_hit"]})
            if r["documents_hit"]:
                ex = r["examples"][0] if r["examples"] else {}
                dirty.append(f"{ename} in {v.name}: {r['documents_hit']} document(s) share "
                             f"{r['ngram']}-grams, e.g. {ex.get('snippet', '')[:80]!r}")
    if dirty:
        raise ValueError("evaluation text overlaps the training data (decontaminate the variants, e.g. "
                         "refine --benchmark NAME=FILE): " + "; ".join(dirty))
    return reports


def _json(path: Path, obj) -> None:
    from . import checkpoint

    checkpoint.atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def run_one(cfg, v: Variant, seed: int, run_dir: Path, evals: dict[str, str], texts: dict[str, str],
            settings: dict, batch_size: int, log) -> dict:
    """Train (or resume, or reuse) one (variant, seed) run and evaluate its final checkpoint."""
    from tokenization.tokenizer import load_tokenizer_file

    from . import checkpoint
    from .train import train

    done = run_dir / RESULT
    if done.is_file():
        result = json.loads(done.read_text())
        if result.get("settings") != settings:
            raise ValueError(f"{run_dir} holds a run with other settings; use another --out")
        log(f"  {v.name} seed {seed}: done before, reused")
        return result
    resume = (run_dir / checkpoint.CKPT_NAME).is_file()
    if resume:
        old = json.loads((run_dir / SETTINGS).read_text()) if (run_dir / SETTINGS).is_file() else None
        if old != settings:
            raise ValueError(f"{run_dir} holds a run with other settings; use another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    _json(run_dir / SETTINGS, settings)
    tok = load_tokenizer_file(v.tokenizer_file)
    encoded = {n: encode_eval(t, tok, v.tokenizer["eot_id"]) for n, t in texts.items()}
    first = next(iter(evals))
    t0 = time.perf_counter()
    with (run_dir / "train.log").open("a") as f, contextlib.redirect_stdout(f):
        summary = train(cfg, run_dir, v.train_arrays, [encoded[first]], v.tokenizer, resume=resume,
                        tokenizer_file=v.tokenizer_file, progress=False,
                        overwrite=not resume)  # no ckpt.pt: what is there is an unfinished start
    import torch

    device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) \
        else "cpu"
    model, meta = checkpoint.load_model(run_dir / checkpoint.CKPT_NAME, device)
    scores = {n: bits_per_byte(model, encoded[n], len(texts[n].encode("utf-8")), batch_size, device)
              for n in evals}
    tpb = (len(encoded[first]) - 1) / len(texts[first].encode("utf-8"))
    curve = [[r["step"], r["val_loss"] * tpb / math.log(2)]
             for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
             if r.get("type") == "eval"]
    result = {"variant": v.name, "seed": seed, "steps": summary["step"], "tokens_seen": summary["tokens_seen"],
              "train_tokens": v.train_tokens, "epochs": summary["tokens_seen"] / v.train_tokens,
              "train_loss": summary.get("train_loss"), "evals": scores, "curve": curve,
              "train_seconds": time.perf_counter() - t0, "settings": settings}
    _json(done, result)
    log(f"  {v.name} seed {seed}: " + ", ".join(f"{n} {s['bits_per_byte']:.4f} bits/byte"
                                               for n, s in scores.items())
        + f" ({result['train_seconds']:.0f} s)")
    return result


def run_ablation(variants: dict[str, str], config: str, overrides, tokens: int, seeds: int,
                 evals: dict[str, str], out, eval_bytes: int | None = None, batch_size: int = 8,
                 log=print) -> dict:
    import dataclasses

    from . import ablate_report
    from .train import load_config

    if seeds < 1:
        raise ValueError("--seeds must be at least 1")
    out = Path(out)
    base = load_config(config, overrides)
    base = dataclasses.replace(base, keep_best=False, early_stop_patience=0)
    per_step = base.grad_accum * base.batch_size * base.block_size
    steps = tokens // per_step
    if steps < 1:
        raise ValueError(f"--tokens {tokens} is less than one step ({per_step} tokens: "
                         "grad_accum x batch_size x block_size)")
    for n, p in evals.items():
        if not Path(p).is_file():
            raise FileNotFoundError(f"--eval {n}: no file {p}")
    opened = [open_variant(n, p) for n, p in variants.items()]
    texts = {n: read_eval_text(p, eval_bytes) for n, p in evals.items()}
    log(f"ablation: {len(opened)} variant(s) x {seeds} seed(s), {steps} steps x {per_step:,} = "
        f"{steps * per_step:,} tokens each; checking eval texts against the training data")
    contamination = check_disjoint(opened, evals)
    eval_info = {n: {"path": str(evals[n]), "bytes": len(t.encode("utf-8")),
                     "sha256": hashlib.sha256(t.encode("utf-8")).hexdigest()} for n, t in texts.items()}
    results = []
    for i in range(seeds):  # seed-major: a stopped ablation has every variant at the same seeds
        seed = base.seed + i
        cfg = dataclasses.replace(base, max_steps=steps, seed=seed)
        for v in opened:
            settings = {"config": cfg.to_dict(), "variant_manifest_sha256": v.manifest_sha256,
                        "evals": eval_info}
            results.append(run_one(cfg, v, seed, out / "runs" / v.name / f"seed-{seed}", evals, texts,
                                   settings, batch_size, log))
    summary = ablate_report.summarize(results, opened, eval_info, base.to_dict(), steps, per_step,
                                      seeds, contamination)
    _json(out / "results.json", summary)
    (out / "results.md").write_text(ablate_report.markdown(summary))
    (out / "curves.svg").write_text(ablate_report.svg(results, list(evals)[0]))
    log(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'curves.svg'}")
    log(ablate_report.markdown(summary))
    return summary


def add_parser(sub) -> None:
    a = sub.add_parser("ablate", help="train the same model on pipeline variants and compare them")
    a.add_argument("--variant", action="append", required=True, metavar="NAME=SHARDS_DIR",
                   help="a tokenized-shards directory per variant (repeat)")
    a.add_argument("--config", required=True, help="training config, e.g. configs/train/ablation-tiny.yaml")
    a.add_argument("--tokens", type=int, required=True, help="training tokens per run (same for all)")
    a.add_argument("--seeds", type=int, default=3, help="runs per variant (seeds config.seed + i)")
    a.add_argument("--eval", action="append", required=True, metavar="NAME=TEXT_FILE",
                   help="UTF-8 evaluation text (repeat); the first one also gives the validation curves")
    a.add_argument("--eval-bytes", type=int, default=None,
                   help="use at most this many bytes of each eval text (cut at a paragraph)")
    a.add_argument("--out", required=True, help="output directory (resumable)")
    a.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def main(a) -> int:
    run_ablation(parse_pairs(a.variant, "--variant"), a.config, a.overrides, a.tokens, a.seeds,
                 parse_pairs(a.eval, "--eval"), a.out, a.eval_bytes)
    return 0


if __name__ == "__main__":
    sys.exit("use: python -m trainer ablate ...")
