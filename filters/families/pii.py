"""PII family: ``pii_counts`` (matches by enabled type, zeros included, before redaction) and
``pii_total``.  No filter: refine redacts kept text instead (``redact``, when ``pii.redact``)."""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

from filters import pii
from filters.family import Context, SignalFamily


def _settings(cfg: Mapping[str, Any]) -> tuple[dict, dict | None]:
    pii_cfg = cfg.get("pii") or {}
    return dict(pii_cfg.get("placeholders") or {}), pii_cfg.get("phone_regions_by_language")


def pii_counts(text: str, url: str | None, lang: str | None, cfg: Mapping[str, Any]) -> dict[str, int]:
    """PII matches by enabled type, zeros included."""
    placeholders, regions = _settings(cfg)
    enabled = pii.enabled_types(placeholders)
    region = pii.region_hint_for(url, lang, regions)
    counts = {t: 0 for t in enabled}
    for kind, _, _ in pii.find_pii(text, enabled, region):
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def redact(text: str, url: str | None, lang: str | None, cfg: Mapping[str, Any]) -> tuple[str, dict[str, int]]:
    """``filters.pii.redact`` with the configured placeholders and the page's phone region."""
    placeholders, regions = _settings(cfg)
    new_text, counts = pii.redact(text, placeholders or None, pii.region_hint_for(url, lang, regions))
    return new_text, {str(k): int(v) for k, v in sorted(counts.items()) if v}


def _compute(text: str, ctx: Context) -> dict[str, Any]:
    counts = pii_counts(text, ctx.doc.get("url") or "", ctx.signals.get("lang"), ctx.cfg)
    return {"pii_counts": counts, "pii_total": sum(counts.values())}


FAMILY = SignalFamily(
    name="pii",
    fields=(pa.field("pii_counts", pa.map_(pa.string(), pa.int32())),   # before redaction, by type
            pa.field("pii_total", pa.int32())),
    compute=_compute,
    config_keys=("pii.placeholders", "pii.phone_regions_by_language", "pii.redact"),
    sections=("pii",),
    version_keys=("pii.placeholders", "pii.phone_regions_by_language"),
    # True: PII counted (kept so that the hash of stored signals stays what it was)
    version=lambda cfg: {"pii": [True, (cfg.get("pii") or {}).get("placeholders"),
                                 (cfg.get("pii") or {}).get("phone_regions_by_language")]},
)
