"""Per-page opt-out signals: X-Robots-Tag, <meta name="robots">, TDMRep.

The extract stage stores the raw strings (DOC_SCHEMA columns ``x_robots_tag``, ``meta_robots``,
``tdm_reservation``); ``page_signals`` interprets them in refine, so changing the agent list or
the drop switches never needs re-extraction.

Directive syntax (X-Robots-Tag and robots meta share it): a comma-separated list, one list per
line (several headers or several meta tags are stored one per line).  A list element of the form
``name: directive`` where ``name`` is not itself a directive that takes a value
(``max-snippet:``, ``unavailable_after:`` ...) scopes that element and the following ones on the
same line to the crawler ``name`` - ``X-Robots-Tag: otherbot: noindex, nofollow``.

Scoping policy:
* Unscoped directives apply to every crawler, so they always count.
* A directive scoped to one of the configured agents (``consent.agents``; the training crawlers
  whose opt-outs we honour, CCBot included because its crawl is our source) counts.
* A directive scoped to any other crawler (``googlebot: noindex``) does not count: the site
  restricted that crawler only, and we are not it.  It is still listed in ``optout_detail``.
Matching of names is case-insensitive.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import yaml

DIRECTIVES_WITH_VALUE = frozenset({
    "max-snippet", "max-image-preview", "max-video-preview", "unavailable_after", "unavailable-after",
})
SIGNAL_NAMES = ("noai", "noimageai", "noindex", "tdm")

_SCOPE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.\-/ ]*?)\s*:\s*(.*)$", re.S)
# Meta tags whose name is a crawler token are kept by extract_meta_consent, even for agents not
# configured today, so that a later change of ``consent.agents`` needs no re-extraction.
_CRAWLER_META = re.compile(r"(bot|crawler|spider|-ai|-extended|agent)$", re.I)

_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "defaults" / "consent.yaml"


@lru_cache(maxsize=1)
def _default_agents() -> tuple[str, ...]:
    with open(_CONFIG, encoding="utf-8") as fh:
        return tuple(yaml.safe_load(fh)["consent"]["agents"])


@lru_cache(maxsize=1)
def _agent_names() -> frozenset[str]:
    return frozenset(a.lower() for a in _default_agents())


def meta_name_kept(name: str) -> bool:
    """True when ``extract_meta_consent`` keeps a ``<meta>`` of this (stripped) ``name``: robots,
    tdm-reservation, a default agent or a crawler-like name (case-insensitive)."""
    lname = name.lower()
    return lname in ("robots", "tdm-reservation") or lname in _agent_names() or bool(_CRAWLER_META.search(lname))


def default_agents() -> list[str]:
    """The agent list from configs/defaults/consent.yaml (used when a caller passes none)."""
    return list(_default_agents())


def parse_directives(value: str | None) -> list[tuple[str | None, str]]:
    """``[(agent or None, directive)]`` in order, lower-cased; agent None means unscoped."""
    out: list[tuple[str | None, str]] = []
    if not value:
        return out
    for line in str(value).splitlines():
        agent: str | None = None
        for element in line.split(","):
            element = element.strip()
            if not element:
                continue
            match = _SCOPE.match(element)
            if match and match.group(1).strip().lower() not in DIRECTIVES_WITH_VALUE:
                agent = match.group(1).strip().lower()
                element = match.group(2).strip()
                if not element:
                    continue
            # Some sites separate directives with spaces ("noai noimageai"); values of
            # max-snippet etc. never matter for our booleans, so a whitespace split is harmless.
            for token in element.split():
                token = token.strip().lower()
                if token:
                    out.append((agent, token))
    return out


def _tdm_reserved(value: str | None) -> bool:
    if not value:
        return False
    return any(v.strip().strip('"').strip() == "1" for v in re.split(r"[\n,]", str(value)))


def page_signals(x_robots_tag: str | None, meta_robots: str | None, tdm_reservation: str | None,
                 *, agents: Iterable[str] | None = None) -> dict:
    """Booleans ``optout_noai``, ``optout_noimageai``, ``optout_noindex``, ``optout_tdm`` and a
    human-readable ``optout_detail`` ("source[agent]:directive; ..." for every opt-out directive
    seen, including the ones scoped to other crawlers and therefore not counted)."""
    wanted = {a.lower() for a in (default_agents() if agents is None else agents)}
    flags = {"noai": False, "noimageai": False, "noindex": False}
    detail: list[str] = []
    for source, value in (("x-robots-tag", x_robots_tag), ("meta", meta_robots)):
        for agent, directive in parse_directives(value):
            names = ["noindex"] if directive == "none" else [directive]
            names = [n for n in names if n in flags]
            if not names:
                continue
            counted = agent is None or agent in wanted
            scope = f"[{agent}]" if agent else ""
            for name in names:
                detail.append(f"{source}{scope}:{name}{'' if counted else ' (ignored: other agent)'}")
                if counted:
                    flags[name] = True
    tdm = _tdm_reserved(tdm_reservation)
    if tdm:
        detail.append("tdm-reservation:1")
    return {
        "optout_noai": flags["noai"],
        "optout_noimageai": flags["noimageai"],
        "optout_noindex": flags["noindex"],
        "optout_tdm": tdm,
        "optout_detail": "; ".join(detail),
    }


def drop_reason(signals: dict, drop_on: Iterable[str]) -> str | None:
    """The first configured opt-out that applies (``"optout_noai"``, ``"optout_robots"``...), else None.

    ``signals`` holds ``page_signals`` output and optionally ``robots_disallowed_agents``.
    """
    for name in drop_on:
        if name == "robots":
            agents = signals.get("robots_disallowed_agents")
            if agents:
                return "optout_robots"
        elif name in SIGNAL_NAMES:
            if signals.get(f"optout_{name}"):
                return f"optout_{name}"
        else:
            raise ValueError(f"consent.drop_on: unknown signal {name!r}; "
                             f"choose from robots, {', '.join(SIGNAL_NAMES)}")
    return None


def extract_meta_consent(html: str | bytes | None) -> dict:
    """Raw ``meta_robots`` and ``tdm_reservation`` strings from a page's <meta> tags.

    Every ``<meta name="robots">`` content becomes one line; a crawler-specific meta such as
    ``<meta name="CCBot" content="noai">`` becomes the line ``CCBot: noai`` so that
    ``page_signals`` scopes it like an X-Robots-Tag.  ``tdm-reservation`` metas are joined by
    newlines.  Missing tags give None; unparsable HTML gives Nones, never an exception.
    """
    empty = {"meta_robots": None, "tdm_reservation": None}
    if not html:
        return empty
    from lxml import etree, html as lxml_html

    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError, TypeError):
        return empty
    robots: list[str] = []
    tdm: list[str] = []
    for meta in root.iter("meta"):
        name = (meta.get("name") or "").strip()
        content = (meta.get("content") or "").strip()
        if not name or not content:
            continue
        content = " ".join(content.split())   # a newline inside content must not split scopes
        lname = name.lower()
        if lname == "robots":
            robots.append(content)
        elif lname == "tdm-reservation":
            tdm.append(content)
        elif meta_name_kept(lname):
            robots.append(f"{name}: {content}")
    return {"meta_robots": "\n".join(robots) or None, "tdm_reservation": "\n".join(tdm) or None}
