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
Not done: writing into a staging folder and renaming it into place at the end.
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import socket
import time
import uuid
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                       write_statistics=True, row_group_size=10_000)


def join(base: str, *parts: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(base, *parts)


def write_bytes_atomic(path: str, data: bytes) -> None:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    if "://" in path:
        parent, name = posixpath.split(path)
    else:
        parent, name = os.path.split(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    tmp = FileSystems.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def parquet_bytes(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> bytes:
    table = pa.Table.from_pylist(list(rows), schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, **PARQUET_OPTIONS)
    return buf.getvalue()


def write_parquet(path: str, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> int:
    write_bytes_atomic(path, parquet_bytes(rows, schema))
    return len(rows)


def jsonl_bytes(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
                    for r in rows)


def write_json(path: str, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def read_json(path: str) -> Any:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return json.loads(fh.read().decode("utf-8"))


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


class StageOutput:
    """``with StageOutput(output, stage, patterns, overwrite) as out: ...; out.commit()``.

    Entering takes the lock and clears (or refuses) earlier outputs; ``commit()`` writes
    ``_SUCCESS`` listing the files matching ``patterns`` and removes the lock.  Leaving on an
    exception without a commit marks the lock failed, or removes it when nothing was written yet;
    leaving normally without a commit only removes the lock."""

    def __init__(self, output: str, stage: str, patterns: Sequence[str], overwrite: bool,
                 break_lock: bool = False):
        self.output, self.stage, self.patterns = output, stage, tuple(patterns)
        self.overwrite, self.break_lock = overwrite, break_lock
        self.run_id = uuid.uuid4().hex
        self.lock_path = join(output, LOCK_NAME)
        self.success_path = join(output, SUCCESS_NAME)
        self.committed = False
        self._took_over = False

    def __enter__(self) -> "StageOutput":
        self._acquire()
        try:
            self._prepare()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.committed:
            return
        if exc_type is None:  # a holder that writes no marker (pipelines all): just the lock
            self._release()
            return
        try:
            if matching(self.output, self.patterns):
                info = {**self._info(), "state": "failed", "error": f"{exc_type.__name__}: {exc}"[:500]}
                write_json(self.lock_path, info)
            else:
                self._release()
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
        doomed = existing + ([self.success_path] if success is not None else [])
        if doomed:
            FileSystems.delete(doomed)

    def commit(self) -> dict:
        """Write ``_SUCCESS`` (last), then drop the lock; returns what ``_SUCCESS`` holds."""
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


def run_stage(args, stage: str, patterns: Sequence[str], run_job) -> dict:
    """Run one stage's job holding ``args.output`` (lock, clear earlier outputs of this stage, run,
    read the ``summary.json`` the job wrote, commit ``_SUCCESS``); returns the summary."""
    with StageOutput(args.output, stage, patterns, getattr(args, "overwrite", False),
                     getattr(args, "break_lock", False)) as claim:
        run_job()
        summary = read_json(join(args.output, "summary.json"))
        claim.commit()
    return summary
