"""Every stage's ``--input``: one listing rule and one Parquet reader, through Beam's FileSystems
(local paths, gs://, s3://).

Listing rule (:func:`list_inputs`; refine, dedup, tokenize, tokenizer training, the report):

* ``--input`` is a comma-separated list; each item is a file, a folder or a glob;
* a folder means its top-level ``*.parquet`` files (not recursive: refine keeps removed documents
  in ``DIR/removed/``, which must never be read as kept ones);
* a glob is matched with Beam's rules (``*`` stays inside one folder, ``**`` crosses folders) and
  keeps the matches whose name ends in ``.parquet``; where it crosses folders (``**``, or ``*`` in
  a folder's name) it does not
  enter a hidden folder (``_uncommitted/``: a run's staged, uncommitted files) nor a subfolder of
  a stage's output (a folder with this project's ``_SUCCESS``: ``removed/``, ``dead-letter/``,
  ``rejected/`` hold what a stage did not keep) -- name such a folder before the glob to read it;
* a named file is taken as it is;
* hidden names are skipped in folders and globs: a name starting with ``_`` or ``.`` (Hadoop and
  Spark markers and temporaries, this project's ``.NAME.tmp-*`` files) -- unless the folder's
  ``_SUCCESS`` marker (written by a stage of this project) lists the file, so the output of
  ``extract`` over ``_x.warc.gz`` is read like any other;
* duplicates are read once; the list is sorted; an item that matches nothing is a one-line
  ``CliError`` (exit 2) naming the item.

Reader (:func:`read_parquet`): one file, a record batch at a time, only the wanted columns it
has; a file that cannot be opened, lacks a required column or breaks half-way ends the stream
with one ``("problem", Problem)`` item instead of raising, so each stage turns it into a dead
letter (or a noted problem, in the report) and keeps going.  :func:`iter_documents` is the
reader for the stages that only need ``(row, doc_id, url, text)``.
"""
from __future__ import annotations

import json
import posixpath
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from pipelines.cli import CliError

GLOB_CHARS = "*?["
HIDDEN_PREFIXES = ("_", ".")
SUCCESS_NAME = "_SUCCESS"


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _split(spec: str | Sequence[str]) -> list[str]:
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return [p.strip() for p in parts if p and p.strip()]


def _basename(path: str) -> str:
    return posixpath.basename(path.replace("\\", "/").rstrip("/"))


