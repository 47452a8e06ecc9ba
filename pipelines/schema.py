"""The document schema, defined once.

Every stage reads and writes Parquet with these columns.  Later stages add signal columns
(language, quality, toxicity, PII counts, dedup cluster); ``extend`` builds those schemas so the
core fields keep one definition.  No Beam import here.

Document ids, one policy for every stage: ``record_doc_id`` (extract: record id + WARC basename +
offset) here, and the fallback for rows without an id, ``row_doc_id`` (url + text), in
``tokenization.dochash`` (re-exported here) so that tokenizer training uses the same function.
"""
from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from tokenization.dochash import doc_id_for, row_doc_id  # noqa: F401  (the row fallback lives with the hash)

TIMESTAMP = pa.timestamp("us", tz="UTC")

DOC_FIELDS: list[pa.Field] = [
    pa.field("doc_id", pa.string(), nullable=False),        # stable, unique id: record_doc_id / row_doc_id
    pa.field("url", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("warc_file", pa.string()),
    pa.field("warc_record_id", pa.string()),
    pa.field("warc_offset", pa.int64()),                     # byte offset of the record in warc_file
    pa.field("fetch_date", TIMESTAMP),
    pa.field("content_type", pa.string()),                   # HTTP Content-Type (or identified type)
    pa.field("charset", pa.string()),                        # codec the HTML was decoded with
    pa.field("charset_source", pa.string()),                 # header | meta | bom | detected | utf8-valid | utf8-mostly | ascii
    pa.field("html_bytes", pa.int64()),
    pa.field("text_chars", pa.int64()),
    # Raw consent signals, interpreted by filters.consent in the refine stage.
    pa.field("x_robots_tag", pa.string()),
    pa.field("meta_robots", pa.string()),
    pa.field("tdm_reservation", pa.string()),
]

DOC_SCHEMA = pa.schema(DOC_FIELDS)

# Dead letters have one shape for every stage: pipelines.writers.dead_letter (JSON lines).

REQUIRED_INPUT_COLUMNS = ("url", "text")


def extend(extra: Iterable[pa.Field], base: pa.Schema = DOC_SCHEMA) -> pa.Schema:
    """``base`` plus ``extra`` signal fields (a name already in ``base`` is an error)."""
    schema = base
    for field in extra:
        if schema.get_field_index(field.name) >= 0:
            raise ValueError(f"field {field.name!r} already in the schema")
        schema = schema.append(field)
    return schema


# --- document ids: the one policy every stage uses ---------------------------------------------

def warc_basename(warc_file: str) -> str:
    """The file name of a WARC path or URL: the same for s3://, gs://, https:// and local copies."""
    if "://" in warc_file:
        warc_file = warc_file.split("#", 1)[0].split("?", 1)[0]
    return warc_file.rstrip("/").rsplit("/", 1)[-1]


def record_doc_id(record_id: str | None, warc_file: str, offset: int) -> str:
    """The doc_id of the record at byte ``offset`` of ``warc_file`` (extract).

    Unique per record even when WARC-Record-IDs repeat (real crawls and concatenated files have
    duplicates): the key is record id + file name + offset.  Stable across runs, and across
    sources of the same file, because it uses the file's basename, not its path or URL.
    """
    return doc_id_for(f"{record_id or ''}\x00{warc_basename(warc_file)}\x00{offset}")
