"""URL normalisation for URL-level dedup."""
from __future__ import annotations

import pytest

from filters.url_normalize import UrlNormalizeOptions, normalize_url


@pytest.mark.parametrize("variant", [
    "https://example.com/a/b",
    "HTTPS://Example.COM/a/b",
    "https://example.com:443/a/b",
    "https://example.com/a/./c/../b",
    "https://example.com/a/b/",
    "https://example.com/a/b#comments",
    "https://example.com/a/b?utm_source=news&utm_medium=mail",
    "https://example.com/a/b?fbclid=IwAR0abc&gclid=xyz",
    "https://example.com/a/%62",
])
def test_variants_of_one_page_normalise_equal(variant):
    assert normalize_url(variant) == "https://example.com/a/b"


def test_query_is_sorted_and_real_parameters_are_kept():
    assert normalize_url("http://x.org:80/p?b=2&a=1&utm_campaign=z") == "http://x.org/p?a=1&b=2"
    # Parameters that a regex tracker filter would drop are content here.
    for a, b in [("?game=1", "?game=2"), ("?id=5", "?id=6"), ("?uid=1", "?uid=2"), ("?ref=a", "?ref=b"),
                 ("?page=2", "?page=3")]:
        assert normalize_url("https://x.org/p" + a) != normalize_url("https://x.org/p" + b)
    assert normalize_url("https://x.org/p?print") != normalize_url("https://x.org/p")


def test_different_pages_stay_different():
    assert normalize_url("https://example.com/a") != normalize_url("https://example.com/b")
    assert normalize_url("http://example.com/a") != normalize_url("https://example.com/a")
    assert normalize_url("https://example.com/a") != normalize_url("https://example.org/a")
    assert normalize_url("https://example.com/A") != normalize_url("https://example.com/a")  # paths are case-sensitive


def test_options_are_configurable():
    keep_all = UrlNormalizeOptions(drop_fragment=False, strip_tracking_params=False, sort_query=False,
                                   strip_trailing_slash=False)
    assert normalize_url("https://x.org/a/?b=1&utm_source=q#top", keep_all) == "https://x.org/a/?b=1&utm_source=q#top"
    www = UrlNormalizeOptions(strip_www=True)
    assert normalize_url("https://www.x.org/a", www) == normalize_url("https://x.org/a", www)
    assert normalize_url("https://www.x.org/a") != normalize_url("https://x.org/a")
    custom = UrlNormalizeOptions.from_config({"tracking_params": ["SessionID"], "tracking_param_prefixes": ["trk_"]})
    assert normalize_url("https://x.org/a?sessionid=9&trk_x=1&q=2", custom) == "https://x.org/a?q=2"
    assert normalize_url("https://x.org/a?utm_source=9", custom) == "https://x.org/a?utm_source=9"


def test_bad_input_does_not_raise():
    assert normalize_url("") == ""
    assert normalize_url(None) == ""  # type: ignore[arg-type]
    assert normalize_url("http://[::1") == "http://[::1"
    assert normalize_url("  https://x.org/a  ") == "https://x.org/a"
