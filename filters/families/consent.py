"""Consent family: page opt-out flags from X-Robots-Tag, <meta name="robots"> and TDM
reservations (``filters.consent.page_signals``, scoped to ``consent.agents``).  Filter
``consent``: the first opt-out of ``consent.drop_on`` that applies (``robots`` reads the
``robots_disallowed_agents`` column the refine stage joins from robots.txt)."""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

from filters.family import Context, Filter, SignalFamily


def _agents(cfg: Mapping[str, Any]) -> list[str]:
    return list((cfg.get("consent") or {}).get("agents") or [])


def _drop_on(cfg: Mapping[str, Any]) -> list[str]:
    return list((cfg.get("consent") or {}).get("drop_on") or [])


def _compute(text: str, ctx: Context) -> dict[str, Any]:
    from filters.consent import page_signals

    doc = ctx.doc
    return page_signals(doc.get("x_robots_tag"), doc.get("meta_robots"), doc.get("tdm_reservation"),
                        agents=ctx.state)


def _check(s: Mapping[str, Any], cfg: Mapping[str, Any], t: Mapping[str, Any]):
    drop_on = _drop_on(cfg)
    if not drop_on:
        return []
    from filters.consent import drop_reason

    reason = drop_reason(dict(s), drop_on)
    if not reason:
        return []
    detail = s.get("optout_detail") or ""
    if reason == "optout_robots":
        detail = f"robots.txt disallows {s.get('robots_disallowed_agents')}"
    return [(f"consent.{reason}", f"{reason}: {detail}".rstrip(": "))]


def _validate(cfg: Mapping[str, Any]) -> None:
    if _drop_on(cfg):
        from filters.consent import drop_reason

        drop_reason({}, _drop_on(cfg))   # raises on an unknown signal name


FAMILY = SignalFamily(
    name="consent",
    fields=(pa.field("optout_noai", pa.bool_()),
            pa.field("optout_noimageai", pa.bool_()),
            pa.field("optout_noindex", pa.bool_()),
            pa.field("optout_tdm", pa.bool_()),
            pa.field("optout_detail", pa.string())),
    compute=_compute,
    setup=lambda cfg: _agents(cfg) or None,
    config_keys=("consent.agents", "consent.drop_on"),
    version_keys=("consent.agents",),
    version=lambda cfg: {"consent_agents": _agents(cfg)},
    validate=_validate,
    filters=(Filter("consent", check=_check),),
)
