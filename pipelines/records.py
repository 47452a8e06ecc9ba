"""From one WARC record to a document, a drop reason, or a dead-letter entry.

Every record read ends in exactly one outcome, so a run can prove that records in = kept +
dropped + dead-lettered.  Drops are expected (requests, redirects, PDFs, tiny pages); dead letters
are failures (corrupt data, undecodable bytes, extractor errors) that someone may want to inspect.
No Beam import: the extract stage wires these functions into DoFns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pipelines.charset import UndecodableError, decode_html, utf8_of
from pipelines.html_text import ExtractionError, ExtractionTimeout, Extractor
from pipelines import writers
from pipelines.schema import record_doc_id
from pipelines.warc import RawRecord, ReadError

KEPT, DROPPED, DEAD = "kept", "dropped", "dead_letter"

_SNIFF = (b"<!doctype html", b"<html", b"<head", b"<body")


@dataclass
class Outcome:
    status: str                       # kept | dropped | dead_letter
    reason: str
    doc: dict | None = None
    dead: dict | None = None


def mime_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime or None


def skip_reason(record: RawRecord, cfg: Mapping[str, Any]) -> str | None:
    """Why this record is not a candidate document, judged from headers alone (None = candidate)."""
    if record.rec_type != "response":
        return f"record_type:{record.rec_type}"
    if record.http_status is None:
        return "no_http_status"
    if record.http_status != 200:
        return f"http_status:{record.http_status}"
    html_types = set(cfg["html_types"])
    http_type = mime_type(record.header("Content-Type"))
    identified = mime_type(record.identified_type)
    # Both must agree when both are present: servers label PDFs and images text/html often enough.
    if (http_type and http_type not in html_types) or (identified and identified not in html_types):
        return "not_html"
    if record.truncated and cfg["drop_truncated"]:
        return "truncated"
    if record.length is not None and record.length > cfg["max_payload_bytes"]:
        return "payload_too_large"
    return None


def want_body(cfg: Mapping[str, Any]):
    def wanted(record: RawRecord) -> bool:
        return skip_reason(record, cfg) is None
    return wanted


def dead_letter(record: RawRecord | None, stage: str, reason: str, detail: str,
                error: ReadError | None = None) -> dict:
    """The dead letter of a WARC record (or of an unreadable region: ``error``), in the one shape."""
    src = error or record
    if error is not None and error.skipped_bytes is not None:
        detail = f"{detail} (skipped {error.skipped_bytes} bytes)"
    return writers.dead_letter(stage, reason, detail, file=src.warc_file, warc_file=src.warc_file,
                               warc_offset=src.offset, warc_record_id=getattr(src, "record_id", None),
                               url=getattr(src, "target_uri", None))


def read_error_outcome(error: ReadError) -> Outcome:
    return Outcome(DEAD, error.reason, dead=dead_letter(None, "read", error.reason, error.detail, error))


def header_outcome(record: RawRecord, cfg: Mapping[str, Any]) -> Outcome | None:
    """The outcome decided before extraction, or None if the record goes on to extraction."""
    reason = skip_reason(record, cfg)
    if reason is not None:
        return Outcome(DROPPED, reason)
    if record.body is None:
        decode_error = record.decode_error
        if decode_error:
            reason = record.decode_reason or "bad_content_encoding"  # or decoded_too_large
            return Outcome(DEAD, reason, dead=dead_letter(record, "read", reason, decode_error))
        return Outcome(DROPPED, "payload_too_large")
    if not (mime_type(record.header("Content-Type")) or mime_type(record.identified_type)):
        if not record.body[:1024].lstrip().lower().startswith(_SNIFF):
            return Outcome(DROPPED, "not_html")
    return None


def extract_document(record: RawRecord, cfg: Mapping[str, Any], extractor: Extractor,
                     meta_consent=None) -> Outcome:
    """Decode and extract one candidate record (``header_outcome`` returned None for it)."""
    try:
        html, codec, source = decode_html(record.body or b"", record.header("Content-Type"),
                                          cfg["min_charset_confidence"])
    except UndecodableError as exc:
        return Outcome(DEAD, "undecodable", dead=dead_letter(record, "decode", "undecodable", str(exc)))
    url = record.target_uri or ""
    try:
        extracted = extractor.extract(html, url, utf8_of(record.body or b"", codec, source))
    except ExtractionTimeout as exc:
        return Outcome(DEAD, "extractor_timeout",
                       dead=dead_letter(record, "extract", "extractor_timeout", str(exc)))
    except ExtractionError as exc:
        return Outcome(DEAD, "extractor_error", dead=dead_letter(record, "extract", "extractor_error", str(exc)))
    text = extracted.text.strip()
    if not text:
        return Outcome(DROPPED, "empty_extraction")
    if len(text) < cfg["min_text_chars"]:
        return Outcome(DROPPED, "too_short")
    consent = meta_consent(html) if meta_consent else {}
    x_robots = record.headers_all("X-Robots-Tag")
    doc = {
        "doc_id": record_doc_id(record.record_id, record.warc_file, record.offset),
        "url": url,
        "text": text,
        "title": extracted.title,
        "warc_file": record.warc_file,
        "warc_record_id": record.record_id,
        "warc_offset": record.offset,
        "fetch_date": record.fetch_datetime(),
        "content_type": record.header("Content-Type") or record.identified_type,
        "charset": codec,
        "charset_source": source,
        "html_bytes": len(record.body or b""),
        "text_chars": len(text),
        "x_robots_tag": ", ".join(x_robots) if x_robots else None,
        "meta_robots": consent.get("meta_robots"),
        "tdm_reservation": consent.get("tdm_reservation") or record.header("TDM-Reservation"),
    }
    return Outcome(KEPT, "kept", doc=doc)
