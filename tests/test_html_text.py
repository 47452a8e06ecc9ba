"""trafilatura extraction and its per-document time limit."""
from __future__ import annotations

import pytest

from pipelines.html_text import ExtractionTimeout, Extractor, page_title

ARTICLE = ("<html><head><title>Rain &amp; rivers</title></head><body>"
           "<nav><a href='/'>Home</a> <a href='/news'>News</a> <a href='/about'>About us</a></nav>"
           "<div class='cookie'>We use cookies to improve your experience. Accept all cookies?</div>"
           "<article><h1>Rain and rivers</h1>"
           + "".join(f"<p>Paragraph {i}: the river rose slowly through the night while volunteers "
                     f"stacked sandbags along the old stone wall near the mill.</p>" for i in range(12))
           + "</article><footer>Copyright 2024 Example News. Imprint. Privacy policy.</footer></body></html>")


def huge_page() -> str:
    # Tens of thousands of nested blocks: trafilatura needs far longer than 50 ms for this.
    cells = "".join(f"<div><p>cell {i} with a few words of text in it</p></div>" for i in range(60000))
    return f"<html><body><table><tr><td>{cells}</td></tr></table></body></html>"


def test_main_text_without_boilerplate():
    with Extractor({}, timeout_s=0) as ex:
        result = ex.extract(ARTICLE, "https://example.org/rain")
    assert "volunteers stacked sandbags" in result.text
    assert "cookies" not in result.text and "Copyright" not in result.text
    assert result.title == "Rain & rivers"


def test_same_text_in_helper_process_and_inline():
    with Extractor({}, timeout_s=0) as inline, Extractor({}, timeout_s=30) as isolated:
        assert inline.extract(ARTICLE).text == isolated.extract(ARTICLE).text


def test_timeout_kills_only_that_document_and_the_next_one_works():
    with Extractor({}, timeout_s=0.05) as ex:
        with pytest.raises(ExtractionTimeout):
            ex.extract(huge_page())
        assert ex.restarts == 1
        ex.timeout_s = 30
        assert "volunteers stacked sandbags" in ex.extract(ARTICLE).text


def test_options_are_validated():
    with pytest.raises(ValueError, match="favour_precision"):
        Extractor({"favour_precision": True})


def test_title_is_unescaped_and_whitespace_folded():
    assert page_title("<title>\n  A &lt;b&gt;  \n title </title>") == "A <b> title"
    assert page_title("<p>no title</p>") is None
