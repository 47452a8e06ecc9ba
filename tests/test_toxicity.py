"""Toxicity: word-list scores (LDNOOBW lists from ../shared), classifier, domain blocklist."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest

from filters import toxicity
from filters.decisions import Decider
from pipelines.config import load_config
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def badwords():
    return require_shared("badwords/en").parent


def test_wordlist_counts_whole_words_and_phrases(badwords):
    scorer = toxicity.WordListScorer(str(badwords))
    clean = scorer.score("The class assessed the classic Scunthorpe passage.\nNothing here.", "en")
    assert clean["tox_word_hits"] == 0        # "ass" inside class/assessed/passage is no match
    dirty = scorer.score("first line is fine\nwhat a shit day, fuck this\nnice\n2 girls 1 cup video", "en")
    assert dirty["tox_word_hits"] == 3        # shit, fuck, and the four-word phrase once
    assert dirty["tox_lines"] == [1, 3]
    assert dirty["tox_wordlist"] == "en"
    assert dirty["tox_word_ratio"] == pytest.approx(3 / 16)


def test_language_list_and_always_lists(badwords):
    text = "Das ist doch Scheiße, du Arschloch.\nThis is shit."
    de_only = toxicity.WordListScorer(str(badwords)).score(text, "de")
    both = toxicity.WordListScorer(str(badwords), always=["en"]).score(text, "de")
    assert de_only["tox_wordlist"] == "de" and both["tox_wordlist"] == "de,en"
    assert both["tox_word_hits"] > de_only["tox_word_hits"] >= 1
    none = toxicity.WordListScorer(str(badwords)).score(text, "xx")   # no list for the language
    assert none["tox_word_hits"] == 0 and none["tox_wordlist"] == ""


def test_unsegmented_languages_match_substrings(badwords):
    scorer = toxicity.WordListScorer(str(badwords))
    word = next(w for w in (badwords / "zh").read_text(encoding="utf-8").splitlines() if len(w) >= 2 and w.isalpha())
    result = scorer.score(f"今天天气很好。\n他说{word}然后走了。", "zh")
    assert result["tox_word_hits"] >= 1 and result["tox_lines"] == [1]


def test_one_word_does_not_remove_a_page_but_a_dense_page_is_removed(badwords):
    cfg = load_config(overrides={"toxicity": {"wordlists": str(badwords)}})
    decider = Decider(cfg)
    scorer = toxicity.WordListScorer(str(badwords))
    base = {"lang": "en", "lang_score": 0.99}
    health = ("Vaginal cancer is rare, and screening is part of the usual checkup for women. " * 10 +
              "Talk to your doctor about any changes you notice, for example around the vagina.")
    one = {**base, **scorer.score(health, "en")}
    assert one["tox_word_hits"] >= 1
    assert decider.check("toxicity_words", one) == []
    dense = {**base, **scorer.score("fuck this shit, you bitch ass motherfucker " * 3, "en")}
    fails = decider.check("toxicity_words", dense)
    assert fails and fails[0][0] == "toxicity_words.score" and "word-list hits" in fails[0][1]


def test_wordlists_from_url_prefix(badwords):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(badwords))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        scorer = toxicity.WordListScorer(url)
        assert scorer.score("what a shit day", "en")["tox_word_hits"] == 1
        assert scorer.wordlist("qq") is None          # 404: no list for that language
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_source_is_a_clear_error():
    with pytest.raises(OSError, match="cannot fetch http://127.0.0.1:9/"):
        toxicity.read_source("http://127.0.0.1:9/", "en")


def test_domain_blocklist_matches_subdomains_only_on_label_boundaries(tmp_path):
    path = tmp_path / "domains"
    path.write_text("# adult list\nexample.com\n*.bad.org\nhttp://evil.net/path\n\n", encoding="utf-8")
    blocklist = toxicity.DomainBlocklist.from_source(str(path))
    assert len(blocklist) == 3
    assert blocklist.match("https://example.com/x") == "example.com"
    assert blocklist.match("http://www.shop.EXAMPLE.com:8080/a?b") == "example.com"
    assert blocklist.match("https://cdn.bad.org/") == "bad.org"
    assert blocklist.match("https://evil.net") == "evil.net"
    assert blocklist.match("https://notexample.com/") is None
    assert blocklist.match("https://example.com.au/") is None
    assert blocklist.match("not a url") is None


def test_gzipped_blocklist(tmp_path):
    import gzip

    path = tmp_path / "domains.gz"
    path.write_bytes(gzip.compress(b"example.com\n"))
    assert toxicity.DomainBlocklist.from_source(str(path)).match("https://a.example.com") == "example.com"


def test_profanity_classifier_scores_lines():
    clf = toxicity.ToxicityClassifier("profanity_check")
    text = ("The museum opens at nine and guided tours start every hour.\n"
            "you are a fucking idiot and a piece of shit\n"
            "Tickets can be bought online or at the entrance.")
    result = clf.score(text)
    assert result["tox_clf_lines"] == [1]
    assert result["tox_clf_max"] > 0.9
    line_len = len("you are a fucking idiot and a piece of shit")
    total = sum(len(l) for l in text.split("\n"))
    assert result["tox_clf_frac"] == pytest.approx(line_len / total)
    assert clf.score("A quiet afternoon in the library.")["tox_clf_frac"] == 0.0


def test_unknown_classifier_kind():
    with pytest.raises(ValueError, match="profanity_check, fasttext or none"):
        toxicity.ToxicityClassifier("perspective")
