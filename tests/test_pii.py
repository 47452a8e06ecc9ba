"""PII detection and redaction: the labelled set, validators, placeholders from config."""
from __future__ import annotations

import pytest

from filters import pii_validators as v
from filters.pii import PII_TYPES, default_placeholders, find_pii, redact, region_hint_for
from tests.pii_cases import CASES, expected_spans


@pytest.mark.parametrize("text,region,labels", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_labelled_case(text, region, labels):
    got = find_pii(text, region_hint=region)
    want = expected_spans(text, labels)
    assert [(k, text[s:e]) for k, s, e in got] == [(k, text[s:e]) for k, s, e in want]
    assert got == want


def test_labelled_set_covers_every_type_with_positives_and_negatives():
    positive_types = {kind for _, _, labels in CASES for kind, _ in labels}
    assert positive_types == set(PII_TYPES)
    assert sum(1 for _, _, labels in CASES if not labels) >= 30


# --- validators: one digit off must flip the answer -------------------------------------------

@pytest.mark.parametrize("validator,good,bad", [
    (v.br_cpf_valid, "529.982.247-25", "529.982.247-26"),
    (v.br_cpf_valid, "12345678909", "12345678900"),
    (v.cl_rut_valid, "12.345.678-5", "12.345.678-4"),
    (v.cl_rut_valid, "7654321-6", "7654321-K"),
    (v.uy_ci_valid, "1.234.567-2", "1.234.567-1"),
    (v.uy_ci_valid, "812.345-6", "812.345-7"),
    (v.es_dni_valid, "12345678Z", "12345678Y"),
    (v.es_dni_valid, "X1234567L", "X1234567M"),
    (v.ar_cuit_valid, "20-12345678-6", "20-12345678-7"),
    (v.ar_cuit_valid, "30-71234567-1", "31-71234567-1"),     # 31 is no CUIT type prefix
    (v.mx_curp_valid, "HEGG560427MVZRRL04", "HEGG560427MVZRRL03"),
    (v.mx_curp_valid, "HEGG560427MVZRRL04", "HEGG560427MXXRRL04"),   # XX is no state
    (v.us_ssn_valid, "536-22-8471", "666-22-8471"),
    (v.us_ssn_valid, "536-22-8471", "936-22-8471"),
    (v.iban_valid, "DE89 3704 0044 0532 0130 00", "DE88 3704 0044 0532 0130 00"),
    (v.iban_valid, "NO9386011117947", "NO938601111794"),     # shortest IBAN, one char short
    (v.card_valid, "4111 1111 1111 1111", "4111 1111 1111 1121"),
    (v.card_valid, "378282246310005", "378282246310006"),
    (v.aws_key_id_valid, "AKIAZ3MSJV4W5GLVQ7XA", "AKIAZ3MSJV4W5GLVQ1XA"),  # 1 is not base-32
])
def test_validator_flips(validator, good, bad):
    assert validator(good) is True
    assert validator(bad) is False


def test_luhn_known_values():
    assert v.luhn_valid("79927398713")
    assert not v.luhn_valid("79927398710")
    assert not v.luhn_valid("7992739871x")


@pytest.mark.parametrize("addr,public", [
    ("81.169.145.105", True), ("2a00:1450:4001:82b::200e", True),
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("127.0.0.1", False),
    ("169.254.1.1", False), ("100.64.0.1", False), ("192.0.2.1", False), ("198.51.100.2", False),
    ("203.0.113.9", False), ("224.0.0.1", False), ("255.255.255.255", False), ("0.0.0.0", False),
    ("::1", False), ("fe80::1", False), ("fc00::1", False), ("2001:db8::5", False), ("ff02::1", False),
    ("999.1.1.1", False), ("not-an-ip", False),
])
def test_ip_public(addr, public):
    assert v.ip_public(addr) is public


# --- redaction -------------------------------------------------------------------------------

def test_redact_uses_placeholders_and_counts_every_enabled_type():
    text = "Mail a@example.org or b@example.org, IBAN DE89 3704 0044 0532 0130 00."
    redacted, counts = redact(text)
    assert redacted == "Mail <EMAIL> or <EMAIL>, IBAN <IBAN>."
    assert counts["email"] == 2 and counts["iban"] == 1
    assert set(counts) == set(PII_TYPES) and counts["phone"] == 0


def test_redact_with_configured_placeholders_and_disabled_types():
    text = "a@example.org, CPF 529.982.247-25"
    placeholders = {**default_placeholders(), "email": "[mail]", "br_cpf": None}
    redacted, counts = redact(text, placeholders)
    assert redacted == "[mail], CPF 529.982.247-25"
    assert "br_cpf" not in counts and counts["email"] == 1


def test_redact_phone_depends_on_region_hint():
    text = "Rufen Sie 030 12345678 an"
    assert redact(text)[0] == text
    assert redact(text, region_hint="DE")[0] == "Rufen Sie <PHONE> an"


def test_default_placeholders_come_from_config_and_cover_all_types():
    from pipelines.config import load_config

    cfg = load_config(overrides={"pii": {"placeholders": {"email": "<MAIL>"}}})
    assert set(cfg["pii"]["placeholders"]) == set(PII_TYPES)
    assert redact("x@example.org", cfg["pii"]["placeholders"])[0] == "<MAIL>"
    assert default_placeholders()["iban"] == "<IBAN>"


def test_overlaps_resolve_to_the_more_specific_type():
    # The IBAN's digits would also pass as a phone number; the email holds a "phone" too.
    text = "IBAN DE89370400440532013000 / 4915112345678@sms.example.com"
    got = [(k, text[s:e]) for k, s, e in find_pii(text, region_hint="DE")]
    assert got == [("iban", "DE89370400440532013000"), ("email", "4915112345678@sms.example.com")]


def test_find_pii_rejects_unknown_types_and_handles_empty_text():
    with pytest.raises(ValueError, match="unknown PII type"):
        find_pii("x", types=["passport"])
    assert find_pii("") == [] and find_pii(None) == []
    assert redact("", None) == ("", {t: 0 for t in PII_TYPES})


def test_find_pii_types_filter():
    text = "a@example.org 4111 1111 1111 1111"
    assert [k for k, _, _ in find_pii(text, types=["card"])] == ["card"]


def test_spans_are_ordered_and_disjoint_on_a_dense_text():
    text = " ".join(t for t, _, _ in CASES)
    spans = find_pii(text, region_hint="DE")
    assert spans == sorted(spans, key=lambda s: s[1])
    assert all(a[2] <= b[1] for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("url,lang,region", [
    ("https://www.dailymail.co.uk/news", "en", "GB"),
    ("https://taz.de/x", None, "DE"),
    ("https://elpais.com/x", "es", "ES"),
    ("https://example.com/x", "pt-BR", "BR"),
    ("https://example.com/x", "pl", "PL"),
    ("https://europa.eu/x", "fr", "FR"),            # .eu is no phone region: language decides
    ("https://example.org/x", "xx", None),
    ("https://example.org/x", None, None),
    (None, "de", "DE"),
    ("http://[::1]:80/x", None, None),
])
def test_region_hint_for(url, lang, region):
    assert region_hint_for(url, lang) == region


def test_region_hint_for_uses_the_given_language_map():
    assert region_hint_for("https://example.com", "es", {"es": "MX"}) == "MX"
