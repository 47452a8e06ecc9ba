"""The cheap pre-checks of filters.pii skip a scan only where it cannot find anything."""
from __future__ import annotations

from filters import pii


def test_keyword_precheck_keeps_a_context_found_at_the_edge_of_its_slice():
    # The context is searched in the 30 characters before a bare number: "XCPF" holds no word "CPF"
    # (no \b before it), but the slice starts at its "C", where \b holds.  A pre-check with the
    # anchored keyword over the whole text would miss it; the keyword without anchors does not.
    for keyword, number, kind in (("CPF", "52998224725", "br_cpf"), ("CUIT", "20123456786", "ar_cuit"),
                                  ("SSN", "536905478", "us_ssn")):
        text = "X" + keyword + " " * (30 - len(keyword)) + number
        assert pii.find_pii(text) == [(kind, 31, 31 + len(number))], text
        assert pii.find_pii("X" + keyword + " " * 40 + number) == [], keyword   # context out of reach


def test_seven_digit_precheck_skips_only_texts_without_seven_digits_in_a_row():
    assert pii.find_pii("DNI 12345678Z", ["es_dni"]) == [("es_dni", 4, 13)]
    assert pii.find_pii("NIE X1234567L", ["es_dni"]) == [("es_dni", 4, 13)]
    assert pii.find_pii("CUIT 20-12345678-6", ["ar_cuit"]) == [("ar_cuit", 5, 18)]
    assert pii.find_pii("CUIT 20123456786", ["ar_cuit"]) == [("ar_cuit", 5, 16)]
    assert pii.find_pii("cédula 12345672", ["uy_ci"]) == [("uy_ci", 7, 15)]   # bare, with its context
    # the same document cut so that no seven digits are adjacent finds nothing, a fresh text again
    assert pii.find_pii("DNI 1234567 8Z", ["es_dni"]) == []
    assert pii.find_pii("DNI 12345678Z", ["es_dni"]) == [("es_dni", 4, 13)]


def test_phone_prefilter_passes_texts_with_a_phone():
    assert pii.find_pii("Tel. +49 30 1234567", ["phone"], "DE") == [("phone", 5, 19)]
    assert pii.find_pii("Jahr 2017, Seite 12", ["phone"], "DE") == []
