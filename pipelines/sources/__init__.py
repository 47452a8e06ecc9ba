"""Input sources: where WARC files come from (local, s3://, http(s)://, gs://, Common Crawl snapshots).

No Apache Beam import at module import time; Beam is only loaded for gs:// (and other Beam-only
schemes), inside the functions that need it.
"""
from .errors import InputError, ObjectChangedError, RetriesExhaustedError
from .listing import ARCHIVE_SUFFIXES, expand_inputs
from .opener import open_binary
from .settings import SourceSettings
from .snapshot import LISTING_FILES, latest_snapshot, resolve_snapshot, validate_snapshot_id

__all__ = [
    "ARCHIVE_SUFFIXES", "InputError", "LISTING_FILES", "ObjectChangedError",
    "RetriesExhaustedError", "SourceSettings", "expand_inputs", "latest_snapshot", "open_binary",
    "resolve_snapshot", "validate_snapshot_id",
]
