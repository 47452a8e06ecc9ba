"""Configuration: YAML defaults per section, overridden by a user file.

Defaults live in ``configs/defaults/<section>.yaml`` (one file per stage so each stage documents its
own knobs).  A user config is a YAML mapping with the same nesting; any key that is not in the
defaults is an error naming the key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Mapping

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULTS_DIR = CONFIG_DIR / "defaults"


class ConfigError(ValueError):
    """A config file or value is wrong; the message names the file and key."""


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level, got {type(data).__name__}")
    return data


def load_defaults() -> dict:
    merged: dict = {}
    for path in sorted(DEFAULTS_DIR.glob("*.yaml")):
        section = _read_yaml(path)
        for key, value in section.items():
            if key in merged:
                raise ConfigError(f"default section {key!r} defined twice (in {path})")
            merged[key] = value
    return merged


def _merge(base: dict, override: Mapping, where: str, source: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in base:
            known = ", ".join(sorted(map(str, base))) or "(none)"
            raise ConfigError(f"{source}: unknown key {dotted!r}; known keys here: {known}")
        if isinstance(base[key], dict) and base[key] and not isinstance(value, dict):
            raise ConfigError(f"{source}: {dotted!r} must be a mapping")
        if isinstance(base[key], dict) and base[key]:
            out[key] = _merge(base[key], value, dotted, source)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path | None = None, overrides: Mapping | None = None) -> dict:
    """Defaults merged with the YAML file at ``path`` and then with ``overrides``."""
    cfg = load_defaults()
    if path:
        cfg = _merge(cfg, _read_yaml(Path(path)), "", str(path))
    if overrides:
        cfg = _merge(cfg, overrides, "", "overrides")
    return cfg


def config_hash(cfg: Mapping) -> str:
    """Stable hash of a config (for manifests and idempotence checks)."""
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()
