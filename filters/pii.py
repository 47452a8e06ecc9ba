"""Find and redact personal data and secrets in document text.

Changing what a detector matches changes the stored ``pii_counts`` signal: bump
``filters.registry.SIGNALS_REVISION`` with it.  Refine skips the redaction of a page whose
current stored counts are all zero, so stale counts would leave PII in place.

Every type is found in two steps: a permissive pattern proposes candidates, and a validator from
``filters.pii_validators`` (check digits, issuer ranges, public address ranges...) or the
``phonenumbers`` library decides.  Bare digit runs that could be anything (11 digits for a CPF,
9 for an SSN) are only taken when the identifier's name is written just before them; the
formatted spellings (``529.982.247-25``, ``123-45-6789``) need no context.  When candidates of
different types overlap, the more specific type wins (a secret over an email, an IBAN over a
card number, anything over a phone number).

Public API (other stages rely on these names): ``find_pii``, ``redact``, ``region_hint_for``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

import phonenumbers
import yaml
from phonenumbers import phonenumbermatcher as _pnm

from filters import pii_validators as v
from filters.pii_phones import MemoPhoneMatcher, phone_possible as _phone_possible

Span = tuple[str, int, int]

PII_TYPES = ("email", "ip", "phone", "card", "iban", "uy_ci", "br_cpf", "cl_rut", "es_dni",
             "ar_cuit", "mx_curp", "us_ssn", "aws_key", "private_key")

_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "defaults" / "pii.yaml"


@lru_cache(maxsize=1)
def _defaults() -> dict:
    return yaml.safe_load(_CONFIG.read_text(encoding="utf-8"))["pii"]


def default_placeholders() -> dict[str, str | None]:
    return dict(_defaults()["placeholders"])


def enabled_types(placeholders: Mapping[str, str | None] | None) -> list[str]:
    """Types ``pii.placeholders`` turns on (null: off), in order; None or {}: the defaults'."""
    return [t for t, p in (placeholders or default_placeholders()).items() if p is not None]


# --- context helpers --------------------------------------------------------------------------

def _before(text: str, start: int, width: int = 30) -> str:
    return text[max(0, start - width):start]


def _context_has(pattern: re.Pattern, width: int = 30) -> Callable[[str, int], bool]:
    return lambda text, start: pattern.search(_before(text, start, width)) is not None


# Words that make a number an order/invoice/product/reference number rather than a phone.
_NOT_A_PHONE = re.compile(
    r"(?i)(order|bestell|auftrag|invoice|rechnung|faktura|zamówien|pedido|commande|ticket|"
    r"isbn|issn|ean|gtin|sku|art\.?-?nr|artikel|item|product|produkt|kunden|customer|konto|"
    r"account|iban|bic|blz|\bref\b|tracking|sendung|aktenzeichen|vorgang|steuer|\bid\b)[^\n]{0,12}$")
# phonenumbers' VALID leniency still accepts dotted dates ("06.09.2017") in some regions.
_DATE_LIKE = re.compile(r"^\s*(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2})\s*$"
                        r"|(?<!\d)(?:\d{1,2}\.\d{1,2}\.(?:19|20)\d{2}|(?:19|20)\d{2}-\d{2}-\d{2})(?!\d)")
_LEADING_DMY = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(?:\d{2}|\d{4})(?![\d.])")


def _starts_with_date(raw: str) -> bool:
    m = _LEADING_DMY.match(raw)
    return m is not None and 1 <= int(m.group(1)) <= 31 and 1 <= int(m.group(2)) <= 12


# A match that continues a number ("53.368944", "27/027/36500") is part of something else.
_NUMBER_BEFORE = re.compile(r"\d[.,/]?$")
# "+81 158-23-2012" is a phone number, not an SSN.
_COUNTRY_CODE_BEFORE = re.compile(r"\+\d{1,3}[\s-]*$")
_VERSION_BEFORE = re.compile(
    r"(?i)(\bv|version|ver\.?|release|build|firmware|update|versi[oó]n|wersja|§|section|abschnitt|"
    r"kapitel|chapter|art\.?|nr\.?)\s*$")
