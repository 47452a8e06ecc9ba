"""Quality rules: each case would pass with a wrong rule only by accident of the threshold."""
from __future__ import annotations

import copy

import pytest

from filters import quality
from pipelines.config import load_config

QCFG = load_config()["quality"]

GERMAN = [
    "Der Gemeinderat hat am Dienstag beschlossen, dass der Park im Zentrum erneuert wird.",
    "Entlang der Allee sollen im Herbst mehr als hundert junge Linden gepflanzt werden.",
    "Die Kosten von rund zwei Millionen Euro trägt zum größten Teil das Land Niedersachsen.",
    "Anwohner hatten sich seit Jahren über kaputte Bänke und fehlende Beleuchtung beschwert.",
    "Nach Angaben der Verwaltung beginnen die Bauarbeiten voraussichtlich im kommenden März.",
    "Während der Arbeiten bleibt der Spielplatz am Nordeingang für Familien geöffnet.",
    "Ein Architekturbüro aus Hannover hat den Entwurf gemeinsam mit Schülern entwickelt.",
    "Die Bürgermeisterin sprach von einem wichtigen Schritt für die Lebensqualität der Stadt.",
]
ENGLISH = [
    "The council decided on Tuesday that the park in the centre of town will be renovated.",
    "More than a hundred young lime trees are to be planted along the avenue in autumn.",
    "Most of the cost of around two million pounds will be covered by the regional government.",
    "Residents had complained for years about broken benches and the lack of street lighting.",
    "According to the administration, construction work is expected to begin next March.",
    "The playground at the north entrance will stay open for families during the works.",
    "An architecture firm from the city developed the design together with local pupils.",
    "The mayor called it an important step for the quality of life in the town.",
]


def prose(sentences: list[str], n: int = 8) -> str:
    return "\n".join(sentences[i % len(sentences)] + (f" Das war Punkt {i}." if i >= len(sentences) else "")
                     for i in range(n))


def failed(text: str, lang: str, cfg=QCFG) -> set[str]:
    return {r.name for r in quality.check(text, lang, cfg) if not r.passed}


def test_clean_prose_passes_every_rule():
    assert failed(prose(GERMAN), "de") == set()
    assert failed(prose(ENGLISH), "en") == set()


def test_stop_words_are_counted_with_the_documents_language():
    text = prose(GERMAN)
    m_de = quality.measure(text, "de")
    assert m_de["q_stop_words"] > 40
    # Datatrove's English-only rule would see almost no stop words in German text.
    english_only = {"the", "be", "to", "of", "and", "that", "have", "with"}
    assert sum(w.lower() in english_only for w in text.split()) < 2
    m_none = quality.measure(text, "xx")   # no list for the language: rule skipped, not failed
    assert m_none["q_stop_words"] is None
    results = {r.name: r for r in quality.evaluate(m_none, quality.thresholds_for(QCFG, "xx"))}
    assert results["gopher_quality.stop_words"].passed
    assert "no stop-word list" in results["gopher_quality.stop_words"].reason


def test_word_list_without_stop_words_fails_with_value_and_reason():
    menu = "\n".join(f"Produkt {i} Preis {i}0 Euro Warenkorb Versand Lieferung Angebot" for i in range(10))
    results = {r.name: r for r in quality.check(menu, "de", QCFG)}
    stop = results["gopher_quality.stop_words"]
    assert not stop.passed and stop.value == 0 and "stop_words 0 < 2" in stop.reason


def test_chinese_is_segmented_so_word_rules_apply():
    text = "\n".join(["市议会星期二决定翻修市中心的公园，并在林荫道两旁种植更多的树木。"
                      f"这是第{i}段，讲述了城市的历史和居民的生活。" for i in range(6)])
    m = quality.measure(text, "zh")
    assert m["q_words"] > 100                      # whitespace split: 6 "words"
    assert 1.0 <= m["q_mean_word_length"] <= 3.0
    assert m["q_stop_words"] >= 2
    # The zh language default lowers the mean-word-length floor; the global 3 would drop Chinese.
    assert quality.thresholds_for(QCFG, "zh")["gopher_min_mean_word_length"] == 1
    assert "gopher_quality.mean_word_length" not in failed(text, "zh")
    assert "gopher_quality.mean_word_length" in {
        r.name for r in quality.evaluate(m, QCFG["thresholds"]) if not r.passed}


def test_thai_has_no_terminal_punctuation_and_is_not_dropped_for_it():
    text = "\n".join(f"สภาเมืองตัดสินใจเมื่อวันอังคารว่าจะปรับปรุงสวนสาธารณะในใจกลางเมืองและปลูกต้นไม้เพิ่ม ครั้งที่ {i} "
                     "ประชาชนจำนวนมากมาร่วมงานและแสดงความคิดเห็นเกี่ยวกับโครงการนี้" for i in range(8))
    m = quality.measure(text, "th")
    assert sum(s for s in m["line_sentences"]) >= 8
    assert not any(f & quality.TERMINAL_PUNCT for f in m["line_flags"])
    fails = failed(text, "th")
    assert "fineweb.line_punct" not in fails and "c4.min_sentences" not in fails
    # With the global thresholds the same document would fail the punctuation rule.
    assert "fineweb.line_punct" in {r.name for r in quality.evaluate(m, QCFG["thresholds"]) if not r.passed}


