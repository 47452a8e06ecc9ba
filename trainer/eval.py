"""Loss and perplexity of a trained model on the val shards or on a text file.

Every token but the first of each array is predicted once, from non-overlapping windows of
``block_size`` (see ``data.eval_windows``), and the loss is the mean negative log-likelihood over
those predictions; perplexity is exp(loss).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint
from .data import eval_windows


@torch.no_grad()
def nll_sum(model, windows: Sequence[np.ndarray], batch_size: int, device,
            autocast=contextlib.nullcontext) -> tuple[float, int]:
    """Summed NLL (nats) and the number of predicted tokens over ``windows`` (int64 arrays)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    by_len: dict[int, list[np.ndarray]] = {}
    for w in windows:
        if len(w) >= 2:
            by_len.setdefault(len(w), []).append(w)
    for _, group in sorted(by_len.items()):
        for i in range(0, len(group), batch_size):
            batch = torch.from_numpy(np.stack(group[i:i + batch_size])).to(device)
            x, y = batch[:, :-1], batch[:, 1:]
            with autocast():
                logits, _ = model(x)
            total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    model.train(was_training)
    return total, count


def evaluate_arrays(model, arrays: Sequence[np.ndarray], batch_size: int = 8, device="cpu",
                    max_windows: int | None = None) -> dict:
    windows = eval_windows(arrays, model.config.block_size, max_windows)
    total, count = nll_sum(model, windows, batch_size, device)
    if count == 0:
        raise ValueError("nothing to evaluate: the data holds fewer than 2 tokens")
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count, "nll_sum": total}


def evaluate_run(run_dir, data: str | None = None, text: str | None = None, split: str = "val",
                 batch_size: int = 8, max_windows: int | None = None, device: str = "cpu") -> dict:
    if (data is None) == (text is None):
        raise ValueError("give exactly one of --data SHARDS_DIR or --text FILE")
    model, meta = checkpoint.load_model(run_dir, device)
    if text is not None:
        tok = checkpoint.load_tokenizer(run_dir)
        raw = Path(text).read_bytes()
        ids = np.asarray(tok.encode(raw.decode("utf-8", errors="replace")).ids, dtype=np.int64)
        result = evaluate_arrays(model, [ids], batch_size, device, max_windows)
        result["source"] = str(text)
        if max_windows is None:
            # tokenizer-independent: comparable across vocabularies (first token is not predicted)
            result["bits_per_byte"] = result["nll_sum"] / math.log(2) / len(raw)
    else:
        from .data import open_shards

        _check_tokenizer(data, meta)
        result = evaluate_arrays(model, open_shards(data, split), batch_size, device, max_windows)
        result["source"] = f"{data} ({split})"
    result["step"] = meta["step"]
    return result


def _check_tokenizer(shards_dir, meta) -> None:
    from tokenization.shards import load_manifest

    want = meta.get("tokenizer", {}).get("sha256")
    got = load_manifest(shards_dir).get("tokenizer", {}).get("sha256")
    if want and got and want != got:
        raise ValueError(f"{shards_dir} was tokenized with another tokenizer "
                         f"(sha256 {got[:12]}…, the run used {want[:12]}…)")
