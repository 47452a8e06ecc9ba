"""The per-part profiles in bench/ name real functions.

``bench/profile_extract.py`` and ``bench/profile_refine.py`` split a cProfile by the cumulative
time of named entry points (file suffix + function name).  A refactor that moves or renames one
of them silently turns its row into 0.0 CPU-s -- which is how the extract profile reported
"PII counts 0.0" after the signal registry moved ``pii_counts`` into ``filters/families/``.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_profile_{name}", ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _entries(name: str) -> list[tuple[str, str, str]]:
    parts = _load(name).PARTS
    out = []
    for part, spec in parts.items():
        pairs = spec if isinstance(spec, list) else [tuple(s.split(":", 1)) for s in spec.split()]
        out += [(part, suffix, func) for suffix, func in pairs]
    return out


@pytest.mark.parametrize("name", ["profile_extract", "profile_refine"])
def test_every_project_entry_point_exists(name):
    missing = []
    for part, suffix, func in _entries(name):
        if suffix == "~" or not suffix.startswith(("pipelines/", "filters/", "tokenization/")):
            continue   # C functions and third-party entry points are matched by name only
        path = ROOT / suffix
        if not path.is_file() or func not in _functions(path):
            missing.append(f"{part}: {suffix}:{func}")
    assert not missing, "profile parts naming functions that do not exist:\n" + "\n".join(missing)
