"""Training loop: read it top to bottom, nanoGPT style.

    python -m trainer train --data SHARDS --config configs/train/tiny.yaml --out RUN [--resume] [k=v ...]
    torchrun --nproc_per_node 8 -m trainer train ...          # DDP: NCCL on GPU, gloo on CPU

One optimiser step = ``grad_accum`` micro-batches of ``batch_size`` windows, split over the ranks
(each rank runs grad_accum / world_size of them), so the global batch does not depend on the number
of processes.  The data of a step is a pure function of (seed, step): see ``data.py``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from . import best, checkpoint, mfu, scaling
from .config import TrainConfig, load_config  # noqa: F401  (re-exported: trainer.train.load_config)
from .rundir import MetricsLog, check_run_dir, start_run_dir
from .data import RandomWindows, eval_windows
from .eval import nll_sum
from .model import GPT, GPTConfig, flops_per_token


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` over warmup_steps, cosine decay to ``min_lr`` at lr_decay_steps."""
    decay_end = cfg.lr_decay_steps or cfg.max_steps
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if step >= decay_end:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, decay_end - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # weight decay on matrices (Linear weights, embeddings) only; biases and LayerNorm gains are
    # not decayed.  parameters() yields the tied embedding once.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(cfg: TrainConfig) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but CUDA is not available")
    if world == 1:
        return Dist(), torch.device("cuda" if want_cuda else "cpu")
    d = Dist(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), world)
    if want_cuda:
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return d, device


