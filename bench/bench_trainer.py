"""Trainer throughput: training tokens/s and MFU, and sampling tokens/s with and without KV cache.

    python bench/bench_trainer.py                                  # tiny config on CPU
    python bench/bench_trainer.py --config configs/train/gpt2-124m.yaml --steps 20   # on a GPU

Random tokens stand in for the shards (throughput does not depend on the text).  The training step
is the one train.py runs: micro-batches with gradient accumulation, AdamW, clipping, bf16 autocast
and torch.compile on CUDA when the config says so.  MFU = tokens/s x FLOPs/token / peak, where the
peak is the GPU's data-sheet dense bf16 figure or, on CPU, an assumption printed with the result.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer import mfu  # noqa: E402
from trainer.data import RandomWindows  # noqa: E402
from trainer.model import GPT, flops_per_token  # noqa: E402
from trainer.sample import generate  # noqa: E402
from trainer.train import load_config, make_optimizer  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(cfg, vocab, device, steps, warmup):
    torch.manual_seed(0)
    model = GPT(cfg.model_config(vocab)).to(device)
    opt = make_optimizer(model, cfg, device)
    run = torch.compile(model) if cfg.compile else model
    dtype = torch.bfloat16 if device.type == "cuda" and cfg.dtype in ("auto", "bf16") else torch.float32
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 \
        else contextlib.nullcontext
    data = RandomWindows([np.random.default_rng(0).integers(0, vocab, 2_000_000, dtype=np.int32)],
                         cfg.block_size, seed=0)

    def step(i):
        for m in range(cfg.grad_accum):
            x, y = data.micro_batch(i, m, cfg.batch_size, cfg.grad_accum)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast():
                _, loss = run(x, y)
            (loss / cfg.grad_accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for i in range(warmup):  # compilation, allocator and thread-pool warm-up
        step(i)
    sync(device)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        loss = step(i)
    loss.item()
    sync(device)
    dt = time.perf_counter() - t0
    tokens = steps * cfg.grad_accum * cfg.batch_size * cfg.block_size
    counts = model.param_counts()
    fpt = flops_per_token(model.config, counts["non_embedding"])
    peak, src = mfu.peak_flops(device, cfg.peak_flops)
    tok_s = tokens / dt
    return model, {"tok_s": tok_s, "mfu": mfu.mfu(tok_s, fpt, peak), "peak": peak, "peak_src": src,
                   "fpt": fpt, "params": counts, "dtype": str(dtype).removeprefix("torch."),
                   "step_s": dt / steps}


def bench_sample(model, n_new, use_cache):
    model.eval()
    generate(model, [1, 2, 3], 4, temperature=0, use_cache=use_cache)
    t0 = time.perf_counter()
    out = generate(model, [1, 2, 3], n_new, temperature=0, use_cache=use_cache)
    sync(next(model.parameters()).device)
    return len(out) / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/train/tiny.yaml")
    p.add_argument("--vocab", type=int, default=0, help="tokenizer vocabulary (default: 32000, the "
                   "tokenize stage's default, for models under 768 wide, else 50257 like GPT-2)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--sample-tokens", type=int, default=0, help="default: the context length")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    a = p.parse_args()
    cfg = load_config(a.config, a.overrides)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    vocab = a.vocab or (50257 if cfg.n_embd >= 768 else 32000)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    elif cfg.threads:
        torch.set_num_threads(cfg.threads)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f", {torch.get_num_threads()} threads"))
    model, r = bench_train(cfg, vocab, device, a.steps, a.warmup)
    c = r["params"]
    print(f"config {a.config}: L={cfg.n_layer} d={cfg.n_embd} h={cfg.n_head} T={cfg.block_size} "
          f"V={model.config.vocab_size}; params total {c['total']:,}, non-embedding "
          f"{c['non_embedding']:,}; batch {cfg.batch_size}x{cfg.grad_accum}; dtype {r['dtype']}, "
          f"compile {cfg.compile}")
    print(f"train: {r['tok_s']:,.0f} tokens/s ({r['step_s'] * 1000:.1f} ms/step), "
          f"{r['fpt'] / 1e6:.2f} MFLOP/token, MFU {100 * r['mfu']:.1f}% of {r['peak'] / 1e12:.3f} "
          f"TFLOP/s ({r['peak_src']})")
    n = a.sample_tokens or cfg.block_size - 4
    cached = bench_sample(model, n, True)
    full = bench_sample(model, n, False)
    print(f"sample ({n} tokens, batch 1, greedy): {cached:,.0f} tokens/s with KV cache, "
          f"{full:,.0f} tokens/s recomputing ({cached / full:.1f}x)")


if __name__ == "__main__":
    main()
