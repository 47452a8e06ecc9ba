"""Per-page opt-out signals: X-Robots-Tag / robots meta parsing, agent scoping, TDMRep."""
from __future__ import annotations

import pytest

from filters.consent import default_agents, drop_reason, extract_meta_consent, page_signals, parse_directives

AGENTS = ["CCBot", "GPTBot", "Google-Extended", "anthropic-ai", "ClaudeBot"]


def flags(signals: dict) -> set[str]:
    return {k for k, v in signals.items() if k.startswith("optout_") and v is True}


@pytest.mark.parametrize("xrt,meta,tdm,expected", [
    (None, None, None, set()),
    ("noai", None, None, {"optout_noai"}),
    ("NoAI, NoImageAI", None, None, {"optout_noai", "optout_noimageai"}),
    (None, "noindex,nofollow", None, {"optout_noindex"}),
    (None, "none", None, {"optout_noindex"}),                 # "none" = noindex, nofollow
    (None, "noai noimageai", None, {"optout_noai", "optout_noimageai"}),  # space-separated variant
    (None, "index, follow, max-snippet:-1, max-image-preview:large", None, set()),
    (None, None, "1", {"optout_tdm"}),
    (None, None, "0", set()),
    (None, None, " 1 ", {"optout_tdm"}),
    (None, None, "0\n1", {"optout_tdm"}),                     # header and meta both stored
    ("all", "index", "2", set()),                             # invalid tdm value is not a reservation
])
def test_unscoped_directives(xrt, meta, tdm, expected):
    assert flags(page_signals(xrt, meta, tdm, agents=AGENTS)) == expected


def test_agent_scoped_directive_counts_only_for_configured_agents():
    assert flags(page_signals("otherbot: noai", None, None, agents=AGENTS)) == set()
    assert flags(page_signals("GPTBot: noai", None, None, agents=AGENTS)) == {"optout_noai"}
    assert flags(page_signals("gptbot: noai", None, None, agents=AGENTS)) == {"optout_noai"}
    # The scope runs to the end of the header line ...
    assert flags(page_signals("googlebot: noindex, noai", None, None, agents=AGENTS)) == set()
    # ... or to the next scope on the same line.
    got = page_signals("googlebot: noindex, ccbot: noai, noimageai", None, None, agents=AGENTS)
    assert flags(got) == {"optout_noai", "optout_noimageai"}
    # A new header line starts unscoped again.
    assert flags(page_signals("googlebot: noindex\nnoai", None, None, agents=AGENTS)) == {"optout_noai"}


def test_ignored_scoped_directives_are_visible_in_detail():
    got = page_signals("otherbot: noai", None, None, agents=AGENTS)
    assert "x-robots-tag[otherbot]:noai (ignored: other agent)" in got["optout_detail"]


def test_directives_with_values_are_not_mistaken_for_agents():
    parsed = parse_directives("unavailable_after: 25 Jun 2010 15:00:00 PST, noai")
    assert (None, "noai") in parsed
    assert all(agent is None for agent, _ in parsed)
    assert flags(page_signals("max-snippet: 20, noai", None, None, agents=AGENTS)) == {"optout_noai"}


def test_default_agents_come_from_config_and_include_the_required_ones():
    agents = default_agents()
    for required in AGENTS:
        assert required in agents
    assert flags(page_signals("ClaudeBot: noai", None, None)) == {"optout_noai"}


def test_extract_meta_consent_merges_tags_and_keeps_agent_metas():
    html = """<html><head>
      <meta name="robots" content="noindex">
      <meta name="ROBOTS" content="noai,
            noimageai">
      <meta name="CCBot" content="noai">
      <meta name="googlebot" content="nosnippet">
      <meta name="tdm-reservation" content="1">
      <meta name="viewport" content="width=device-width">
      <meta name="description" content="noai is a word here">
    </head><body><p>hi</p></body></html>"""
    raw = extract_meta_consent(html)
    assert raw["meta_robots"].splitlines() == ["noindex", "noai, noimageai", "CCBot: noai", "googlebot: nosnippet"]
    assert raw["tdm_reservation"] == "1"
    signals = page_signals(None, raw["meta_robots"], raw["tdm_reservation"], agents=AGENTS)
    assert flags(signals) == {"optout_noai", "optout_noimageai", "optout_noindex", "optout_tdm"}


def test_agent_meta_for_other_crawler_does_not_opt_out():
    raw = extract_meta_consent('<html><head><meta name="bingbot" content="noai"></head></html>')
    assert raw["meta_robots"] == "bingbot: noai"
    assert flags(page_signals(None, raw["meta_robots"], None, agents=AGENTS)) == set()


@pytest.mark.parametrize("html", [None, "", b"", "plain text, no tags", b"\x00\x01\x02", "<meta name=robots>"])
def test_extract_meta_consent_tolerates_bad_input(html):
    assert extract_meta_consent(html) == {"meta_robots": None, "tdm_reservation": None}


def test_extract_meta_consent_accepts_bytes():
    raw = extract_meta_consent('<meta name="robots" content="noai">'.encode())
    assert raw["meta_robots"] == "noai"


def test_drop_reason_follows_config_switches():
    signals = page_signals("noindex", None, "1", agents=AGENTS)
    assert drop_reason(signals, ["robots", "noai", "tdm"]) == "optout_tdm"
    assert drop_reason(signals, ["robots", "noai"]) is None
    assert drop_reason(signals, ["noindex"]) == "optout_noindex"
    assert drop_reason({**signals, "robots_disallowed_agents": "CCBot"}, ["robots"]) == "optout_robots"
    assert drop_reason({**signals, "robots_disallowed_agents": ""}, ["robots"]) is None
    with pytest.raises(ValueError, match="unknown signal"):
        drop_reason(signals, ["nosuch"])
