"""The document schema, defined once.

Every stage reads and writes Parquet with these columns.  Later stages add signal columns
(language, quality, toxicity, PII counts, dedup cluster); ``extend`` builds those schemas so the
core fields keep one definition.  No Beam import here: filters/ and tokenization/ may use it.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

DOC_FIELDS: list[pa.Field] = [
    pa.field("doc_id", pa.string(), nullable=False),        # stable id (hash of WARC record id)
    pa.field("url", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("warc_file", pa.string()),
    pa.field("warc_record_id", pa.string()),
    pa.field("warc_offset", pa.int64()),                     # byte offset of the record in warc_file
    pa.field("fetch_date", TIMESTAMP),
    pa.field("content_type", pa.string()),                   # HTTP Content-Type (or identified type)
    pa.field("charset", pa.string()),                        # codec the HTML was decoded with
    pa.field("charset_source", pa.string()),                 # header | meta | bom | detected | utf8-valid
    pa.field("html_bytes", pa.int64()),
    pa.field("text_chars", pa.int64()),
    # Raw consent signals, interpreted by filters.consent in the refine stage.
    pa.field("x_robots_tag", pa.string()),
    pa.field("meta_robots", pa.string()),
    pa.field("tdm_reservation", pa.string()),
]

DOC_SCHEMA = pa.schema(DOC_FIELDS)

DEAD_LETTER_FIELDS: list[pa.Field] = [
    pa.field("warc_file", pa.string()),
    pa.field("warc_offset", pa.int64()),
    pa.field("warc_record_id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("stage", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
]
DEAD_LETTER_SCHEMA = pa.schema(DEAD_LETTER_FIELDS)

REQUIRED_INPUT_COLUMNS = ("url", "text")


def extend(extra: Iterable[pa.Field], base: pa.Schema = DOC_SCHEMA) -> pa.Schema:
    """``base`` plus ``extra`` signal fields (a name already in ``base`` is an error)."""
    schema = base
    for field in extra:
        if schema.get_field_index(field.name) >= 0:
            raise ValueError(f"field {field.name!r} already in the schema")
        schema = schema.append(field)
    return schema


def doc_id_for(key: str) -> str:
    """Stable 16-hex-digit document id from a WARC record id (or any unique key)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