def _dirname(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[0] if "/" in path.replace("\\", "/") else "."


def _success_marker(folder: str, cache: dict) -> set[str] | None:
    """Top-level names the ``_SUCCESS`` of ``folder`` lists; None when it has none of ours (an
    empty or foreign -- Spark -- marker lists nothing)."""
    if folder not in cache:
        names: set[str] | None = None
        try:
            path = _fs().join(folder, SUCCESS_NAME)
            if _fs().exists(path):
                with _fs().open(path) as fh:
                    marker = json.loads(fh.read().decode("utf-8"))
                if isinstance(marker, dict) and isinstance(marker.get("files"), list):
                    names = {f for f in marker["files"] if isinstance(f, str) and "/" not in f}
        except Exception:  # noqa: BLE001 - an empty or foreign (Spark) _SUCCESS lists nothing
            names = None
        cache[folder] = names
    return cache[folder]


def _listed_by_success(folder: str, cache: dict) -> set[str]:
    return _success_marker(folder, cache) or set()


def _crossed_folders_allowed(path: str, pattern: str, cache: dict) -> bool:
    """False when the part of ``path`` that a glob matched passes through a hidden folder or a
    subfolder of a stage's output (see the listing rule).  Beam keeps the pattern's spelling in
    the paths it returns; a path that does not start with the pattern's fixed folder is let be."""
    norm, pat = path.replace("\\", "/"), pattern.replace("\\", "/")
    fixed = pat[:min(i for i, c in enumerate(pat) if c in GLOB_CHARS)]
    folder = (fixed.rsplit("/", 1)[0] or "/") if "/" in fixed else "."
    if folder != ".":
        prefix = folder if folder.endswith("/") else folder + "/"
        if not norm.startswith(prefix):
            return True
        norm = norm[len(prefix):]
    for segment in norm.split("/")[:-1]:
        if segment in ("", "."):
            continue        # "./x" or "a//b": no folder crossed
        if segment.startswith(HIDDEN_PREFIXES) or _success_marker(folder, cache) is not None:
            return False
        folder = segment if folder == "." else posixpath.join(folder, segment)
    return True


def visible(path: str, cache: dict) -> bool:
    """Whether a file found in a folder passes the hidden-name rule (``cache``: one dict per listing,
    it holds the ``_SUCCESS`` markers read)."""
    name = _basename(path)
    return not name.startswith(HIDDEN_PREFIXES) or name in _listed_by_success(_dirname(path), cache)


def _match(pattern: str, flag: str) -> list[str]:
    try:
        return [m.path for m in _fs().match([pattern])[0].metadata_list]
    except Exception as exc:  # noqa: BLE001 - Beam raises BeamIOError for a missing bucket or folder
        if "://" not in pattern and not any(c in pattern for c in GLOB_CHARS):
            return []
        raise CliError(f"{flag} {pattern}: cannot list it ({str(exc).splitlines()[0][:200]})") from None


def expand_item(item: str, flag: str = "--input", cache: dict | None = None) -> tuple[str, list[str]]:
    """(the pattern looked for, the Parquet files) of one ``--input`` item, by the rule above."""
    cache = {} if cache is None else cache
    if any(c in item for c in GLOB_CHARS):
        found = [p for p in _match(item, flag) if p.endswith(".parquet")]
        return item, [p for p in found if visible(p, cache) and _crossed_folders_allowed(p, item, cache)]
    if item.endswith(".parquet"):
        return item, _match(item, flag)
    if "://" not in item:
        import os

        if os.path.isfile(item):
            return item, [item]
    pattern = _fs().join(item, "*.parquet")
    return pattern, [p for p in _match(pattern, flag) if visible(p, cache)]


def list_parquet(spec: str | Sequence[str]) -> list[str]:
    """The Parquet files of ``spec`` by the rule above; an empty list when nothing matches."""
    cache: dict = {}
    files: set[str] = set()
    for item in _split(spec):
        try:
            files.update(expand_item(item, cache=cache)[1])
        except CliError:
            continue
    return sorted(files)


def list_inputs(spec: str | Sequence[str], flag: str = "--input") -> list[str]:
    """The Parquet files named by ``spec`` (a comma list of files, folders and globs), sorted;
    ``CliError`` (one line, exit 2) for an item that matches nothing or cannot be listed."""
    items = _split(spec)
    if not items:
        raise CliError(f"{flag}: no file, folder or glob given")
    cache: dict = {}
    files: set[str] = set()
    for item in items:
        pattern, found = expand_item(item, flag, cache)
        if not found:
            raise CliError(f"{flag} {item}: no Parquet files match {pattern} (no .parquet files there; names "
                           "starting with _ or . are skipped unless the folder's _SUCCESS lists them)")
        files.update(found)
    return sorted(files)


# ---------------------------------------------------------------------------------------- reading
class Problem(NamedTuple):
    """Why a file stopped being read: ``unreadable_file`` (not Parquet, vanished, no access),
    ``missing_columns`` (``detail`` names them) or ``corrupt_file`` (after ``row`` rows)."""
    reason: str
    row: int | None
    detail: str
    missing: tuple = ()


def read_parquet(path: str, columns: Iterable[str] | None = None, *, required: Sequence[str] = (),
                 batch_rows: int = 2048) -> Iterator[tuple[str, Any]]:
    """``("schema", pa.Schema)`` once, then ``("batch", pa.RecordBatch)`` for each batch of the
    ``columns`` the file has (all columns when None; in the file's order), or a final
    ``("problem", Problem)``.  Never raises for a bad file."""
    import pyarrow.parquet as pq

    try:
        fh = _fs().open(path)
    except Exception as exc:  # noqa: BLE001 - missing, no access
        yield "problem", Problem("unreadable_file", None, f"{type(exc).__name__}: {exc}"[:500])
        return
    try:
        try:
            pfile = pq.ParquetFile(fh)
        except Exception as exc:  # noqa: BLE001 - not Parquet
            yield "problem", Problem("unreadable_file", None, f"{type(exc).__name__}: {exc}"[:500])
            return
        schema = pfile.schema_arrow
        names = schema.names
        missing = tuple(c for c in required if c not in names)
        if missing:
            yield "problem", Problem("missing_columns", None, f"missing {', '.join(missing)}; columns: {sorted(names)}",
                                     missing)
            return
        yield "schema", schema
        wanted = None if columns is None else set(columns)
        cols = names if wanted is None else [n for n in names if n in wanted]
        row = 0
        try:
            for batch in pfile.iter_batches(batch_size=batch_rows, columns=cols):
                yield "batch", batch
                row += batch.num_rows
        except Exception as exc:  # noqa: BLE001 - a corrupt row group: what was read stands
            yield "problem", Problem("corrupt_file", row, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        fh.close()


def iter_documents(path: str, batch_rows: int = 2048) -> Iterator[tuple[str, Any]]:
    """``("doc", (row, doc_id or None, url or None, text as stored))`` for every row of a file with
    a ``text`` column (rows numbered from 0 in file order), or a final ``("problem", Problem)``."""
    row = 0
    for kind, value in read_parquet(path, ("text", "doc_id", "url"), required=("text",), batch_rows=batch_rows):
        if kind == "batch":
            data = value.to_pydict()
            n = value.num_rows
            ids, urls = data.get("doc_id") or [None] * n, data.get("url") or [None] * n
            for doc_id, url, text in zip(ids, urls, data["text"]):
                yield "doc", (row, doc_id, url, text)
                row += 1
        elif kind == "problem":
            yield kind, value
