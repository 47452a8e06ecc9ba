"""``expand_inputs``: turn a user's input spec into the sorted list of WARC/ARC files it names."""
from __future__ import annotations

import fnmatch
import glob
import os

from .errors import InputError
from .opener import local_path
from .settings import SourceSettings

# What a directory or a bare prefix contributes: the archive formats the extractor reads.
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
_GLOB_CHARS = "*?["


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _has_glob(text: str) -> bool:
    return any(c in text for c in _GLOB_CHARS)


def expand_inputs(spec: str, settings: SourceSettings) -> list[str]:
    """Sorted, de-duplicated paths/URLs named by ``spec``.

    ``spec`` is a comma-separated list of: a local file; a local directory (every *.warc,
    *.warc.gz, *.arc, *.arc.gz below it); a local glob (``**`` recurses); an s3:// key, glob or
    prefix; a gs:// path or glob; an http(s):// URL (kept as given, not probed).  Globs return
    whatever they match; directories and prefixes return archives only.  In s3:// globs ``*``
    also matches ``/`` (fnmatch semantics).  Every part must match something, otherwise
    InputError names it - a typo in one part of a list should not silently shrink the run.
    """
    parts = [p.strip() for p in (spec or "").split(",") if p.strip()]
    if not parts:
        raise InputError(f"empty input spec {spec!r}: give a path, glob, s3:// or gs:// URL, "
                         "or a comma-separated list of them")
    found: set[str] = set()
    for part in parts:
        matched = _expand_one(part, settings)
        if not matched:
            raise InputError(_nothing_matched(part, spec))
        found.update(matched)
    return sorted(found)


def _nothing_matched(part: str, spec: str) -> str:
    where = f" (in input spec {spec!r})" if part != spec else ""
    if part.startswith("s3://"):
        hint = ("check the bucket, prefix and pattern, the S3 endpoint (s3_endpoint_url / "
                "AWS_ENDPOINT_URL) and credentials; prefixes only yield *.warc[.gz]/*.arc[.gz] keys")
    elif part.startswith("gs://"):
        hint = "check the bucket and pattern and that apache-beam[gcp] is installed with credentials"
    else:
        hint = ("check that the path exists and is readable; directories only yield "
                "*.warc, *.warc.gz, *.arc and *.arc.gz files")
    return f"input {part!r}{where} matched no files: {hint}"


def _expand_one(part: str, settings: SourceSettings) -> list[str]:
    if part.startswith(("http://", "https://")):
        return [part]
    if part.startswith("s3://"):
        return _expand_s3(part, settings)
    if part.startswith("gs://"):
        return _expand_beam(part)
    if "://" in part and not part.startswith("file://"):
        raise InputError(f"unsupported URL scheme in input {part!r} (use a path, file://, s3://, "
                         "gs://, http:// or https://)")
    return _expand_local(local_path(part))


def _expand_local(path: str) -> list[str]:
    path = os.path.expanduser(path)
    if os.path.isfile(path):
        return [os.path.abspath(path)]
    if os.path.isdir(path):
        out = []
        for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
            dirnames.sort()
            out.extend(os.path.join(dirpath, f) for f in filenames if is_archive_name(f))
        return [os.path.abspath(p) for p in out]
    if _has_glob(path):
        return [os.path.abspath(p) for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
    return []


def _expand_s3(url: str, settings: SourceSettings) -> list[str]:
    from .s3 import list_keys, split_s3_url

    bucket, key = split_s3_url(url)
    if _has_glob(key):
        literal = key[:min(key.index(c) for c in _GLOB_CHARS if c in key)]
        return [f"s3://{bucket}/{k}" for k in list_keys(bucket, literal, settings)
                if fnmatch.fnmatchcase(k, key)]
    keys = list(list_keys(bucket, key, settings))
    if key and key in keys:
        return [url]  # an exact object; siblings that merely share the prefix are not wanted
    prefix = key if (not key or key.endswith("/")) else key + "/"
    return [f"s3://{bucket}/{k}" for k in keys if k.startswith(prefix) and is_archive_name(k)]


def _expand_beam(url: str) -> list[str]:
    try:
        from apache_beam.io.filesystems import FileSystems
    except ImportError as error:  # pragma: no cover - Beam is a hard dependency
        raise InputError(f"cannot list {url}: apache_beam is not importable") from error
    if _has_glob(url):
        patterns = [url]
    elif url.endswith("/"):
        patterns = [url + "**"]
    else:
        patterns = [url, url + "/**"]
    try:
        results = FileSystems.match(patterns)
    except ValueError as error:
        raise InputError(f"cannot list {url}: Beam has no filesystem for this scheme here "
                         "(for gs:// install apache-beam[gcp])") from error
    if len(patterns) == 1:
        paths = [m.path for m in results[0].metadata_list]
        return paths if _has_glob(url) else [p for p in paths if is_archive_name(p)]
    exact = [m.path for m in results[0].metadata_list]
    if exact:
        return exact
    return [m.path for m in results[1].metadata_list if is_archive_name(m.path)]
