"""extract.extractor selects the main-text extractor; a missing one fails before any work.

A page written as a WARC in the test goes through pipelines/records.py with each extractor,
inline and through the time-limit helper process; the config key only takes the allowed words;
the snippet F1 helper (bench/extraction_eval.py) scores a hand-made truth file as expected.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from bench.extraction_eval import score
from pipelines.cli import main
from pipelines.config import ConfigError, load_config
from pipelines.html_text import Extractor, check_extractor, extract_now, extractor_options
from pipelines.records import KEPT, extract_document, header_outcome
from pipelines.warc import RawRecord, iter_records, local_opener

ARTICLE = ("The river rises in the northern hills and flows south for two hundred kilometres before "
           "it reaches the sea near the old harbour town.")
PAGE = f"""<!doctype html><html><head><title>River notes</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop</a></li><li><a href="/login">Login</a></li></ul></nav>
<main><article><h1>The river</h1>
<p>{ARTICLE}</p>
<p>Fishermen have worked its lower reaches for centuries, and the tidal flats at its mouth are a
resting place for migrating birds every spring and autumn, when thousands of waders arrive.</p>
<p>A footpath follows the east bank from the source to the estuary; walkers need about ten days,
staying in villages that grew up around the mills the river once drove.</p>
</article></main>
<footer>Copyright 2026 River Society. All rights reserved. Cookie settings.</footer>
</body></html>""".encode()


def warc_record(tmp_path: Path, body: bytes = PAGE) -> RawRecord:
    path = tmp_path / "page.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://example.org/river", "response",
                                                      payload=io.BytesIO(body), http_headers=headers))
    records = [r for r in iter_records(local_opener(str(path)), str(path), want_body=lambda r: True)
               if isinstance(r, RawRecord) and r.rec_type == "response"]
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize("timeout_s", [0, 20])  # inline, and through the helper process
def test_each_extractor_gives_the_page_text_through_records(tmp_path, timeout_s):
    pytest.importorskip("resiliparse", reason="resiliparse (requirements.lock) is not installed")
    from resiliparse.extract.html2text import extract_plain_text

    import trafilatura

    cfg = {**load_config()["extract"], "min_text_chars": 100}
    record = warc_record(tmp_path)
    assert header_outcome(record, cfg) is None
    html = PAGE.decode()
    texts = {}
    for name in ("trafilatura", "resiliparse"):
        with Extractor(extractor_options({**cfg, "extractor": name}), timeout_s, name) as ex:
            outcome = extract_document(record, cfg, ex)
        assert outcome.status == KEPT, (name, outcome.reason)
        assert ARTICLE in " ".join(outcome.doc["text"].split())
        assert outcome.doc["title"] == "River notes"
        texts[name] = outcome.doc["text"]
    # each name really selects its library: the text is exactly that library's output
    assert texts["resiliparse"] == extract_plain_text(html, main_content=True, **cfg["resiliparse"]).strip()
    assert texts["trafilatura"] == trafilatura.extract(html, url="https://example.org/river",
                                                       **{k: bool(v) for k, v in cfg["trafilatura"].items()}).strip()
    assert texts["resiliparse"] != texts["trafilatura"]


def test_fast_mode_is_passed_to_trafilatura(monkeypatch):
    import trafilatura

    seen = {}

    def fake_extract(html, **kwargs):
        seen.update(kwargs)
        return "text"

    monkeypatch.setattr(trafilatura, "extract", fake_extract)
    extract_now("<html></html>", None, {"fast": True, "favor_precision": False})
    assert seen["fast"] is True and "no_fallback" not in seen


def test_resiliparse_gets_its_own_switches(monkeypatch, tmp_path):
    pytest.importorskip("resiliparse", reason="resiliparse (requirements.lock) is not installed")
    import resiliparse.extract.html2text as html2text

    seen = {}

    def fake_extract(html, **kwargs):
        seen.clear()
        seen.update(kwargs)
        return "text"

    monkeypatch.setattr(html2text, "extract_plain_text", fake_extract)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("extract:\n  extractor: resiliparse\n  resiliparse:\n    links: true\n"
                        "  trafilatura:\n    favor_precision: true\n")
    cfg = load_config(cfg_file)["extract"]
    options = extractor_options(cfg)
    assert "favor_precision" not in options          # the other extractor's section is not passed
    extract_now("<html></html>", None, options, "resiliparse")
    assert seen == {"main_content": True, "alt_texts": False, "comments": False, "links": True,
                    "list_bullets": True, "preserve_formatting": True, "form_fields": False, "noscript": False}
    extract_now("<html></html>", None, {}, "resiliparse")
    assert seen == {"main_content": True}               # no options: resiliparse's own defaults
    with pytest.raises(ValueError, match="unknown resiliparse option.*favor_precision"):
        Extractor({"favor_precision": True}, 0, "resiliparse")
    with pytest.raises(ValueError, match="unknown trafilatura option.*alt_texts"):
        Extractor({"alt_texts": True}, 0, "trafilatura")


def test_extractor_key_takes_only_the_allowed_words(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("extract:\n  extractor: resiliparse\n  trafilatura:\n    fast: true\n")
    cfg = load_config(good)["extract"]
    assert cfg["extractor"] == "resiliparse" and cfg["trafilatura"]["fast"] is True
    assert load_config()["extract"]["extractor"] == "trafilatura"
    bad = tmp_path / "bad.yaml"
    bad.write_text("extract:\n  extractor: readability\n")
    with pytest.raises(ConfigError, match="extract.extractor"):
        load_config(bad)
    with pytest.raises(ValueError, match="must be one of"):
        Extractor({}, 0, "readability")


def test_a_missing_resiliparse_fails_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "resiliparse.extract.html2text", None)  # import now fails
    with pytest.raises(ValueError, match="resiliparse package cannot be imported"):
        check_extractor("resiliparse")
    check_extractor("trafilatura")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("extract:\n  extractor: resiliparse\n")
    out = tmp_path / "out"
    rc = main(["extract", "--input", str(tmp_path / "missing.warc.gz"), "--output", str(out),
               "--config", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "resiliparse" in err and "Traceback" not in err
    assert not out.exists()


def test_snippet_f1_helper_scores_a_hand_made_truth(tmp_path):
    truth = tmp_path / "eval.json"
    truth.write_text(json.dumps({
        "https://a.example/x": {"with": ["river rises", "the sea"], "without": ["Cookie settings"]},
        "https://b.example/y z": {"with": ["missing page"], "without": []},
    }))
    texts = {"https://a.example/x": "The river  rises\nto the sea. Cookie settings",
             "https://b.example/y%20z": "nothing relevant"}
    result = score(texts, str(truth))
    assert (result["tp"], result["fn"], result["fp"], result["tn"]) == (2, 1, 1, 0)
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3) and result["pages_missing"] == 0
    assert score({}, str(truth))["f1"] == 0.0
