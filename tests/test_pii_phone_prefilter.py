"""The phone pre-filter (``filters.pii._PHONE_POSSIBLE``) is exact: ``_phones`` finds the same spans
as without it (the library's matcher run on every text with a digit) on generated digit-heavy
hostile strings, for several regions; realweb's texts are covered by the golden digests of
tests/test_signals_speed_equivalence.py."""
from __future__ import annotations

import random
import re
import sys

import phonenumbers
import pytest

from filters import pii, pii_phones

REGIONS = (None, "DE", "US", "BR", "GB", "AT", "IM", "AR", "SH", "IN", "JP", "FR")


def _library(text: str, region: str | None) -> list[tuple]:
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    return [(m.start, m.end, m.raw_string, m.number) for m in matcher]


def _reference_phones(text: str, region: str | None) -> list[tuple[int, int]]:
    """filters.pii._phones as it was: the library's matcher on every text with a digit."""
    if not any(map(str.isdigit, text)):
        return []
    out = []
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        raw, before = match.raw_string, pii._before(text, match.start, 30)
        if (pii._NOT_A_PHONE.search(before) or pii._NUMBER_BEFORE.search(before) or pii._DATE_LIKE.search(raw)
                or pii._starts_with_date(raw) or sum(ch.isdigit() for ch in raw) < 6):
            continue
        out.append((match.start, match.end))
    return out


def _hostile(seed: int = 7, n: int = 400) -> list[str]:
    rng = random.Random(seed)
    digits = "0123456789" * 4 + "٠١٢٣٤٥٦٧٨٩" + "０１２３４５６７８９" + "४१२" + "²³①"
    seps = [" ", "-", ".", "/", "", "  ", " - ", "(", ")", " (0) ", "–", "\u00a0", "x", " ext. ", " # ",
            ";ext=", "\\", "/ x", ":", ",", "+", "++", "＋", "（", "）", "~", "\u200b", "\u3000", "%", "€", "$"]
    prefixes = ["", "+", "+49 ", "0049 ", "Tel. ", "tel:", "Fax ", "Order ", "ISBN ", "am ", "€ ", "abc",
                "(+1) ", "011 ", "00 ", "0", "Nr. ", "IBAN DE", "v", "2017-", "\n"]
    out = [
        "x1 " * 1000 + "Tel. +49 30 12345678",
        "06.09.2017 12/05/2016 2016-05-12 14:30 1999-2001 211-227 (2003) 12:30:45",
        "€ 1.234,56 $ 1,234.56 12,50 € 99% 30% 1 234 567 890 123 456 789",
        "DE89 3704 0044 0532 0130 00 GB82WEST12345698765432 4111 1111 1111 1111",
        "1234567890" * 50, "0" * 300, "+" + "1" * 40, "((((((1234567))))))", "[+49] [30] [1234567]",
        "+49 (0) 30 / 123 456 - 78", "030/12345678 / 79", "+1 425 882-8080 x 123", "+1 425 882 8080 ext 9",
        "+41 79 123 45 67 / 68", "１２３４５６７８", "+４９ ３０ １２３４５６７", "٠٣٠ ١٢٣٤٥٦٧",
        "Tel.:+49-30-1234567;Fax:+49-30-1234568", "a+49301234567b", "%+49301234567", "+49301234567%",
    ]
    for _ in range(n):
        parts = [rng.choice(prefixes)]
        for _ in range(rng.randint(1, 9)):
            parts.append("".join(rng.choice(digits) for _ in range(rng.randint(1, 6))))
            parts.append(rng.choice(seps))
        if rng.random() < 0.3:
            parts.append(rng.choice(("abc", " Straße 5", "€", "%", ":30", " 12:30", "th", "\n")))
        out.append("".join(parts))
    # many numbers in one text: the matcher's search positions and try budget carry across them
    out.append(" , ".join(out[20:220]))
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_same_spans_as_without_the_prefilter_on_hostile_digit_strings(region):
    skipped = 0
    for text in _hostile():
        assert list(pii._phones(text, region)) == _reference_phones(text, region), (region, text[:200])
        skipped += pii._PHONE_POSSIBLE.search(text) is None
    assert skipped > 20    # the pre-filter does skip texts here


def test_prefilter_atoms_hold_no_digit_that_backslash_d_misses():
    # _phones counts str.isdigit characters, the pre-filter counts \d: the atoms' other characters
    # must hold no isdigit character.
    assert pii._PHONE_POSSIBLE is not None
    atoms = re.compile("[" + "".join(pii_phones.pattern_atoms(re._parser.parse(pii._pnm._PATTERN.pattern,
                                                                         pii._pnm._PATTERN.flags))) + "]",
                       pii._pnm._PATTERN.flags)
    digit = re.compile(r"\d")
    bad = [hex(cp) for cp in range(sys.maxunicode + 1)
           if chr(cp).isdigit() and not digit.match(chr(cp)) and atoms.match(chr(cp))]
    assert bad == []
    # ... and the atoms hold what the pattern matches, case-folded like it
    assert all(atoms.match(ch) for ch in "0٣３+＋(（[［-–./ \u00a0\u3000~xXeEtTnN;=,:#＃доДбБaAоО")


def test_prefilter_needs_six_digits_in_one_run_of_phone_characters():
    found = pii._PHONE_POSSIBLE.search
    assert not found("Seit 2017 auf Seite 12, Band 3") and not found("12345") and not found("12ab3456")
    assert found("123456") and found("Tel. 030 / 12 34") and found("+49 (0)30-12")
    assert found("12 EXT 3456") and found("12 ｅｘｔ 3456") and found("1 ДОБ 23456") and found("１２３ ４５６")


def test_the_try_budget_is_kept():
    # The library gives up after 65535 failed candidates: a number after them is not found, with
    # or without the pre-filter (one that skipped candidates without counting them would find it).
    near, far = "x1 " * 1000 + "Tel. +49 30 12345678", "x1 " * 70000 + "Tel. +49 30 12345678"
    assert [s for s in pii._phones(near, "DE")] == [(len(near) - 15, len(near))]
    assert list(pii._phones(far, "DE")) == [] == [m for m in _library(far, "DE")]
