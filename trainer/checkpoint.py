"""Checkpoint files: atomic writes, ``weights_only`` reads, and loading a run for eval/sample/export.

A run directory holds ``ckpt.pt`` (latest state), ``config.yaml`` (resolved training config),
``tokenizer.json`` (copied from the shards so the run is self-contained), ``metrics.jsonl`` and
``summary.json``.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from .model import GPT, GPTConfig

FORMAT = "corpus-gpt-ckpt/1"
CKPT_NAME = "ckpt.pt"
TOKENIZER_NAME = "tokenizer.json"


def atomic_write_bytes(path: Path, write) -> None:
    """Write through ``write(file_obj)`` into a temp file beside ``path``, fsync, then rename, so a
    crash mid-write never leaves a truncated file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(path: Path, state: dict) -> None:
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load(path: Path, map_location="cpu", mmap: bool = False) -> dict:
    """A checkpoint dict; ``mmap`` maps the tensors lazily (cheap when only metadata is needed)."""
    path = Path(path)
    if path.is_dir():
        path = path / CKPT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a trainer checkpoint (format {FORMAT})")
    return state


# ---- RNG state: plain Python types and tensors only, so weights_only loading accepts it ---------
def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuple(x):
    return tuple(_as_tuple(i) for i in x) if isinstance(x, (list, tuple)) else x


def load_model(run_or_ckpt, device="cpu") -> tuple[GPT, dict]:
    """The model of a run (eval mode) and its checkpoint metadata (everything but the tensors)."""
    state = load(run_or_ckpt, map_location=device)
    model = GPT(GPTConfig.from_dict(state["model_args"]))
    model.load_state_dict(state["model"])
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "rng")}
    return model, meta


def tokenizer_path(run_or_ckpt) -> Path:
    p = Path(run_or_ckpt)
    run_dir = p if p.is_dir() else p.parent
    tok = run_dir / TOKENIZER_NAME
    if not tok.is_file():
        raise FileNotFoundError(f"{run_dir} has no {TOKENIZER_NAME} (it is copied there by 'train')")
    return tok


def load_tokenizer(run_or_ckpt):
    # through tokenization/ so "<|endoftext|>" typed in a prompt is text, as when the shards were made
    from tokenization.tokenizer import load_tokenizer_file

    return load_tokenizer_file(tokenizer_path(run_or_ckpt))
