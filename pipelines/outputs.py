"""Deterministic, atomic output files through Beam's filesystems (local, gs://, s3://).

Files are built in memory for one output shard (bounded: one shard's rows), written to a
temporary name next to the target and renamed, so a reader never sees a half-written file under
its final name.  Rows are sorted by a caller-given key so bundle order never leaks into bytes.

Output safety (every stage, through :func:`check_io` and :class:`StageOutput`):

* an ``--output`` that is, contains or lies inside one of the stage's inputs is refused before any
  work (normalised absolute local paths; normalised ``scheme://bucket/path`` prefixes), and so is
  an input folder another run is still writing (``_RUNNING.json`` without ``_SUCCESS``);
* a run holds ``OUTPUT/_RUNNING.json`` (stage, run id, pid, host, start) while it writes; it is
  created exclusively (``O_EXCL`` on local disk; exists-check + write + read-back on object
  stores, best effort), so a second run into the same folder refuses.  A lock of a dead local pid,
  or of a run that failed, is stale: ``--overwrite`` takes it over, ``--break-lock`` any lock;
* ``OUTPUT/_SUCCESS`` (JSON: the stage and the files it wrote) is written LAST, then
  the lock is removed: a crashed run leaves no ``_SUCCESS``, so its output never looks complete;
* ``--overwrite`` deletes only files a previous run of the same stage wrote (listed in its
  ``_SUCCESS``; or, for a folder from before these markers, the stage's patterns when
  ``summary.json`` names the same stage; or the leftovers of its own failed run).  A file matching
  the stage's output patterns that no such run wrote is refused by name, with or without
  ``--overwrite`` (a later stage would read it as this stage's output); other files are left alone.
* staging (``run_stage`` with a ``run_job(target)``): the job writes into
  ``OUTPUT/_uncommitted/<run id>/``; the commit removes the earlier run's ``_SUCCESS`` and files,
  moves the staged files into place with ``FileSystems.rename`` and writes ``_SUCCESS`` last.  A
  crash before the commit leaves the earlier output as it was (and its ``_SUCCESS``), never a
  half output under the final names; the failed run's staging folder is deleted (or, after a
  hard kill, by the next ``--overwrite`` run).
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import socket
import time
import uuid
from typing import Any, Mapping, Sequence

# The file writers live in pipelines.writers; stages still reach them as ``outputs.<name>``.
from pipelines.writers import (  # noqa: F401
    PARQUET_OPTIONS, join, jsonl_bytes, parquet_bytes, read_json, write_bytes_atomic, write_json, write_parquet)

STAGING_DIR = "_uncommitted"   # OUTPUT/_uncommitted/<run id>/: a staged run's files until commit


def matching(output: str, patterns: Sequence[str]) -> list[str]:
    """Existing files under ``output`` matching the (relative) glob ``patterns``, sorted."""
    from apache_beam.io.filesystems import FileSystems

    found = set()
    for pattern in patterns:
        try:
            found.update(m.path for m in FileSystems.match([join(output, pattern)])[0].metadata_list)
        except Exception:  # noqa: BLE001 - Beam raises BeamIOError for a folder that does not exist
            continue
    return sorted(found)


def remove_matching(output: str, patterns: Sequence[str]) -> None:
    from apache_beam.io.filesystems import FileSystems

    existing = matching(output, patterns)
    if existing:
        FileSystems.delete(existing)


def remove_unlisted(output: str, pattern: str, keep: set[str], what: str) -> list[str]:
    """Delete the files under ``output`` matching ``pattern`` whose names are not in ``keep`` (the
    names a job's result lists: leftovers of failed attempts at a step that writes files itself);
    returns the names removed, logged as ``what``."""
    from apache_beam.io.filesystems import FileSystems

    strays = [p for p in matching(output, [pattern]) if posixpath.basename(p) not in keep]
    if strays:
        names = sorted(posixpath.basename(p) for p in strays)
        logging.getLogger("pipelines.outputs").warning("%s: removing %d: %s", what, len(names), ", ".join(names[:5]))
        FileSystems.delete(strays)
    return sorted(posixpath.basename(p) for p in strays)


# ---------------------------------------------------------------------------------- output safety
LOCK_NAME = "_RUNNING.json"
SUCCESS_NAME = "_SUCCESS"


def normalise_location(spec: str) -> str:
    """Absolute real path for a local spec, ``scheme://bucket/path`` (no ``..``, ``//`` or trailing
    slash) for a URL: two specs naming the same place compare equal."""
    spec = spec.strip()
    if spec.startswith("file://"):
        spec = spec[len("file://"):]
    if "://" in spec:
        scheme, rest = spec.split("://", 1)
        return f"{scheme.lower()}://{posixpath.normpath('/' + rest).lstrip('/')}".rstrip("/")
    return os.path.realpath(os.path.expanduser(spec or "."))


def _base_of(spec: str) -> str:
    """The file or folder a spec names; a glob is cut to the folder before its first wildcard."""
    cuts = [spec.find(ch) for ch in "*?[" if ch in spec]
    if not cuts:
        return spec
    head = spec[:min(cuts)]
    return head.rsplit("/", 1)[0] if "/" in head else "."


def _overlap(a: str, b: str) -> str | None:
    if a == b:
        return "is"
    if a.startswith(b.rstrip("/") + "/"):
        return "lies inside"
    if b.startswith(a.rstrip("/") + "/"):
        return "contains"
    return None


def check_io(output: str, inputs: Mapping[str, Any]) -> None:
    """Refuse (CliError) an ``output`` that is, contains or lies inside any input of ``inputs``
    (``{"--input": "a,b/*.parquet", "--robots": None, ...}``; a string is a comma list, or a list
    of strings), and an input folder that holds ``_RUNNING.json`` but no ``_SUCCESS``."""
    from apache_beam.io.filesystems import FileSystems

    from pipelines.cli import CliError

    out = normalise_location(output)
    for flag, specs in inputs.items():
        if isinstance(specs, str):
            specs = specs.split(",")
        for spec in [s.strip() for s in specs or [] if s and s.strip()]:
            base = _base_of(spec)
            how = _overlap(out, normalise_location(base))
            if how:
                raise CliError(f"--output {output} {how} {flag} {spec}: a stage never writes where it reads "
                               "(it could delete or mix with its own input); choose another --output")
            folder = base if not base.endswith(".parquet") else posixpath.dirname(base) or "."
            try:
                running = FileSystems.exists(join(folder, LOCK_NAME))
                done = FileSystems.exists(join(folder, SUCCESS_NAME))
            except Exception:  # noqa: BLE001 - an unreachable input is reported by the stage's lister
                continue
            if running and not done:
                raise CliError(f"{flag} {spec}: {join(folder, LOCK_NAME)} exists and {SUCCESS_NAME} does not: "
                               "the run writing it is still going or failed; wait for it, or rerun that stage")


def _relative(output: str, path: str) -> str:
    prefix = join(output, "")
    if not prefix.endswith("/"):
        prefix += "/"
    for candidate in (prefix, os.path.abspath(output) + "/"):
        if path.startswith(candidate):
            return path[len(candidate):]
    return path


def _read_json_or_none(path: str) -> Any:
    from apache_beam.io.filesystems import FileSystems

    try:
        if not FileSystems.exists(path):
            return None
        return read_json(path)
    except Exception:  # noqa: BLE001 - unreadable or half-written: described as such by the caller
        return {}


def _create_exclusive(path: str, info: Mapping[str, Any]) -> bool:
    data = (json.dumps(info, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(path):  # object stores: no exclusive create through Beam; best effort
        return False
    write_bytes_atomic(path, data)
    return (_read_json_or_none(path) or {}).get("run_id") == info["run_id"]


def _is_stale(lock: Mapping[str, Any]) -> bool:
    """A lock of a run that failed, or of a pid on this host that no longer exists."""
    if lock.get("state") == "failed":
        return True
    if lock.get("host") != socket.gethostname() or not isinstance(lock.get("pid"), int):
        return False
    try:
        os.kill(lock["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _list_all(folder: str) -> list[str]:
    """Every file below ``folder`` (recursive), sorted; empty when it does not exist."""
    return matching(folder, ["**"])


def _remove_tree(folder: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    left = _list_all(folder)
    if left:
        FileSystems.delete(left)
    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)
        parent = os.path.dirname(os.path.abspath(folder))
        if os.path.basename(parent) == STAGING_DIR:
            try:
                os.rmdir(parent)      # only when no other staged run is in it
            except OSError:
                pass


class StageOutput:
    """``with StageOutput(output, stage, patterns, overwrite, staged=True) as out: write into
    out.staging; out.commit()``.

    Entering takes the lock and refuses (or, unstaged, clears) earlier outputs; ``commit()`` moves
    the staged files matching ``patterns`` into place (through ``FileSystems.rename``: local,
    gs://, s3://), after removing the earlier run's ``_SUCCESS`` and files, then writes
    ``_SUCCESS`` listing the files and removes the lock.  A staged run therefore leaves an
    earlier complete output untouched until its own commit, and a crash before the commit leaves
    nothing under the final names.  Leaving on an exception without a commit marks the lock
    failed (or removes it when nothing was written) and deletes the staging folder; leaving
    normally without a commit only removes the lock."""

    def __init__(self, output: str, stage: str, patterns: Sequence[str], overwrite: bool,
                 break_lock: bool = False, staged: bool = False):
        self.output, self.stage, self.patterns = output, stage, tuple(patterns)
        self.overwrite, self.break_lock = overwrite, break_lock
        self.run_id = uuid.uuid4().hex
        self.lock_path = join(output, LOCK_NAME)
        self.success_path = join(output, SUCCESS_NAME)
        self.staging = join(output, STAGING_DIR, self.run_id) if staged else None
        self.committed = False
        self._committing = False
        self._took_over = False
        self._doomed: list[str] = []

    def __enter__(self) -> "StageOutput":
        self._acquire()
        try:
            self._prepare()
            if self.staging and "://" not in self.staging:
                os.makedirs(self.staging, exist_ok=True)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.committed:
            return
        if exc_type is None:  # a holder that writes no marker (pipelines all): just the lock
            if self.staging:
                _remove_tree(self.staging)
            self._release()
            return
        try:
            staged = _list_all(self.staging) if self.staging else []
            if staged or matching(self.output, self.patterns):
                info = {**self._info(), "state": "failed", "error": f"{exc_type.__name__}: {exc}"[:500]}
                write_json(self.lock_path, info)
            else:
                self._release()
            if self.staging and not self._committing:
                _remove_tree(self.staging)
        except Exception:  # noqa: BLE001 - never hide the run's own error
            pass

    def _info(self) -> dict:
        return {"stage": self.stage, "run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def _acquire(self) -> None:
        from apache_beam.io.filesystems import FileSystems

        from pipelines.cli import CliError

        lock = _read_json_or_none(self.lock_path)
        if lock is not None:
            stale = isinstance(lock, dict) and _is_stale(lock)
            same = isinstance(lock, dict) and lock.get("stage") == self.stage
            if not (self.break_lock or (stale and same and self.overwrite)):
                who = (f"a {lock.get('stage')} run (pid {lock.get('pid')} on {lock.get('host')}, started "
                       f"{lock.get('started')}{', failed' if lock.get('state') == 'failed' else ''})"
                       if isinstance(lock, dict) and lock else "an unreadable lock")
                hint = ("pass --overwrite to replace what it left" if stale and same else
                        "if no run is writing there any more, rerun with --break-lock (or delete the lock)")
                raise CliError(f"--output {self.output} is in use: {self.lock_path} holds {who}; {hint}")
            self._took_over = same or not lock
            FileSystems.delete([self.lock_path])
        if not _create_exclusive(self.lock_path, self._info()):
            raise CliError(f"--output {self.output} is in use: another run created {self.lock_path} just now")

    def _prepare(self) -> None:
        from apache_beam.io.filesystems import FileSystems

        from pipelines.cli import CliError

        existing = matching(self.output, self.patterns)
        rel = {_relative(self.output, p): p for p in existing}
        own: set[str] = set()
        success = _read_json_or_none(self.success_path)
        if success is not None:
            if not isinstance(success, dict) or success.get("stage") != self.stage:
                raise CliError(f"--output {self.output} holds the output of another stage "
                               f"({self.success_path}: {(success or {}).get('stage', 'unreadable')}); "
                               "choose another --output")
            own.update(success.get("files") or [])
        else:
            summary = _read_json_or_none(join(self.output, "summary.json"))
            if isinstance(summary, dict) and summary.get("stage") == self.stage:
                own.update(rel)  # a folder this stage wrote before the markers existed
        if self._took_over:
            own.update(rel)      # leftovers of this stage's own failed or broken-off run
        foreign = sorted(r for r in rel if r not in own)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" (+{len(foreign) - 3} more)" if len(foreign) > 3 else "")
            raise CliError(f"--output {self.output} holds {shown}, which no earlier {self.stage} run wrote; "
                           "a later stage would read it as this stage's output. Move it away or choose "
                           "another --output (--overwrite only removes files this stage wrote)")
        if existing and not self.overwrite:
            raise CliError(f"--output {self.output} already holds results of an earlier run "
                           f"({len(existing)} files); pass --overwrite or choose another directory")
        doomed = ([self.success_path] if success is not None else []) + existing
        if self._took_over:   # what a crashed staged run of this stage left
            doomed += _list_all(join(self.output, STAGING_DIR))
        if self.staging:      # kept until this run commits: a crash leaves the earlier output whole
            self._doomed = doomed
        elif doomed:
            FileSystems.delete(doomed)

    def commit(self) -> dict:
        """Move the staged files into place (earlier ones go first, ``_SUCCESS`` before them),
        write ``_SUCCESS`` (last), then drop the lock; returns what ``_SUCCESS`` holds."""
        from apache_beam.io.filesystems import FileSystems

        if self.staging:
            # From here on the staged files are the only complete copy: a failure must keep them
            # (the lock is marked failed; the next --overwrite run replaces what is left).
            self._committing = True
            gone = [p for p in self._doomed if FileSystems.exists(p)]
            if self.success_path in gone:   # on its own, first: a half commit never looks complete
                FileSystems.delete([self.success_path])
                gone.remove(self.success_path)
            if gone:
                FileSystems.delete(gone)
            moves = [(p, join(self.output, rel)) for p in _list_all(self.staging)
                     if _matches(rel := _relative(self.staging, p), self.patterns)]
            if "://" not in self.output:
                for parent in sorted({os.path.dirname(os.path.abspath(dst)) for _, dst in moves}):
                    os.makedirs(parent, exist_ok=True)
            if moves:
                FileSystems.rename([src for src, _ in moves], [dst for _, dst in moves])
            _remove_tree(self.staging)
        files = [_relative(self.output, p) for p in matching(self.output, self.patterns)]
        # No run id or time: the marker is part of the output, byte-identical on 1 vs 2 workers.
        marker = {"stage": self.stage, "files": files}
        write_json(self.success_path, marker)
        self.committed = True
        self._release()
        return marker

    def _release(self) -> None:
        from apache_beam.io.filesystems import FileSystems

        lock = _read_json_or_none(self.lock_path)
        if isinstance(lock, dict) and lock.get("run_id") == self.run_id:
            FileSystems.delete([self.lock_path])


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    import re

    from apache_beam.io.filesystem import FileSystem

    return any(re.match(FileSystem.translate_pattern(p), rel) for p in patterns)


def run_stage(args, stage: str, patterns: Sequence[str], run_job) -> dict:
    """Run one stage's job holding ``args.output``: lock, refuse foreign or (without --overwrite)
    earlier outputs, run, read the ``summary.json`` the job wrote, commit; returns the summary.

    ``run_job(target)`` writes into ``target``, a staging folder (``OUTPUT/_uncommitted/<run id>``)
    whose files the commit moves into ``args.output``: a crash leaves no half output under the
    final names."""
    with StageOutput(args.output, stage, patterns, getattr(args, "overwrite", False),
                     getattr(args, "break_lock", False), staged=True) as claim:
        run_job(claim.staging)
        summary = read_json(join(claim.staging, "summary.json"))
        claim.commit()
    return summary
