"""Named numpy arrays cached on local disk, keyed and checked: what a model costs once per machine.

``write_arrays(path, key, arrays)`` stores the arrays as an uncompressed .npz with ``key`` (what
they were made from: package versions, source files' sha256) and a sha256 digest of every array,
atomically (temporary file + rename), so parallel workers never read half a file.
``read_arrays(path, key)`` gives them back, or None when the file is missing, was made from
something else (stale) or is damaged (unreadable, digest mismatch): the caller rebuilds from the
source, never trusts a bad file and never fails because of one.  ``default_cache_dir()`` is
``$XDG_CACHE_HOME/corpus-pipeline``.  Pure logic and numpy.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

_log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/corpus-pipeline`` (``~/.cache/corpus-pipeline``; the temporary directory
    when there is no home)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (KeyError, RuntimeError):
            base = tempfile.gettempdir()
    return Path(base) / "corpus-pipeline"


def arrays_digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(f"{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def read_arrays(path: Path, key: str) -> dict | None:
    """The arrays cached in ``path`` for ``key``, or None (missing, stale or damaged)."""
    try:
        if not path.is_file():   # (is_file raises when a folder on the way cannot be entered)
            return None
    except OSError:
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        if str(arrays.pop("key")) != key:
            _log.info("cache %s is stale; rebuilding", path)
            return None
        digest = str(arrays.pop("digest"))
        if digest != arrays_digest(arrays):
            raise ValueError("digest mismatch")
        return arrays
    except Exception as exc:  # any damage means: rebuild from the source
        _log.warning("cache %s is unreadable (%s: %s); rebuilding", path, type(exc).__name__, exc)
        return None


def write_arrays(path: Path, key: str, arrays: dict) -> None:
    """Atomic write of ``arrays`` (name -> numpy array) with ``key`` and their digest."""
    arrays = {**arrays, "digest": np.array(arrays_digest(arrays)), "key": np.array(key)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
