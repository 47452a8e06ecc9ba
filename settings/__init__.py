"""``settings``: the configuration. YAML defaults per section, overridden by a user file, checked
before any work.

A neutral top-level package below every layer: ``pipelines``, ``tokenization`` (its CLI) and
``trainer`` import it; it imports only PyYAML and the standard library (no Beam, no project
package).  ``pipelines.config`` re-exports it under its old name.

Defaults live in ``configs/defaults/<section>.yaml`` (one file per stage so each stage documents its
own knobs).  A user config is a YAML mapping with the same nesting; any key that is not in the
defaults is an error naming the key, so a typo never silently falls back to a default.

Contract (every error is a ``ConfigError``, a ``ValueError`` the CLIs print as one line, exit 2):

- ``read_yaml`` is the one YAML reader for configuration files, also used by the trainer
  (``trainer/config.py``).  It reads at most ``MAX_CONFIG_BYTES``, refuses anchors and aliases (a
  354-byte alias bomb expands past 4 GB) and stops at ``MAX_CONFIG_NODES`` nodes, so a hostile
  file costs bounded memory.  ``tests/test_config_hostile.py`` checks that the trainer reading
  its config imports no Beam; ``tests/test_layers.py`` checks the import contracts.
- ``load_config`` checks every value of the merged config against its default: the type of the
  default (an int is fine where a float is, a bool is neither), list elements against the
  default's elements, and the ranges in ``RANGES`` -- before any stage starts work.  The
  exceptions (keys that may be null, types where the default is null or empty, allowed words)
  are the small tables below.
- ``check_output_dir`` checks a local output directory argument before a run: not an existing
  file, and its nearest existing parent a writable directory.  ``gs://``/``s3://`` are left to
  the run.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import yaml

__all__ = ["CONFIG_DIR", "DEFAULTS_DIR", "MAX_CONFIG_BYTES", "MAX_CONFIG_NODES", "ConfigError", "read_yaml",
           "Range", "RANGES", "NULLABLE", "TYPES", "ELEMENTS", "SHAPES", "CHOICES", "validate",
           "load_defaults", "load_config", "config_hash", "check_output_dir"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULTS_DIR = CONFIG_DIR / "defaults"

# A config file is a few KB; these bound what a hostile one can cost.
MAX_CONFIG_BYTES = 256 * 1024
MAX_CONFIG_NODES = 20_000


class ConfigError(ValueError):
    """A config file or value is wrong; the message names the file and key."""


# ----------------------------------------------------------------------------------- reading YAML
class _Refused(Exception):
    def __init__(self, message: str, mark=None):
        super().__init__(message)
        self.mark = mark


class _BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors/aliases and with a cap on the number of nodes."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused("YAML anchors and aliases (& and *) are not allowed in a config file",
                           event.start_mark)
        self._nodes = getattr(self, "_nodes", 0) + 1
        if self._nodes > MAX_CONFIG_NODES:
            raise _Refused(f"more than {MAX_CONFIG_NODES} YAML nodes", event.start_mark)
        return super().compose_node(parent, index)


def _at(mark) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def read_yaml(path: str | Path) -> dict:
    """The mapping in the YAML file at ``path`` ({} for an empty file), read in bounded memory."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 (byte {exc.start})") from None
    try:
        data = yaml.load(text, Loader=_BoundedSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise ConfigError(f"config file {path}: {exc}{_at(exc.mark)}") from None
    except yaml.MarkedYAMLError as exc:
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{_at(exc.problem_mark)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level, got {type(data).__name__}")
    return data


_read_yaml = read_yaml  # the name stages and tests used before


# ------------------------------------------------------------------------------ value schema
class Range(NamedTuple):
    low: float | None
    high: float | None = None
    low_open: bool = False   # low itself is not allowed

    def holds(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or x <= self.high

    def __str__(self) -> str:
        if self.high is not None:
            return f"in [{self.low}, {self.high}]"
        return f"{'>' if self.low_open else '>='} {self.low}"


POSITIVE, NON_NEGATIVE, FRACTION = Range(0, None, True), Range(0), Range(0, 1)

# Keys are matched by ``_fits``: "*_frac" is any key whose last part ends in _frac, a dotted pattern
# matches part by part.  RANGES: the first match wins; every number in the configuration is a
# size, count, seed, time or threshold, so the fallback is >= 0.
RANGES: dict[str, Range] = {
    "*_frac": FRACTION, "*_fraction": FRACTION, "min_score": FRACTION, "*_confidence": FRACTION,
    "*_threshold": FRACTION,
    "extract.timeout_s": NON_NEGATIVE,            # 0 disables
    "*_s": POSITIVE,
    "*_bytes": POSITIVE, "*shards": POSITIVE, "*shard_tokens": POSITIVE, "*batch_docs": POSITIVE,
    "extract.splits_per_file": POSITIVE, "vocab_size": POSITIVE, "sample_docs": POSITIVE,
    "max_word_chars": POSITIVE, "dedup.minhash.ngram": POSITIVE, "dedup.minhash.bands": POSITIVE,
    "dedup.minhash.rows": POSITIVE, "dedup.minhash.max_cc_rounds": POSITIVE,
    "dedup.lines.min_docs": POSITIVE,
    "*": NON_NEGATIVE,
}
# Keys that may be null although their default is not ("null disables" in the defaults' comments).
NULLABLE = ("quality.thresholds.*", "quality.language_defaults.*.*", "quality.per_language.*.*",
            "pii.placeholders.*", "tokenize.train.sample_docs", "dedup.keep.quality_column")
# The type where the default cannot say (a null default); float also accepts int.
TYPES: dict[str, Any] = {
    "model_path": str, "toxicity.wordlists": str, "toxicity.classifier_model": str,
    "toxicity.url_blocklist": str, "sources.s3_endpoint_url": str, "tokenize.tiktoken_eot_id": int,
    "gopher_min_stop_words_frac": float,
    "extract.splits_per_file": (int, str),
}
# Element type of lists whose default is empty.
ELEMENTS: dict[str, type] = {"language.keep": str, "toxicity.wordlists_always": str}
# Mappings checked against the defaults found at another key (unknown keys refused there too).
SHAPES: dict[str, str] = {"quality.per_language.*": "quality.thresholds",
                          "quality.language_defaults.*": "quality.thresholds"}
# Allowed words of string values (and of list elements).
CHOICES: dict[str, tuple[str, ...]] = {
    "extract.splits_per_file": ("auto",),
    "consent.server_error": ("disallow", "allow"),
    "dedup.minhash.verify": ("none", "estimated", "exact"),
    "extract.extractor": ("trafilatura", "resiliparse"),
    "toxicity.classifier": ("profanity_check", "fasttext", "none"),
}


def _fits(key: str, pattern: str) -> bool:
    """A pattern without a dot matches the last part of the key ("*_frac"); one with dots matches
    part by part ("quality.per_language.*.*")."""
    if "." not in pattern:
        return fnmatchcase(key.rpartition(".")[2], pattern)
    parts, want = key.split("."), pattern.split(".")
    return len(parts) == len(want) and all(fnmatchcase(k, w) for k, w in zip(parts, want))


def _match(table, key: str):
    for pattern in table:
        if _fits(key, pattern):
            return table[pattern] if isinstance(table, dict) else True
    return None


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(t, t.__name__)


def _plural(t) -> str:
    return {bool: "booleans", int: "integers", float: "numbers", str: "strings"}.get(t, "values")


def _is(value, t) -> bool:
    if isinstance(t, tuple):
        return any(_is(value, x) for x in t)
    if t in (int, float) and isinstance(value, bool):
        return False
    if t is float:
        return isinstance(value, (int, float))
    return isinstance(value, t)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    def __init__(self, defaults: Mapping, source: str):
        self.defaults, self.source = defaults, source

    def fail(self, key: str, what: str, value) -> None:
        raise ConfigError(f"{self.source}: {key!r} must be {what}, got {_show(value)}")

    def check(self, value, default, key: str) -> None:
        shape = _match(SHAPES, key)
        if shape is not None:
            default = self.defaults
            for part in shape.split("."):
                default = default[part]
        if value is None:
            if default is not None and not _match(NULLABLE, key):
                self.fail(key, _type_name(_default_type(default)) + " (not null)", value)
            return
        if isinstance(default, dict):
            return self.mapping(value, default, key)
        expected = _match(TYPES, key) or _default_type(default)
        if isinstance(default, list):
            return self.sequence(value, default, key)
        self.scalar(value, expected, key, key)

    def mapping(self, value, default: Mapping, key: str) -> None:
        if not isinstance(value, dict):
            self.fail(key, "a mapping", value)
        for name, item in value.items():
            sub = f"{key}.{name}"
            if default and name not in default:
                known = ", ".join(sorted(map(str, default)))
                raise ConfigError(f"{self.source}: unknown key {sub!r}; known keys here: {known}")
            self.check(item, default.get(name) if default else None, sub)

    def sequence(self, value, default: list, key: str) -> None:
        element = _match(ELEMENTS, key) or _elements_type(default)
        if not isinstance(value, list):
            self.fail(key, f"a list of {_plural(element)}", value)
        for i, item in enumerate(value):
            self.scalar(item, element, f"{key}[{i}]", key)

    def scalar(self, value, expected, key: str, rule_key: str) -> None:
        if expected is not None and not _is(value, expected):
            self.fail(key, _describe(expected, rule_key), value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value) or not _match(RANGES, rule_key).holds(value):
                self.fail(key, _describe(expected, rule_key, number=True), value)
        elif isinstance(value, str) and _match(CHOICES, rule_key) and value not in _match(CHOICES, rule_key):
            self.fail(key, _describe(expected, rule_key), value)


def _describe(expected, rule_key: str, number: bool = False) -> str:
    """What the value at ``rule_key`` must be: "an integer > 0", "'auto' or an integer > 0", ..."""
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if number:
        kinds = tuple(t for t in kinds if t in (int, float)) or (float,)
    parts = []
    for t in kinds:
        choices = _match(CHOICES, rule_key) if t is str else None
        if choices:
            parts.append("one of " + ", ".join(map(repr, choices)))
        elif t in (int, float):
            parts.append(f"{_type_name(t)} {_match(RANGES, rule_key)}")
        elif t is not None:
            parts.append(_type_name(t))
    return " or ".join(parts) or "a value"


def _default_type(default):
    if isinstance(default, bool):
        return bool
    if isinstance(default, float):
        return float
    return None if default is None else type(default)


def _elements_type(default: list):
    types = {_default_type(x) for x in default}
    if types == {int, float}:
        return float
    return types.pop() if len(types) == 1 else None


def validate(cfg: Mapping, defaults: Mapping, source: str = "config") -> None:
    """Raise ConfigError naming the dotted key of the first value that does not fit the schema."""
    checker = _Checker(defaults, source)
    for key, value in cfg.items():
        checker.check(value, defaults.get(key), str(key))


# -------------------------------------------------------------------------------- merging
def load_defaults() -> dict:
    merged: dict = {}
    for path in sorted(DEFAULTS_DIR.glob("*.yaml")):
        section = read_yaml(path)
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
            raise ConfigError(f"{source}: {dotted!r} must be a mapping, got {_show(value)}")
        if isinstance(base[key], dict) and base[key]:
            out[key] = _merge(base[key], value, dotted, source)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path | None = None, overrides: Mapping | None = None) -> dict:
    """Defaults merged with the YAML file at ``path`` and then with ``overrides``, every value checked."""
    defaults = load_defaults()
    cfg = defaults
    sources = []
    if path:
        cfg = _merge(cfg, read_yaml(Path(path)), "", str(path))
        sources.append(str(path))
    if overrides:
        cfg = _merge(cfg, overrides, "", "overrides")
        sources.append("overrides")
    validate(cfg, defaults, " + ".join(sources) or "configs/defaults")
    return cfg


def config_hash(cfg: Mapping) -> str:
    """Stable hash of a config (for manifests and idempotence checks)."""
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


# ------------------------------------------------------------------------------ output arguments
def check_output_dir(target: str, flag: str = "--output") -> None:
    """Refuse, before any work, a local output directory that cannot be created or written."""
    if "://" in str(target):
        return  # gs://, s3://: permissions are the run's to find out
    path = os.path.abspath(target)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {target} is an existing file, not a directory")
    parent = path
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag} {target} cannot be created: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {target} is not writable ({parent} does not allow writing)")
