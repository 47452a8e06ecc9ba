"""Where a run's outputs are, and reading them through Beam's FileSystems (local, gs://, s3://).

A run directory is laid out as ``make run`` and ``pipelines all`` (``OUTPUT/<snapshot>/``) write
it: ``extracted/``, ``refined/`` (with ``removed/``), ``shards/``, ``run/`` (the trainer), and for
``pipelines all`` also ``_COMPLETE.json`` and ``input_warcs.txt``.  Any of them may be missing.
Given an ``OUTPUT`` root with exactly one snapshot directory below it, that one is used.

Nothing here raises on a corrupt file: problems are collected in ``RunLayout.problems`` and shown
in the report ("could not read ..."), so one bad file never hides the rest of the run.
"""
from __future__ import annotations

import json
import os
import posixpath
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

STAGE_DIRS = {"extract": "extracted", "refine": "refined", "tokenize": "shards", "train": "run"}
MANIFEST = "_COMPLETE.json"
INPUT_LIST = "input_warcs.txt"


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join(base: str, *parts: str) -> str:
    if "://" in base:
        return posixpath.join(base.rstrip("/"), *parts)
    return os.path.join(base, *parts)


def exists(path: str) -> bool:
    return _fs().exists(path)


def match(pattern: str) -> list[tuple[str, float | None]]:
    """(path, last-modified seconds or None) of every file matching ``pattern``, sorted."""
    try:
        found = _fs().match([pattern])[0].metadata_list
    except Exception:  # nothing there / unreachable: the caller treats it as absent
        return []
    return sorted((m.path, getattr(m, "last_updated_in_seconds", None)) for m in found)


def read_bytes(path: str) -> bytes:
    from apache_beam.io.filesystems import CompressionTypes

    with _fs().open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read()


def open_binary(path: str):
    from apache_beam.io.filesystems import CompressionTypes

    return _fs().open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _has_stage_dir(base: str) -> bool:
    return any(exists(join(base, d)) for d in STAGE_DIRS.values()) or exists(join(base, MANIFEST))


def find_run_dir(run: str) -> str:
    """``run`` itself when it holds stage directories, else its single snapshot subdirectory."""
    if "://" not in run and not os.path.isdir(run):
        raise FileNotFoundError(f"--run {run}: no such directory")
    if _has_stage_dir(run):
        return run.rstrip("/") if "://" in run else run
    if "://" in run:
        children = sorted({posixpath.basename(posixpath.dirname(p)) for p, _ in match(join(run, "*", MANIFEST))})
    else:
        children = sorted(d for d in os.listdir(run) if os.path.isdir(os.path.join(run, d))
                          and _has_stage_dir(os.path.join(run, d)))
    if len(children) == 1:
        return join(run, children[0])
    if children:
        raise ValueError(f"--run {run} holds several runs ({', '.join(children[:5])}); name one of them")
    raise FileNotFoundError(f"--run {run}: none of {', '.join(d + '/' for d in STAGE_DIRS.values())} "
                            "found (is this a run directory?)")


@dataclass
class RunLayout:
    root: str
    problems: list[str] = field(default_factory=list)

    def dir(self, stage: str) -> str:
        return join(self.root, STAGE_DIRS[stage])

    def has(self, stage: str) -> bool:
        return exists(self.dir(stage))

    def json(self, path: str) -> Any | None:
        """Parsed JSON at ``path``; None when absent; a problem noted when unreadable."""
        if not exists(path):
            return None
        try:
            return json.loads(read_bytes(path).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            self.problems.append(f"{path}: not readable JSON ({type(exc).__name__}: {exc})"[:300])
            return None

    def summary(self, stage: str) -> dict | None:
        data = self.json(join(self.dir(stage), "summary.json"))
        return data if isinstance(data, dict) else None

    def modified(self, path: str) -> float | None:
        found = match(path)
        return found[0][1] if found else None

    def parquet_files(self, stage: str, sub: str = "") -> list[str]:
        """The stage's Parquet files by the stages' own listing rule (``pipelines.inputs``)."""
        from pipelines.inputs import list_parquet

        return list_parquet(join(self.dir(stage), sub) if sub else self.dir(stage))

    def jsonl(self, path: str, limit: int = 100_000) -> Iterator[dict]:
        """Rows of a small JSON-lines file (bad lines are noted, not fatal)."""
        if not exists(path):
            return
        try:
            lines = read_bytes(path).decode("utf-8", errors="replace").splitlines()
        except OSError as exc:
            self.problems.append(f"{path}: unreadable ({exc})")
            return
        for n, line in enumerate(lines[:limit]):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                self.problems.append(f"{path}: line {n + 1} is not JSON")
                continue
            if isinstance(row, dict):
                yield row

    def batches(self, path: str, columns: Sequence[str], batch_rows: int = 2048):
        """Record batches of the wanted columns that the file has (others are absent), read with
        the stages' reader (``pipelines.inputs.read_parquet``); a bad file is a noted problem."""
        from pipelines.inputs import read_parquet

        for kind, value in read_parquet(path, columns, batch_rows=batch_rows):
            if kind == "batch":
                yield value
            elif kind == "problem":
                what = "not readable Parquet" if value.reason == "unreadable_file" else "stopped reading"
                self.problems.append(f"{path}: {what} ({value.detail})"[:300])


def code_version() -> str:
    """``git describe`` of this checkout when it is one, else the installed package version."""
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists():
        try:
            out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=repo,
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return f"git {out.stdout.strip()}"
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        from importlib.metadata import version

        return f"corpus-pipeline {version('corpus-pipeline')}"
    except Exception:
        return "unknown"
