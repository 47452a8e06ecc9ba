"""Bundled PyTorch GPT trainer: train, evaluate, sample from and export models on tokenized shards.

CLI: ``python -m trainer train|eval|sample|export --help``.  See docs/trainer.md.
"""
from .model import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