def _all_sum(values: list[float], d: Dist, device) -> list[float]:
    if d.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def train(cfg: TrainConfig, out_dir, train_arrays, val_arrays, tokenizer: dict,
          resume: bool = False, stop_after: int | None = None, tokenizer_file=None,
          progress: bool = True, overwrite: bool = False) -> dict:
    """Train (or resume) a run in ``out_dir``; returns the run summary.

    An ``out_dir`` that holds an earlier run needs ``resume`` or ``overwrite`` (see rundir.py).

    ``tokenizer``: {"vocab_size", "eot_id", "sha256", ...} from the shards manifest.
    ``stop_after``: end this invocation after that many completed steps (a job time limit); the
    run goes on with ``resume=True``.
    """
    out_dir = Path(out_dir)
    check_run_dir(out_dir, resume, overwrite)  # every rank, before any of them writes
    ddp, device = setup_distributed(cfg)
    threads = torch.get_num_threads()
    try:
        return _train(cfg, out_dir, train_arrays, val_arrays, tokenizer, resume, stop_after,
                      tokenizer_file, progress, ddp, device)
    finally:
        torch.set_num_threads(threads)
        if ddp.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg, out_dir, train_arrays, val_arrays, tokenizer, resume, stop_after, tokenizer_file,
           progress, ddp: Dist, device):
    log = print if ddp.main else (lambda *a, **k: None)
    if cfg.grad_accum % ddp.world:
        raise ValueError(f"grad_accum ({cfg.grad_accum}) must be a multiple of the number of "
                         f"processes ({ddp.world})")
    accum_per_rank = cfg.grad_accum // ddp.world
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    dtype = {"auto": torch.bfloat16 if device.type == "cuda" else torch.float32,
             "bf16": torch.bfloat16, "fp32": torch.float32}.get(cfg.dtype)
    if dtype is None:
        raise ValueError(f"dtype must be auto, bf16 or fp32, not {cfg.dtype!r}")
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for any fp32 matmul left outside autocast
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 \
        else contextlib.nullcontext

    # ---- data ---------------------------------------------------------------------------------
    train_data = RandomWindows(train_arrays, cfg.block_size, cfg.seed)
    val_windows = eval_windows(val_arrays, cfg.block_size, cfg.eval_windows) if val_arrays else []
    my_val = val_windows[ddp.rank::ddp.world]

    # ---- model, optimiser, state --------------------------------------------------------------
    state = checkpoint.load(out_dir) if resume else None
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model_cfg = cfg.model_config(tokenizer["vocab_size"])
    if state is not None:
        saved = GPTConfig.from_dict(state["model_args"])
        if dataclasses.replace(saved, dropout=model_cfg.dropout) != model_cfg:
            raise ValueError(f"config does not match the checkpoint's model: {saved} vs {model_cfg}")
        want = state.get("tokenizer", {}).get("sha256")
        if want and tokenizer.get("sha256") and want != tokenizer["sha256"]:
            raise ValueError("the data was tokenized with another tokenizer than the checkpoint's")
    model = GPT(model_cfg).to(device)
    optimizer = make_optimizer(model, cfg, device)
    start_step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
        checkpoint.set_rng_state(state["rng"])
        del state["model"], state["optimizer"]  # do not hold a host copy for the whole run
        log(f"resumed from {out_dir / checkpoint.CKPT_NAME} at step {start_step}")
    raw_model = model
    if cfg.compile:
        model = torch.compile(model)
    if ddp.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    counts = raw_model.param_counts()
    fpt = flops_per_token(model_cfg, counts["non_embedding"])
    peak, peak_src = mfu.peak_flops(device, cfg.peak_flops)
    tokens_per_step = cfg.grad_accum * cfg.batch_size * cfg.block_size
    log(f"parameters: total {counts['total']:,} | non-embedding {counts['non_embedding']:,} | "
        f"12*n_layer*d^2 = {counts['approx_12Ld2']:,}")
    log(f"device {device} ({ddp.world} process(es)), dtype {str(dtype).removeprefix('torch.')}, "
        f"compile={cfg.compile}; {tokens_per_step:,} tokens/step; MFU peak: {peak_src}")

    def evaluate() -> dict:
        total, count = nll_sum(raw_model, my_val, cfg.eval_batch_size, device, autocast)
        total, count = _all_sum([total, float(count)], ddp, device)
        loss = total / max(count, 1)
        return {"val_loss": loss, "val_ppl": math.exp(min(loss, 700)), "val_tokens": int(count)}

    # ---- run directory ------------------------------------------------------------------------
    metrics = None
    if ddp.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        removed = start_run_dir(out_dir, resume)
        if removed:
            log(f"removed from {out_dir}: {', '.join(removed)}")
        with (out_dir / "config.yaml").open("w") as f:
            yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
        if tokenizer_file is not None and Path(tokenizer_file).resolve() != \
                (out_dir / checkpoint.TOKENIZER_NAME).resolve():
            shutil.copyfile(tokenizer_file, out_dir / checkpoint.TOKENIZER_NAME)
        metrics = MetricsLog(out_dir, start_step if state is not None else None)

    def save_checkpoint(step: int, last_val: dict | None):
        if not ddp.main:
            return
        checkpoint.save(out_dir / checkpoint.CKPT_NAME, {
            "format": checkpoint.FORMAT,
            "model_args": model_cfg.to_dict(),
            "train_config": cfg.to_dict(),
            "tokenizer": dict(tokenizer),
            "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            # the LR schedule is a pure function of the step (lr_at); these are its inputs
            "scheduler": {"name": "warmup_cosine", "last_step": step, "lr": cfg.lr,
                          "min_lr": cfg.min_lr, "warmup_steps": cfg.warmup_steps,
                          "decay_steps": cfg.lr_decay_steps or cfg.max_steps},
            "data": {"seed": cfg.seed, "samples_seen": step * cfg.grad_accum * cfg.batch_size},
            "step": step,
            "tokens_seen": step * tokens_per_step,
            "val": last_val,
            "best": tracker.to_dict(),
            "rng": checkpoint.rng_state(),
        })

    def save_best(step: int, val: dict):
        # the model of the best eval so far (no optimiser: not a resume point); see best.py
        checkpoint.save(out_dir / checkpoint.BEST_NAME, {
            "format": checkpoint.FORMAT, "model_args": model_cfg.to_dict(),
            "train_config": cfg.to_dict(), "tokenizer": dict(tokenizer),
            "model": raw_model.state_dict(), "step": step, "tokens_seen": step * tokens_per_step,
            "val": val})

    # ---- the loop -----------------------------------------------------------------------------
    end_step = cfg.max_steps if not stop_after else min(cfg.max_steps, stop_after)
    tracker = best.BestTracker(cfg.early_stop_patience, cfg.early_stop_min_delta,
                               state.get("best") if state is not None else None)
    if state is None and ddp.main:
        best.remove_stale(out_dir)
    if tracker.stopped:
        log(f"the run stopped early at step {start_step} (no new best val loss in "
            f"{cfg.early_stop_patience} evals); nothing to do")
        end_step = start_step
    last_done = start_step
    bar = None
    if progress and ddp.main:
        from tqdm import tqdm
        bar = tqdm(total=cfg.max_steps, initial=start_step, desc="train", unit="step",
                   dynamic_ncols=True, file=sys.stderr)
    model.train()
    last_val = state.get("val") if state is not None else None
    last_avg_loss = None
    interval_loss, interval_steps = torch.zeros((), device=device), 0
    timer_t, timer_tokens, total_time, total_tokens = time.perf_counter(), 0, 0.0, 0
    tok_s = mfu_now = float("nan")
    warm, first_interval = False, (0.0, 0)
    for step in range(start_step, end_step):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=device)
        for micro in range(accum_per_rank):
            x, y = train_data.micro_batch(step, ddp.rank * accum_per_rank + micro,
                                          cfg.batch_size, cfg.grad_accum)
            if device.type == "cuda":
                x = x.pin_memory().to(device, non_blocking=True)
                y = y.pin_memory().to(device, non_blocking=True)
            # gradients are all-reduced once, on the last micro-batch of the step
            sync = ddp.world == 1 or micro == accum_per_rank - 1
            with (contextlib.nullcontext() if sync else model.no_sync()):
                with autocast():
                    _, loss = model(x, y)
                (loss / accum_per_rank).backward()
            loss_sum += loss.detach()
        grad_norm = (torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
                     if cfg.grad_clip > 0 else torch.zeros(()))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        timer_tokens += tokens_per_step
        interval_loss += loss_sum / accum_per_rank
        interval_steps += 1

        is_log = done % cfg.log_interval == 0 or done == end_step
        is_eval = val_windows and (done % cfg.eval_interval == 0 or done == cfg.max_steps)
        is_ckpt = done % cfg.ckpt_interval == 0 or done == end_step
        if is_log:
            loss_val, avg = (v / ddp.world for v in _all_sum(
                [loss_sum.item() / accum_per_rank, interval_loss.item() / interval_steps], ddp, device))
            interval_loss.zero_()
            interval_steps = 0
            last_avg_loss = avg
            if not math.isfinite(loss_val):
                raise FloatingPointError(
                    f"loss is {loss_val} at step {done}: lower lr or check the data; the last good "
                    f"checkpoint is {out_dir / checkpoint.CKPT_NAME} (if any)")
            dt = time.perf_counter() - timer_t
            tok_s = timer_tokens / dt
            mfu_now = mfu.mfu(tok_s, fpt, peak * ddp.world)
            if warm:
                total_time += dt
                total_tokens += timer_tokens
            else:  # the first interval pays for warm-up (allocator, thread pools, compilation)
                warm, first_interval = True, (dt, timer_tokens)
            if ddp.main:
                metrics.write({"type": "train", "step": done, "loss": loss_val, "loss_avg": avg,
                               "lr": lr, "grad_norm": float(grad_norm), "tokens": done * tokens_per_step,
                               "tok_per_s": tok_s, "mfu": mfu_now})
                if bar is not None:
                    bar.set_postfix(loss=f"{avg:.4f}", tok_s=f"{tok_s:,.0f}",
                                    mfu=f"{100 * mfu_now:.1f}%")
        if is_eval:
            last_val = evaluate()
            if ddp.main:
                metrics.write({"type": "eval", "step": done, **last_val})
                msg = (f"step {done}: val loss {last_val['val_loss']:.4f}, "
                       f"ppl {last_val['val_ppl']:.2f}")
                if bar is not None:
                    bar.write(msg)
                else:
                    log(msg)
            if tracker.update(done, last_val["val_loss"]) and cfg.keep_best and ddp.main:
                save_best(done, last_val)
        if is_ckpt or tracker.stopped:
            save_checkpoint(done, last_val)
        last_done = done
        if bar is not None:
            bar.update(1)
        if tracker.stopped:
            log(f"early stop at step {done}: no new best val loss in {cfg.early_stop_patience} evals "
                f"(best {tracker.best_loss:.4f} at step {tracker.best_step})")
            break
        if is_log or is_eval or is_ckpt:
            timer_t, timer_tokens = time.perf_counter(), 0  # time eval/ckpt do not count as training
    if bar is not None:
        bar.close()
    if start_step >= end_step and not tracker.stopped:
        log(f"nothing to do: the checkpoint is at step {start_step}, max_steps is {end_step}")
    if ddp.world > 1:
        dist.barrier()  # rank 0 may still be writing the checkpoint

    # ---- summary ------------------------------------------------------------------------------
    completed = last_done
    if total_time == 0:
        total_time, total_tokens = first_interval
    tokens_seen = completed * tokens_per_step
    summary = {
        "step": completed,
        "finished": completed >= cfg.max_steps or tracker.stopped,
        "params": counts,
        "tokens_seen": tokens_seen,
        "train_loss": last_avg_loss,  # mean over the last log interval
        **(last_val or {}),
        **scaling.predictions(counts["non_embedding"], tokens_seen),
        "tok_per_s": total_tokens / total_time if total_time else None,
        "mfu": mfu.mfu(total_tokens / total_time, fpt, peak * ddp.world) if total_time else None,
        "flops_per_token": fpt,
        "peak_flops": peak * ddp.world,
        "peak_flops_source": peak_src,
        "world_size": ddp.world,
        "device": str(device),
        **tracker.summary(out_dir, cfg.keep_best),
    }
    if ddp.main:
        metrics.close()
        checkpoint.atomic_write_bytes(out_dir / "summary.json",
                                      lambda f: f.write(json.dumps(summary, indent=2).encode()))
        log(format_summary(summary))
    return summary


