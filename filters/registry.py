"""The signal registry: the list of signal families everything else walks.

``families()`` are the built-in families of ``filters/families/`` in stored-column order, plus
any added with ``register``.  Derived from them, never kept in step by hand:

* ``signal_fields()``: the stored signal columns (``signals_version`` first, then each family's
  fields) -- the extract Parquet schema and refine's input/output schemas are built from it;
* ``signals_version(cfg)``: a hash of ``SIGNALS_REVISION`` and each family's version inputs (the
  settings that change a measured value; thresholds are excluded on purpose);
* ``filters()``: every ``refine.filters`` entry, from the families' ``Filter`` declarations;
* ``check_config(cfg)``: each family's declared config keys exist, every key of a section a
  family owns is declared by some family (a YAML entry no code reads is an error), then each
  family's and filter's own validation.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import pyarrow as pa

from filters.families import BUILTIN
from filters.family import Filter, SignalFamily, get_path

# Bump when a measure's definition changes, so stored signals are recomputed.
SIGNALS_REVISION = 2  # 2: segmenter input cut into 10,000-character pieces (MeCab crashed on huge tokens)
VERSION_FIELD = pa.field("signals_version", pa.string())   # hash of the settings that shaped the values

_FAMILIES: list[SignalFamily] = list(BUILTIN)


def families() -> tuple[SignalFamily, ...]:
    return tuple(_FAMILIES)


def register(family: SignalFamily, *, before: str | None = None) -> SignalFamily:
    """Add a family (at the end, or before the family named ``before``); names, columns and
    filter names must be new."""
    columns = {f.name for fam in _FAMILIES for f in fam.fields} | {VERSION_FIELD.name}
    names = {fam.name for fam in _FAMILIES}
    filter_names = set(filters())
    if family.name in names:
        raise ValueError(f"signal family {family.name!r} is already registered")
    for f in family.fields:
        if f.name in columns:
            raise ValueError(f"signal family {family.name!r}: column {f.name!r} already exists")
    for flt in family.filters:
        if flt.name in filter_names:
            raise ValueError(f"signal family {family.name!r}: filter {flt.name!r} already exists")
    index = len(_FAMILIES) if before is None else [f.name for f in _FAMILIES].index(before)
    _FAMILIES.insert(index, family)
    return family


def unregister(name: str) -> None:
    _FAMILIES[:] = [f for f in _FAMILIES if f.name != name]


@contextmanager
def registered(family: SignalFamily, *, before: str | None = None) -> Iterator[SignalFamily]:
    """``register`` for the duration of a ``with`` block (tests, experiments)."""
    register(family, before=before)
    try:
        yield family
    finally:
        unregister(family.name)


# ------------------------------------------------------------------------------------ derived
def signal_fields() -> list[pa.Field]:
    return [VERSION_FIELD, *(f for fam in _FAMILIES for f in fam.fields)]


def signal_names() -> list[str]:
    return [f.name for f in signal_fields()]


def filters() -> dict[str, Filter]:
    """Every filter by name, in registry order."""
    return {flt.name: flt for fam in _FAMILIES for flt in fam.filters}


def version_inputs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"revision": SIGNALS_REVISION}
    for fam in _FAMILIES:
        for key, value in fam.version_inputs(cfg).items():
            if key in out:
                raise ValueError(f"signal family {fam.name!r}: version input {key!r} used twice")
            out[key] = value
    return out


def signals_version(cfg: Mapping[str, Any]) -> str:
    """Hash of every setting that changes a measured value (thresholds excluded on purpose)."""
    blob = json.dumps(version_inputs(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_config(cfg: Mapping[str, Any]) -> None:
    """Raise ValueError naming the family and key when the config and the declarations differ."""
    declared: set[str] = set()
    for fam in _FAMILIES:
        for key in fam.config_keys:
            if get_path(cfg, key, _MISSING) is _MISSING:
                raise ValueError(f"signal family {fam.name!r} reads config key {key!r}, which is not in the "
                                 f"configuration (add it to configs/defaults/)")
            declared.add(key)
    for fam in _FAMILIES:
        for section in fam.sections:
            for key in get_path(cfg, section, None) or {}:
                dotted = f"{section}.{key}"
                if dotted not in declared:
                    raise ValueError(f"config key {dotted!r}: no signal family reads it (declare it in the "
                                     f"config_keys of the {fam.name!r} family, or remove it)")
    for fam in _FAMILIES:
        if fam.validate is not None:
            fam.validate(cfg)
        for flt in fam.filters:
            if flt.validate is not None:
                flt.validate(cfg)


_MISSING = object()