_IP_CONTEXT = re.compile(r"(?i)(\bip\b|ipv4|address|adresse|adres|dirección|host|server)")

# --- detectors: each yields (start, end) of validated spans -------------------------------------
# Speed: a leading look-behind is written after the first character it guards, e.g.
# ``(?<![\d.,-])\d`` as ``\d(?<![\d.,-]\d)`` (the same condition on the same character), so
# that the regex engine can skip ahead to candidate characters instead of trying every position.

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
# "logo@2x.png" and friends: retina image names, not addresses.
_FILE_TLDS = {"png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "css", "js", "ico", "bmp", "tif", "tiff"}


def _emails(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    if _PRECHECKS and "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        local, domain = m.group().rsplit("@", 1)
        if ".." in local or local.endswith(".") or domain.rsplit(".", 1)[-1].lower() in _FILE_TLDS:
            continue
        yield m.span()


_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
_TWO_COLONS = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:]|\.\d)")


def _ips(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    # every IPv4 match holds a digit, ".", a digit (its first two parts: "\d{1,3}\.\d")
    for m in (_IPV4.finditer(text) if not _PRECHECKS or _digit_dot_digit(text) else ()):
        addr = m.group()
        if not v.ip_public(addr) or _VERSION_BEFORE.search(_before(text, m.start(), 15)):
            continue
        # "1.2.3.4" and "2.0.0.16" are far more often version or section numbers than addresses.
        parts = addr.split(".")
        looks_like_version = all(len(p) == 1 for p in parts) or (len(parts[0]) == 1 and parts[1] == "0")
        if looks_like_version and not _IP_CONTEXT.search(_before(text, m.start(), 40)):
            continue
        yield m.span()
    if _PRECHECKS and _TWO_COLONS.search(text) is None:   # every IPv6 match holds ":", up to 4 hex digits, ":"
        return
    for m in _IPV6.finditer(text):
        if m.group().count(":") >= 2 and v.ip_public(m.group()):
            yield m.span()


_CARD = re.compile(r"\d(?<![\d.,/-]\d)(?:[ -]?\d){11,18}(?![\d-]|[.,]\d)")


def _cards(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    # A match holds 6 digits with at most one " " or "-" between them, which the phone pre-filter
    # finds where its atoms hold both (``_CARD_GATED``).
    if _PRECHECKS and _CARD_GATED and not _phone_possible_in(text):
        return
    for m in _CARD.finditer(text):
        raw = m.group()
        separators = set(re.sub(r"\d", "", raw))
        if len(separators) > 1:
            continue                      # "1234 5678-9012 ..." is not how cards are written
        if v.card_valid(raw):
            yield m.span()


_IBAN_START = re.compile(r"([A-Z](?<![A-Za-z0-9][A-Z])[A-Z])(\d{2})(?=[ ]?[A-Z0-9])")


def _ibans(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    for m in _IBAN_START.finditer(text):
        length = v.IBAN_LENGTHS.get(m.group(1))
        if not length:
            continue
        # Consume exactly the country's length of characters, allowing single spaces between
        # groups; a longer run glued to it means this is not an IBAN.
        pos, count = m.start(), 0
        while pos < len(text) and count < length:
            ch = text[pos]
            if ch.isascii() and ch.isalnum():
                count += 1
                pos += 1
            elif ch == " " and 0 < count and pos + 1 < len(text) and text[pos + 1].isascii() and text[pos + 1].isalnum():
                pos += 1
            else:
                break
        if count != length or (pos < len(text) and text[pos].isascii() and text[pos].isalnum()):
            continue
        if v.iban_valid(text[m.start():pos]):
            yield m.start(), pos


# Pre-checks, run at most once per text (cached; a str caches its hash): each holds in every text
# where a scan that uses it can match, so a text without it is skipped.  Each returns something
# true or false.  ``_PRECHECKS = False`` skips nothing and matches phones without the verdict memo
# (``filters.pii_phones``); tests/test_pii_scan_prechecks.py compares.
_PRECHECKS = True
_cached = lru_cache(maxsize=2)
# ``\d{6}`` / ``\d{7}``: a run's first digit and 5 (6) more, so the engine does not retry inside a
# run.  Six in a row pass the (cached) phone pre-filter too, with no atom between the digits.
_SIX = re.compile(r"\d(?<!\d\d)\d{5}").search
_SEVEN = re.compile(r"\d(?<!\d\d)\d{6}").search
_six_digits = _cached(lambda text: _phone_possible_in(text) and _SIX(text) is not None)
_seven_digits = _cached(lambda text: _six_digits(text) and _SEVEN(text) is not None)
# ``\d-[\dkK]`` and ``\d\.\d``, searched from the rarer "-" and "." (a literal first is fast).
_digit_hyphen = _cached(re.compile(r"-(?<=\d-)[\dkK]").search)
_digit_dot_digit = _cached(re.compile(r"\.(?<=\d\.)\d").search)


def _pattern_detector(pattern: re.Pattern, validator: Callable[[str], bool],
                      context: Callable[[str, int], bool] | None = None,
                      bare: re.Pattern | None = None, exclude_before: re.Pattern | None = None,
                      context_needs: re.Pattern | None = None, needs: tuple[tuple, tuple] = ((), ()),
                      ) -> Callable[[str, str | None], Iterator[tuple[int, int]]]:
    """Formatted spellings always (unless ``exclude_before`` matches the text just before);
    ``bare`` spellings only with ``context`` before them.  Skipped where a match cannot be: without
    ``context_needs`` (the context's keyword minus ``\\b``, which a slice's edge may pass for) for
    ``bare``, and where a pre-check that ``needs`` (for pattern, for bare) lists is false: each
    holds in every text where that pattern matches (the comment at its detector says why)."""
    def detect(text: str, region: str | None) -> Iterator[tuple[int, int]]:
        if not _PRECHECKS or all(need(text) for need in needs[0]):
            for m in pattern.finditer(text):
                if exclude_before is not None and exclude_before.search(_before(text, m.start(), 10)):
                    continue
                if validator(m.group()):
                    yield m.span()
        if bare is None or context is None or (_PRECHECKS and not all(need(text) for need in needs[1])) or (
                _PRECHECKS and context_needs is not None and context_needs.search(text) is None):
            return   # the cached pre-checks before the keyword search, which most texts fail
        for m in bare.finditer(text):
            if context(text, m.start()) and validator(m.group()):
                yield m.span()
    return detect


_BARE11 = re.compile(r"\d(?<![\d.,/-]\d)\d{10}(?![\d-]|[.,]\d)")

# Pre-checks (``needs``) of each spelling, from its pattern: "\d-\d" = ``_digit_hyphen``, a run of
# 6 or 7 digits = ``_six_digits`` / ``_seven_digits``.
_uy_ci = _pattern_detector(   # "1.234.567-2" / "1234567-2": "\d-\d"; bare 7 or 8 digits
    re.compile(r"\d(?<![\d.,-]\d)(?:\.?\d{3}\.?\d{3}|\d{2}\.?\d{3})-\d(?![\d-]|[.,]\d)"), v.uy_ci_valid,
    _context_has(re.compile(r"(?i)(c[ée]dula|\bC\.\s?I\.?|\bCI\b)")),
    re.compile(r"\d(?<![\d.,/-]\d)\d{6,7}(?![\d-]|[.,]\d)"), needs=((_digit_hyphen,), (_seven_digits,)))
_br_cpf = _pattern_detector(   # "529.982.247-25": "\d-\d"; bare 11 digits
    re.compile(r"\d(?<![\d.,-]\d)\d{2}\.\d{3}\.\d{3}-\d{2}(?![\d-]|[.,]\d)"), v.br_cpf_valid,
    _context_has(re.compile(r"(?i)\bCPF\b")), _BARE11, context_needs=re.compile(r"(?i)CPF"),
    needs=((_digit_hyphen,), (_seven_digits,)))
_cl_rut = _pattern_detector(   # both spellings: a digit, "-", then [\dkK]
    re.compile(r"\d(?<![\d.,-]\d)(?:\d?(?:\.\d{3}){2}-[\dkK](?![\w-])|\d{6,7}-[\dkK](?![\w-]))"),
    v.cl_rut_valid, needs=((_digit_hyphen,), ()))
_es_dni = _pattern_detector(   # both spellings hold 7 digits in a row
    re.compile(r"(?:\d(?<![\w-]\d)\d{7}|[XYZ](?<![\w-][XYZ])-?\d{7})-?[A-Z](?![\w-])"), v.es_dni_valid,
    needs=((_seven_digits,), ()))
_ar_cuit = _pattern_detector(   # "20-12345678-6": "\d-\d" and 8 digits; bare 11 digits
    re.compile(r"\d(?<![\d.,-]\d)\d-\d{8}-\d(?![\d-]|[.,]\d)"), v.ar_cuit_valid,
    _context_has(re.compile(r"(?i)\bCUI[TL]\b")), _BARE11, context_needs=re.compile(r"(?i)CUI[TL]"),
    needs=((_digit_hyphen, _seven_digits), (_seven_digits,)))
_mx_curp = _pattern_detector(   # 6 digits (the birth date) in a row
    re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[A-Z0-9]\d(?![A-Za-z0-9])"),
    v.mx_curp_valid, needs=((_six_digits,), ()))
_us_ssn = _pattern_detector(   # "123-45-6789": "\d-\d"; bare 9 digits
    re.compile(r"\d(?<![\d-]\d)\d{2}-\d{2}-\d{4}(?![\d-])"), v.us_ssn_valid,
    _context_has(re.compile(r"(?i)(\bSSN\b|social security)")),
    re.compile(r"\d(?<![\d.,/-]\d)\d{8}(?![\d-]|[.,]\d)"),
    exclude_before=_COUNTRY_CODE_BEFORE, context_needs=re.compile(r"(?i)SSN|social security"),
    needs=((_digit_hyphen,), (_seven_digits,)))

_AWS = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")


def _aws_keys(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    if _PRECHECKS and "AKIA" not in text and "ASIA" not in text:
        return
    for m in _AWS.finditer(text):
        if v.aws_key_id_valid(m.group()):
            yield m.span()


_KEY_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
_KEY_BODY_LINE = re.compile(r"[ \t]*(?:[A-Za-z0-9+/=]+|[A-Za-z-]+:.*|)[ \t]*\r?(?:\n|$)")
_MAX_KEY_CHARS = 64_000


def _private_keys(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    pos = 0
    while (m := _KEY_BEGIN.search(text, pos)) is not None:
        end_marker = f"-----END {m.group(1)}PRIVATE KEY{m.group(2) or ''}-----"
        end = text.find(end_marker, m.end(), m.end() + _MAX_KEY_CHARS)
        if end >= 0:
            stop = end + len(end_marker)
        else:
            # A page cut inside the key: take the base64 lines that follow the header.
            stop = m.end()
            while stop < len(text) and stop - m.end() < _MAX_KEY_CHARS:
                line = _KEY_BODY_LINE.match(text, stop)
                if line is None or line.end() == stop:
                    break
                stop = line.end()
            stop = len(text[:stop].rstrip())
        yield m.start(), stop
        pos = stop


_VALID = phonenumbers.Leniency.VALID
_PHONE_POSSIBLE = _phone_possible(getattr(_pnm, "_PATTERN", None))  # None: no pre-filter
# False where the pre-filter proves that ``_phones`` finds nothing (cards and digit runs use it too).
_phone_possible_in = _cached(lambda text: _PHONE_POSSIBLE is None or _PHONE_POSSIBLE.search(text) is not None)
# Its atoms hold " " and "-" (the only way to match this): it finds every card number too.
_CARD_GATED = _PHONE_POSSIBLE is not None and _PHONE_POSSIBLE.fullmatch("0 0-0 0-0 0") is not None


def _phones(text: str, region: str | None) -> Iterator[tuple[int, int]]:
    if not any(map(str.isdigit, text)) or (_PRECHECKS and not _phone_possible_in(text)):
        return
    for match in (MemoPhoneMatcher if _PRECHECKS else phonenumbers.PhoneNumberMatcher)(text, region, leniency=_VALID):
        raw = match.raw_string
        before = _before(text, match.start, 30)
        if (_NOT_A_PHONE.search(before) or _NUMBER_BEFORE.search(before) or _DATE_LIKE.search(raw)
                or _starts_with_date(raw)):
            continue
        if sum(ch.isdigit() for ch in raw) < 6:
            continue   # "1681": a year or a house number, even where short numbers exist

        yield match.start, match.end


# type -> (priority on overlap, detector)
_DETECTORS: dict[str, tuple[int, Callable[[str, str | None], Iterable[tuple[int, int]]]]] = {
    "private_key": (100, _private_keys),
    "aws_key": (90, _aws_keys),
    "email": (80, _emails),
    "iban": (70, _ibans),
    "mx_curp": (65, _mx_curp),
    "card": (60, _cards),
    "br_cpf": (55, _br_cpf),
    "ar_cuit": (55, _ar_cuit),
    "cl_rut": (54, _cl_rut),
    "uy_ci": (53, _uy_ci),
    "es_dni": (52, _es_dni),
    "us_ssn": (51, _us_ssn),
    "ip": (40, _ips),
    "phone": (10, _phones),
}
assert set(_DETECTORS) == set(PII_TYPES)


def _enabled(types: Iterable[str] | None) -> list[str]:
    if types is None:
        return list(PII_TYPES)
    wanted = list(types)
    unknown = sorted(set(wanted) - set(PII_TYPES))
    if unknown:
        raise ValueError(f"unknown PII type(s) {', '.join(unknown)}; known: {', '.join(PII_TYPES)}")
    return wanted


def find_pii(text: str, types: Iterable[str] | None = None, region_hint: str | None = None) -> list[Span]:
    """Non-overlapping ``(type, start, end)`` spans in text order.

    ``types`` limits detection (default: all of ``PII_TYPES``); ``region_hint`` is an ISO 3166
    region (``"DE"``) for phone numbers written in national form - without it only numbers in
    international form are found.
    """
    if not text:
        return []
    region = region_hint.upper() if region_hint else None
    candidates: list[tuple[int, int, int, str]] = []
    for kind in _enabled(types):
        priority, detect = _DETECTORS[kind]
        for start, end in detect(text, region):
            if end > start:
                candidates.append((priority, end - start, start, kind))
    # Highest priority first, then the longer span, then the earlier one: deterministic.
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    taken: list[tuple[int, int, str]] = []
    for _, length, start, kind in candidates:
        end = start + length
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, kind))
    return [(kind, start, end) for start, end, kind in sorted(taken)]


def redact(text: str, placeholders: Mapping[str, str | None] | None = None,
           region_hint: str | None = None) -> tuple[str, dict[str, int]]:
    """``(redacted text, {type: count})``.

    ``placeholders`` maps type -> placeholder (the ``pii.placeholders`` config section; None or
    {}: the defaults); a type that is absent or null is not detected.  Counts include every enabled type, zeros too, so
    the signal columns are the same for every document.
    """
    placeholders = placeholders or default_placeholders()
    counts = {t: 0 for t in enabled_types(placeholders)}
    spans = find_pii(text, list(counts), region_hint)
    if not spans:
        return text, counts
    out, pos = [], 0
    for kind, start, end in spans:
        out.append(text[pos:start])
        out.append(str(placeholders[kind]))
        counts[kind] += 1
        pos = end
    out.append(text[pos:])
    return "".join(out), counts


_TLD_TO_REGION = {"uk": "GB"}   # ccTLDs that are not the ISO code of their country


def region_hint_for(url: str | None, lang: str | None,
                    lang_regions: Mapping[str, str] | None = None) -> str | None:
    """Phone region for a page: its country-code TLD, else its language, else None."""
    supported = phonenumbers.SUPPORTED_REGIONS
    host = None
    if url:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            host = None
    if host:
        tld = host.rstrip(".").rsplit(".", 1)[-1].lower()
        region = _TLD_TO_REGION.get(tld, tld.upper())
        if len(tld) == 2 and region in supported:
            return region
    if lang:
        lang = lang.strip().replace("_", "-")
        base, _, country = lang.partition("-")
        if len(country) == 2 and country.upper() in supported:
            return country.upper()
        mapping = _defaults()["phone_regions_by_language"] if lang_regions is None else lang_regions
        region = mapping.get(base.lower())
        if region and str(region).upper() in supported:
            return str(region).upper()
    return None
