"""Shared test fixtures.

The real reference data lives beside the checkout in ``../shared/data`` (never copied into
the repo).  ``CORPUS_SHARED_DATA`` overrides the location; tests that need it skip with a
message saying where they looked.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    return Path(os.environ.get("CORPUS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared test data not found at {root} (set CORPUS_SHARED_DATA to its path)")
    return root


def require_shared(relpath: str) -> Path:
    """Path of one shared file, or skip the calling test with a clear message."""
    path = shared_data_dir() / relpath
    if not path.exists():
        pytest.skip(f"shared test file {relpath} not found under {shared_data_dir()} "
                    "(set CORPUS_SHARED_DATA to the shared/data folder)")
    return path


@pytest.fixture(scope="session")
def realweb_extracted() -> tuple[Mapping[str, str], ...]:
    """``{"key", "url", "text"}`` of every page the extract stage keeps from the realweb WARC with
    the default config (``bench.bench_signals.extracted_pages``), extracted once per test session
    (~35 CPU-s) for the signal, PII and toxicity equivalence tests; read-only, so that no test
    changes what the others read.  Skips when the WARC is missing."""
    from bench.bench_signals import extracted_pages

    return tuple(MappingProxyType(page) for page in extracted_pages(require_shared("realweb/realweb.warc.gz")))


@pytest.fixture(autouse=True, scope="session")
def _model_cache_in_a_temporary_folder(tmp_path_factory):
    """The toxicity model's converted arrays (filters/toxicity.py) are cached under
    ``$XDG_CACHE_HOME``: the tests (and the CLI runs they start) use a folder of their own, not the
    user's home."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
