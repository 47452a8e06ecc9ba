"""The shared per-text pre-checks of ``filters.pii`` (``_six_digits``, ``_seven_digits``,
``_digit_hyphen``, ``_digit_dot_digit``, the keyword searches, '@', 'AKIA', the phone pre-filter)
only skip scans that cannot find anything: ``find_pii`` gives the same spans as with every
pre-check off (``pii._PRECHECKS = False``: every detector scans every text) on the realweb pages'
extracted texts (skipped when ``../shared`` is missing) and on generated hostile strings: digit runs
of every length with every separator, in several digit scripts, keywords at the edge of their
context slice, and the labelled cases with their separators removed or swapped."""
from __future__ import annotations

import random
import re

from filters import pii
from tests.pii_cases import CASES

REGIONS = (None, "DE", "US", "BR", "AR", "CL", "UY", "ES", "MX")
DIGIT_SETS = ("0123456789", "٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९", "²³¹⁴⁵⁶⁷⁸⁹⁰")
SEPARATORS = ("", " ", "-", ".", ",", "/", "--", " - ", "\u00a0", "–", ". ", ":", "k", "K", "\n")
KEYWORDS = ("", "CPF ", "CUIT ", "CUIL: ", "SSN ", "social security no. ", "SOCIAL SECURITY ", "cédula ",
            "C.I. ", "CI ", "DNI ", "NIE ", "IP ", "IP address ", "Tel. ", "+49 ", "Nr. ", "v", "ssn",
            "xCPF", "cpf", "cuit", "SSNs ", "IBAN DE", "CURP ")


def _reference(text: str, types=None, region=None):
    pii._PRECHECKS = False
    try:
        return pii.find_pii(text, types, region)
    finally:
        pii._PRECHECKS = True


def _assert_same(texts, regions=REGIONS):
    for text in texts:
        for region in regions:
            assert pii.find_pii(text, None, region) == _reference(text, None, region), (region, text[:300])


def _runs(rng: random.Random) -> list[str]:
    out = []
    for digits in DIGIT_SETS:
        for length in range(1, 21):
            run = "".join(rng.choice(digits) for _ in range(length))
            for sep in SEPARATORS:
                # one run, two runs joined by the separator, a run cut into groups by it
                out.append(run + sep)
                out.append(sep + run + sep + run[::-1])
                out.append(sep.join(run[i:i + 3] for i in range(0, length, 3)))
    return out


def _with_keywords(rng: random.Random) -> list[str]:
    out = []
    numbers = ("52998224725", "529.982.247-25", "20123456786", "20-12345678-6", "212671234", "536-22-8471",
               "31415921", "1.234.567-2", "12.345.678-5", "12345678-5", "8.765.432-K", "12.345.670-k", "12345678Z", "X1234567L",
               "HEGG560427MVZRRL04", "81.169.145.105", "8.8.8.8", "4111 1111 1111 1111", "DE89370400440532013000",
               "030 1234567", "+49 30 1234567", "1234567", "123456", "12345678901234")
    for keyword in KEYWORDS:
        for number in numbers:
            # the keyword at every distance around the 30-character context slice's edge
            for pad in (0, 1, 24, 28, 29, 30, 31, 35):
                out.append(keyword + " " * pad + number)
                out.append("X" + keyword + "y" * pad + number + rng.choice(SEPARATORS))
    return out


def _mutated_cases(rng: random.Random) -> list[str]:
    out = []
    for text, _, _ in CASES:
        out.append(text)
        for old in "-.  /":
            for new in ("", " ", "-", ".", "–", "k"):
                out.append(text.replace(old, new))
        for digits in DIGIT_SETS[1:]:
            out.append(text.translate(str.maketrans("0123456789", digits)))
        chars = list(text)
        for _ in range(3):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice("0123456789-. kK@:+")
        out.append("".join(chars))
    return out


