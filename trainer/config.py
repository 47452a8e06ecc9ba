"""The training configuration: ``TrainConfig``, its limits, and loading it from YAML + overrides.

Every field is type- and range-checked when a TrainConfig is made (before any data is read), so a
bad value is one line naming the key.  YAML goes through the project's one bounded reader
(``settings.read_yaml``: Beam-free, no aliases, size cap).
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, fields

from settings import read_yaml  # Beam-free: the one bounded YAML reader

from .model import GPTConfig


@dataclass
class TrainConfig:
    # model (see model.GPTConfig); vocab_size comes from the shards' tokenizer
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128
    dropout: float = 0.0
    bias: bool = True
    pos_emb: str = "learned"
    vocab_multiple: int = 64          # pad the vocabulary for faster matmuls (50257 -> 50304)
    # optimisation
    batch_size: int = 16              # windows per micro-batch per rank
    grad_accum: int = 1               # micro-batches per optimiser step, over all ranks
    max_steps: int = 500
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 50
    lr_decay_steps: int = 0           # cosine decay ends here; 0 means max_steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0            # 0 disables clipping
    seed: int = 1337
    # evaluation, logging, checkpoints
    eval_interval: int = 100          # steps between val evaluations (and at the end)
    eval_windows: int = 64            # val windows per periodic eval, spread over the val set
    eval_batch_size: int = 16
    log_interval: int = 10
    ckpt_interval: int = 100
    keep_best: bool = False           # also save the best-val-loss model as best.pt (eval/sample use it)
    early_stop_patience: int = 0      # stop after this many evals without a new best val loss; 0 = off
    early_stop_min_delta: float = 0.0  # an eval must beat the best val loss by more than this
    # system
    device: str = "auto"              # auto | cpu | cuda
    dtype: str = "auto"               # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False
    threads: int = 0                  # CPU threads per process; 0 leaves torch's default
    peak_flops: float = 0.0           # for MFU; 0 looks the device up (CPU: an assumption)

    def __post_init__(self):
        for f in fields(self):
            _check_field(f, getattr(self, f.name))
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) is above lr ({self.lr})")
        self.model_config(1)  # n_embd divisible by n_head, pos_emb known, RoPE head size even

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(names)}")
        return cls(**{k: _coerce(names[k], k, v) for k, v in d.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def model_config(self, vocab_size: int) -> GPTConfig:
        m = max(1, self.vocab_multiple)
        return GPTConfig(vocab_size=-(-vocab_size // m) * m, block_size=self.block_size,
                         n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                         dropout=self.dropout, bias=self.bias, pos_emb=self.pos_emb)


# Allowed values, checked when a TrainConfig is made (before any data is read): (lowest, highest),
# inclusive, None = unbounded; fields in _BELOW are < highest.  A field not listed here is only
# type-checked.  MAX_BATCH windows per micro-batch is far beyond what fits on any accelerator,
# and catches typos like batch_size=1e8.
MAX_BATCH = 16384
_LIMITS = {
    "n_layer": (1, 1024), "n_head": (1, 1024), "n_embd": (1, 1 << 16), "block_size": (1, 1 << 20),
    "vocab_multiple": (0, 1 << 16), "dropout": (0, 1),
    "batch_size": (1, MAX_BATCH), "eval_batch_size": (1, MAX_BATCH), "grad_accum": (1, 1 << 20),
    "max_steps": (1, None), "lr": (0, None), "min_lr": (0, None), "warmup_steps": (0, None),
    "lr_decay_steps": (0, None), "weight_decay": (0, None), "beta1": (0, 1), "beta2": (0, 1),
    "grad_clip": (0, None), "seed": (0, 2**63 - 1),
    "eval_interval": (1, None), "eval_windows": (1, None), "log_interval": (1, None),
    "ckpt_interval": (1, None), "threads": (0, 4096), "peak_flops": (0, None),
    "early_stop_patience": (0, None), "early_stop_min_delta": (0, None),
}
_BELOW = ("dropout", "beta1", "beta2")
_CHOICES = {"device": ("auto", "cpu", "cuda"), "dtype": ("auto", "bf16", "fp32"),
            "pos_emb": ("learned", "rope")}
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _field_type(field):
    return field.type if isinstance(field.type, type) else _TYPES.get(field.type)


def _check_field(field, value) -> None:
    key, typ = field.name, _field_type(field)
    if typ is None:
        return  # a type this check does not know (Optional, ...)
    numeric = typ in (int, float) and not isinstance(value, bool)
    if typ is int and not (numeric and isinstance(value, int)):
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if typ is float and not (numeric and isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    if typ in (bool, str) and not isinstance(value, typ):
        raise ValueError(f"{key}: expected {'true/false' if typ is bool else 'a string'}, got {value!r}")
    if key in _LIMITS:
        low, high = _LIMITS[key]
        above = high is not None and (value >= high if key in _BELOW else value > high)
        if value < low or above:
            bounds = f"[{low}, {high}{')' if key in _BELOW else ']'}" if high is not None else f">= {low}"
            raise ValueError(f"{key} must be {'in ' if high is not None else ''}{bounds}, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ValueError(f"{key} must be one of {', '.join(_CHOICES[key])}, got {value!r}")


def _coerce(field, key, value):
    # YAML reads "6e-4" as a string and CLI overrides arrive as strings: convert by field type.
    # Values that are already typed are left to _check_field (a bool is not a number, a list not
    # a string).
    typ = _field_type(field)
    if not isinstance(value, str) or typ is None or typ is str:
        if typ is int and isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)  # 1.0e8 in YAML
        return value
    s = value.strip()
    if typ is bool:
        if s.lower() in ("1", "true", "yes", "on"):
            return True
        if s.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected true/false, got {value!r}")
    try:
        if typ is int:
            try:
                return int(s)
            except ValueError:
                f = float(s)  # "2e3"
                if not math.isfinite(f) or f != int(f):
                    raise ValueError from None
                return int(f)
        return float(s)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key}: expected {typ.__name__}, got {value!r}") from None


def load_config(path=None, overrides=(), base: dict | None = None) -> TrainConfig:
    """``base`` (e.g. a checkpoint's config), then the YAML file, then ``key=value`` overrides.

    The file is read by the project's bounded YAML reader (no aliases, size cap); every value is
    checked against TrainConfig's types and limits before any work."""
    d = dict(base or {})
    if path:
        d.update(read_yaml(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        d[key.strip()] = value.strip()
    return TrainConfig.from_dict(d)