def test_repeated_lines_fail_repetition_rules():
    text = prose(ENGLISH, 4) + "\n" + "\n".join(["Click here to subscribe to our newsletter today."] * 6)
    fails = failed(text, "en")
    assert "gopher_repetition.dup_lines" in fails
    m = quality.measure(text, "en")
    assert m["q_dup_lines_frac"] == pytest.approx(5 / 10)


def test_top_ngram_and_duplicate_ngram_fractions():
    words = " ".join(["buy cheap shoes"] * 30)
    m = quality.measure(words, "en")
    assert m["q_top_2gram_frac"] > 0.5
    assert m["q_dup_5gram_frac"] > 0.9
    unique = " ".join(f"w{i}" for i in range(300))
    m2 = quality.measure(unique, "en")
    assert m2["q_top_2gram_frac"] == 0.0 and m2["q_dup_5gram_frac"] == 0.0


def test_c4_line_rules_remove_only_flagged_lines():
    good = prose(ENGLISH, 6)
    text = good + "\nPlease enable JavaScript to view the comments powered by Disqus.\nHome\n" \
                  "This site uses cookies to improve your experience, see our policy."
    m = quality.measure(text, "en")
    t = quality.thresholds_for(QCFG, "en")
    cleaned = quality.apply_c4_lines(text, m, t)
    assert cleaned == good
    # the caller's mask (refine computes it once for its count) gives the same text, and is used
    mask = quality.c4_line_keep_mask(m, t)
    assert quality.apply_c4_lines(text, m, t, mask) == good
    assert quality.apply_c4_lines(text, m, t, [True] * len(mask)) == text
    c4 = {r.rule: r for r in quality.evaluate(m, t, ["c4"])}
    assert c4["lines_removed"].value == 3 and c4["min_sentences"].passed


def test_c4_terminal_punctuation_switch_changes_kept_lines_without_remeasuring():
    text = prose(ENGLISH, 6) + "\nA heading without any final punctuation mark"
    m = quality.measure(text, "en")
    t = dict(quality.thresholds_for(QCFG, "en"))
    assert "heading" in quality.apply_c4_lines(text, m, t)
    t["c4_remove_no_terminal_punct_lines"] = True
    assert "heading" not in quality.apply_c4_lines(text, m, t)


def test_c4_document_rules():
    base = prose(ENGLISH, 6)
    assert "c4.curly_bracket" in failed(base + "\nfunction f() { return 1; }", "en")
    assert "c4.lorem_ipsum" in failed(base + "\nLorem ipsum dolor sit amet, consectetur.", "en")
    short = "One sentence here with words. Another sentence follows here."
    m = quality.measure(short, "en")
    c4 = {r.rule: r for r in quality.evaluate(m, quality.thresholds_for(QCFG, "en"), ["c4"])}
    assert not c4["min_sentences"].passed and c4["min_sentences"].value == 2


def test_fineweb_rules():
    listing = "\n".join(f"Item number {i}" for i in range(60)) + "\n" + prose(ENGLISH, 2)
    fails = failed(listing, "en")
    assert {"fineweb.short_lines", "fineweb.line_punct"} <= fails
    dup = prose(ENGLISH, 10) + "\n" + "Share this article with your friends on social media."
    dup = dup + "\n" + "Share this article with your friends on social media."
    m = quality.measure(dup, "en")
    assert 0.01 < m["q_dup_lines_char_frac"] < 0.2
    fails = failed(dup, "en")
    assert "fineweb.dup_lines_chars" in fails and "gopher_repetition.dup_lines_chars" not in fails


def test_threshold_change_flips_decision_on_stored_measures():
    m = quality.measure(prose(ENGLISH, 2), "en")
    assert m["q_words"] < 100
    strict = dict(QCFG["thresholds"], gopher_min_words=100)
    loose = dict(QCFG["thresholds"], gopher_min_words=10)
    get = lambda t: {r.name: r.passed for r in quality.evaluate(m, t, ["gopher_quality"])}
    assert get(strict)["gopher_quality.min_words"] is False
    assert get(loose)["gopher_quality.min_words"] is True
    disabled = dict(QCFG["thresholds"], gopher_min_words=None)
    assert get(disabled)["gopher_quality.min_words"] is True


def test_per_language_overrides_and_unknown_keys():
    cfg = copy.deepcopy(QCFG)
    cfg["per_language"] = {"de": {"gopher_min_words": 500}, "ko": {"gopher_min_stop_words": 0}}
    assert quality.thresholds_for(cfg, "de")["gopher_min_words"] == 500
    assert quality.thresholds_for(cfg, "en")["gopher_min_words"] == 50
    assert quality.thresholds_for(cfg, "ko")["gopher_min_stop_words"] == 0
    cfg["per_language"] = {"de": {"gopher_min_wrods": 5}}
    with pytest.raises(ValueError, match="gopher_min_wrods"):
        quality.validate_config(cfg)


def test_line_signals_must_match_text():
    m = quality.measure("one line only with words", "en")
    with pytest.raises(ValueError, match="do not match"):
        quality.apply_c4_lines("two\nlines", m, quality.thresholds_for(QCFG, "en"))