def _random(rng: random.Random, n: int = 1500) -> list[str]:
    alphabet = "0123456789" * 6 + "-.,/ :+@kKXYZHMACIPSTUNL" + "٠٣０９" + "\n"
    words = ["CPF", "CUIT", "SSN", "social security", "cédula", "DNI", "IP", "AKIA", "ASIA", "DE", "GB"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.15:
                parts.append(rng.choice(words))
            else:
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
        out.append("".join(parts))
    return out


def hostile_texts() -> list[str]:
    rng = random.Random(13)
    return _runs(rng) + _with_keywords(rng) + _mutated_cases(rng) + _random(rng)


def test_each_precheck_is_the_condition_it_stands_for():
    # The pre-checks are written for speed; each must be true exactly where the plain pattern has a
    # match.
    plain = {pii._six_digits: re.compile(r"\d{6}"), pii._seven_digits: re.compile(r"\d{7}"),
             pii._digit_hyphen: re.compile(r"\d-[\dkK]"), pii._digit_dot_digit: re.compile(r"\d\.\d")}
    texts = hostile_texts()
    for check, pattern in plain.items():
        truths = [bool(check(t)) for t in texts]
        assert truths == [pattern.search(t) is not None for t in texts], pattern.pattern
        assert 50 < sum(truths) < len(texts) - 50, pattern.pattern   # both answers occur here


def test_same_spans_as_without_prechecks_on_hostile_strings():
    texts = hostile_texts()
    # the phone matcher is slow: every region on a sample, the detectors without phone on all
    types = [t for t in pii.PII_TYPES if t != "phone"]
    for text in texts:
        assert pii.find_pii(text, types) == _reference(text, types), text[:300]
    _assert_same(texts[::7])


def test_labelled_cases_are_found_with_and_without_prechecks():
    # expected spans come from the labels, not from the code: a pre-check that wrongly skipped a
    # spelling would lose one of them
    for text, region, expected in CASES:
        for got in (pii.find_pii(text, None, region), _reference(text, None, region)):
            assert sorted((k, text[s:e]) for k, s, e in got) == sorted(expected), text


def test_prechecks_skip_where_they_should_and_not_where_they_must_not():
    assert not pii._digit_hyphen("Seit 2017-ab, Seite 12 - 13 und k-9")
    assert pii._digit_hyphen("12.345.678-K") and pii._digit_hyphen("١-٢")
    assert not pii._digit_dot_digit("Version 2. 3, 1.a") and pii._digit_dot_digit("０.１")
    assert not pii._six_digits("12345 1234 12-3456") and pii._six_digits("x١٢٣٤٥٦")
    assert not pii._seven_digits("123456 x 1234567"[:13]) and pii._seven_digits("a１２３４５６７b")
    # cards are gated by the phone pre-filter, whose atoms hold " " and "-"
    assert pii._CARD_GATED and not pii._phone_possible_in("4111|11 € 2") and pii._phone_possible_in("4111-11")
    assert pii.find_pii("Card: 4111-1111-1111-1111.", ["card"]) == [("card", 6, 25)]
    # the spellings each pre-check guards, found where only that pre-check's condition holds
    assert pii.find_pii("SSN 536-22-8471", ["us_ssn"]) == [("us_ssn", 4, 15)]
    assert pii.find_pii("RUT 12.345.678-5", ["cl_rut"]) == [("cl_rut", 4, 16)]
    assert pii.find_pii("CURP HEGG560427MVZRRL04", ["mx_curp"]) == [("mx_curp", 5, 23)]
    assert pii.find_pii("from 81.169.145.105", ["ip"]) == [("ip", 5, 19)]


def test_same_spans_as_without_prechecks_on_realweb_pages(realweb_extracted):
    assert len(realweb_extracted) > 900
    for page in realweb_extracted:
        text, region = page["text"], pii.region_hint_for(page["url"], None)
        for r in {region, "US"}:
            assert pii.find_pii(text, None, r) == _reference(text, None, r), page["url"]
