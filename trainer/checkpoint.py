"""Checkpoint files: atomic writes, ``weights_only`` reads, and loading a run for eval/sample/export.

A run directory holds ``ckpt.pt`` (latest state), ``best.pt`` (best-val model, with keep_best),
``config.yaml`` (resolved training config), ``tokenizer.json`` (copied from the shards so the run
is self-contained), ``metrics.jsonl`` and ``summary.json``.
"""
from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from .model import GPT, GPTConfig

FORMAT = "corpus-gpt-ckpt/1"
CKPT_NAME = "ckpt.pt"
BEST_NAME = "best.pt"      # the best-val-loss model of a run with keep_best (trainer/best.py)
TOKENIZER_NAME = "tokenizer.json"
# atomic_write_bytes' temporary files: "." + final name + "." + mkstemp's 8 random characters + ".tmp"
_TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class CheckpointError(ValueError):
    """A checkpoint file cannot be used (truncated, corrupt, not ours); the message names it."""


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
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/EOFError/KeyError/... on bad bytes
        raise CheckpointError(f"{path}: cannot read the checkpoint ({_why(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a trainer checkpoint (format {FORMAT})")
    return state


def _why(exc: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "Weights only load failed" in text:
        unsupported = [ln.strip() for ln in text.splitlines() if "Unsupported global" in ln]
        return ("refused by weights_only loading: it holds objects other than tensors and plain data"
                + (f"; {unsupported[0]}" if unsupported else ""))
    first = text.strip().splitlines()[0][:200] if text.strip() else "no detail"
    return f"truncated or corrupt: {type(exc).__name__}: {first}"


def remove_stale_temps(run_dir: Path) -> list[str]:
    """Delete the temporary files of atomic writes that a killed process left in ``run_dir``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    stale = sorted(p for p in run_dir.iterdir() if p.is_file() and _TEMP_RE.match(p.name))
    for p in stale:
        p.unlink(missing_ok=True)
    return [p.name for p in stale]


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


def model_file(run_or_ckpt) -> Path:
    """The checkpoint eval/sample/export read: a file as given; for a run directory its
    ``best.pt`` when there is one (keep_best), else ``ckpt.pt``."""
    p = Path(run_or_ckpt)
    if p.is_dir() and (p / BEST_NAME).is_file():
        return p / BEST_NAME
    return p / CKPT_NAME if p.is_dir() else p


def load_model(run_or_ckpt, device="cpu") -> tuple[GPT, dict]:
    """The model of a run (eval mode; ``model_file`` picks the file) and its checkpoint metadata
    (everything but the tensors; ``path`` is the file read)."""
    path = model_file(run_or_ckpt)
    state = load(path, map_location=device)
    try:
        model = GPT(GPTConfig.from_dict(state["model_args"]))
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not hold a usable model "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
                              ) from None
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "rng")}
    meta["path"] = str(path)
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
