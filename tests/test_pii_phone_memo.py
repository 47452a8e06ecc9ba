"""``filters.pii_phones.MemoPhoneMatcher`` remembers phonenumbers' per-candidate verdicts: the
matches must be those of the plain ``PhoneNumberMatcher`` (same spans, same numbers, same order),
also when the same candidate comes back next to other characters, in another region, or after the
memo was cleared, and the memo must really be used (a renamed library method would silently
disable it)."""
from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers.phonenumbermatcher import PhoneNumberMatcher

from filters import pii_phones
from filters.pii_phones import MemoPhoneMatcher

VALID = phonenumbers.Leniency.VALID
NUMBERS = ("030 1234567", "+49 30 1234567", "(030) 123 45 67", "0170-1234567", "+1 425 882-8080",
           "425 882 8080", "06.09.2017", "1681", "2019", "12,99", "+44 20 7946 0958", "020 7946 0958",
           "+55 11 91234-5678", "(11) 91234-5678", "0800 123 456", "112", "x1234", "10:30", "1.234.567-2")
CONTEXTS = ("", " ", "a", "Tel. ", "€", "%", "é", "\n", "x", "/", "(", "9")


def _texts(rng: random.Random) -> list[str]:
    out = []
    for number in NUMBERS:
        for before in CONTEXTS:
            for after in CONTEXTS:
                out.append(f"{before}{number}{after}")
    for _ in range(300):
        out.append(" ".join(rng.choice(NUMBERS) + rng.choice(CONTEXTS) for _ in range(rng.randint(1, 8))))
    return out


def _matches(cls, text: str, region):
    return [(m.start, m.end, m.raw_string, m.number) for m in cls(text, region, leniency=VALID)]


@pytest.mark.parametrize("region", [None, "DE", "US", "GB", "BR", "AT"])
def test_the_memo_gives_the_plain_matchers_matches(region):
    texts = _texts(random.Random(7))
    pii_phones.clear()
    for text in texts + texts:        # the second pass is answered from the memo
        assert _matches(MemoPhoneMatcher, text, region) == _matches(PhoneNumberMatcher, text, region), text


def test_the_memo_is_used_and_bounded(monkeypatch):
    pii_phones.clear()
    calls = []
    original = PhoneNumberMatcher._parse_and_verify
    monkeypatch.setattr(PhoneNumberMatcher, "_parse_and_verify",
                        lambda self, c, o: calls.append(c) or original(self, c, o))
    text = "Ruf an: 030 1234567 oder 030 1234567. Fax: 030 1234567!"
    first = _matches(MemoPhoneMatcher, text, "DE")
    assert len(first) == 3 and calls and pii_phones.remembered() > 0
    n = len(calls)
    assert _matches(MemoPhoneMatcher, text, "DE") == first
    assert len(calls) == n            # every verdict came from the memo
    monkeypatch.setattr(pii_phones, "MAX_ENTRIES", 2)
    pii_phones.clear()
    _matches(MemoPhoneMatcher, " ".join(NUMBERS), "DE")
    assert pii_phones.remembered() <= 2


def test_other_leniencies_are_not_remembered():
    pii_phones.clear()
    text = "Call +1 425 882-8080 now"
    got = [(m.start, m.end) for m in MemoPhoneMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)]
    assert got == [(m.start, m.end) for m in PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)]
    assert pii_phones.remembered() == 0


def test_the_memo_keeps_regions_apart_and_long_candidates_out():
    pii_phones.clear()
    texts = _texts(random.Random(11))[:400]
    for region in ("DE", "US", "GB", None, "DE", "BR"):   # no clearing between regions
        for text in texts:
            assert _matches(MemoPhoneMatcher, text, region) == _matches(PhoneNumberMatcher, text, region), (region, text)
    pii_phones.clear()
    # the matcher's pattern lets a candidate grow with blanks before an extension
    text = "Tel 030 1234560" + " " * 5000 + "x12 and more"
    assert _matches(MemoPhoneMatcher, text, "DE") == _matches(PhoneNumberMatcher, text, "DE")
    assert _matches(MemoPhoneMatcher, text, "DE") == _matches(PhoneNumberMatcher, text, "DE")
    assert pii_phones._verdicts and all(len(key[1]) <= 250 for key in pii_phones._verdicts)   # parse's limit