def format_summary(s: dict) -> str:
    def f(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "n/a"

    p = s["params"]
    lines = [
        f"run summary at step {s['step']} ({'early stop' if s.get('early_stopped') else 'finished' if s['finished'] else 'stopped early'})",
        f"  parameters        total {p['total']:,} | non-embedding N {p['non_embedding']:,} | "
        f"12*L*d^2 {p['approx_12Ld2']:,}",
        f"  tokens trained    D {s['tokens_seen']:,}",
        f"  measured loss     train {f(s.get('train_loss'), '.4f')} | val {f(s.get('val_loss'), '.4f')}"
        f" (ppl {f(s.get('val_ppl'), '.2f')})",
        f"  Kaplan et al.     L(N) {f(s.get('kaplan_L_N'), '.3f')} | L(D) {f(s.get('kaplan_L_D'), '.3f')}"
        f" | L(N,D) {f(s.get('kaplan_L_ND'), '.3f')}  (nats/token, WebText2 + GPT-2 BPE fits)",
        f"  throughput        {f(s.get('tok_per_s'), ',.0f')} tokens/s | MFU "
        f"{f(100 * s['mfu'] if s.get('mfu') is not None else None, '.1f')}% ({s['peak_flops_source']})",
    ]
    if best.format_line(s):
        lines.append(best.format_line(s))
    return "\n".join(lines)


def train_from_shards(data_dir, cfg: TrainConfig, out_dir, resume: bool = False,
                      stop_after: int | None = None, progress: bool = True,
                      overwrite: bool = False) -> dict:
    """Open the train/val splits of a tokenized-shards directory and train on them."""
    from tokenization.shards import load_manifest

    from .data import open_shards

    data_dir = Path(data_dir)
    check_run_dir(Path(out_dir), resume, overwrite)  # before the shards are read
    manifest = load_manifest(data_dir)
    tok = manifest["tokenizer"]
    train_arrays = open_shards(data_dir, "train")
    splits = {s.get("split") for s in manifest.get("shards", [])}
    val_arrays = open_shards(data_dir, "val") if "val" in splits else []
    if not val_arrays:
        print(f"warning: {data_dir} has no val shards; no evaluation during training", file=sys.stderr)
    return train(cfg, out_dir, train_arrays, val_arrays,
                 tokenizer={k: tok.get(k) for k in ("vocab_size", "eot_id", "eot_token", "sha256")},
                 resume=resume, stop_after=stop_after, tokenizer_file=data_dir / tok["file"],
                 progress=progress, overwrite=overwrite)
