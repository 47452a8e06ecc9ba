"""Check-digit and plausibility validators for PII candidates.

Each function takes the matched string (separators allowed where the format has them) and says
whether it is a real-looking identifier.  They are what keeps lookalikes - dates, versions, order
numbers, numbers with a wrong check digit - from being redacted.  Pure functions, no regexes that
find things in text (that is filters/pii.py).
"""
from __future__ import annotations

import ipaddress
import re
from datetime import date

_NON_DIGITS = re.compile(r"\D")


def digits_of(value: str) -> str:
    return _NON_DIGITS.sub("", value)


def _all_same(digits: str) -> bool:
    return len(set(digits)) <= 1


# --- payment cards ----------------------------------------------------------------------------

def luhn_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# (IIN prefix range low, high, number of prefix digits, allowed lengths) per scheme.
_CARD_RANGES = [
    (4, 4, 1, (13, 16, 19)),                      # Visa
    (51, 55, 2, (16,)),                           # Mastercard
    (2221, 2720, 4, (16,)),                       # Mastercard 2-series
    (34, 34, 2, (15,)), (37, 37, 2, (15,)),       # American Express
    (6011, 6011, 4, (16, 17, 18, 19)),            # Discover
    (644, 649, 3, (16, 17, 18, 19)),
    (65, 65, 2, (16, 17, 18, 19)),
    (3528, 3589, 4, (16, 17, 18, 19)),            # JCB
    (300, 305, 3, (14, 15, 16, 17, 18, 19)),      # Diners Club
    (36, 36, 2, (14, 15, 16, 17, 18, 19)), (38, 39, 2, (16, 17, 18, 19)),
    (62, 62, 2, (16, 17, 18, 19)),                # UnionPay
    (50, 50, 2, tuple(range(12, 20))),            # Maestro
    (56, 58, 2, tuple(range(12, 20))),
    (6304, 6304, 4, tuple(range(12, 20))), (6759, 6759, 4, tuple(range(12, 20))),
    (676770, 676774, 6, tuple(range(12, 20))),
    (2200, 2204, 4, (16, 17, 18, 19)),            # Mir
]


def card_scheme_plausible(digits: str) -> bool:
    for low, high, width, lengths in _CARD_RANGES:
        if len(digits) in lengths and low <= int(digits[:width]) <= high:
            return True
    return False


def card_valid(value: str) -> bool:
    digits = digits_of(value)
    return (13 <= len(digits) <= 19 and not _all_same(digits) and card_scheme_plausible(digits)
            and luhn_valid(digits))


# --- IBAN -------------------------------------------------------------------------------------

# Length of the IBAN per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_valid(value: str) -> bool:
    iban = re.sub(r"\s", "", value).upper()
    if len(iban) < 15 or not iban.isalnum() or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


# --- national ids -----------------------------------------------------------------------------

def uy_ci_valid(value: str) -> bool:
    """Uruguay cédula de identidad: 6-7 digits and a check digit (weights 2987634)."""
    digits = digits_of(value)
    if not 7 <= len(digits) <= 8:
        return False
    body, check = digits[:-1].rjust(7, "0"), int(digits[-1])
    total = sum(int(d) * w for d, w in zip(body, (2, 9, 8, 7, 6, 3, 4)))
    return (10 - total % 10) % 10 == check and not _all_same(digits)


def br_cpf_valid(value: str) -> bool:
    """Brazil CPF: 9 digits and two mod-11 check digits."""
    digits = digits_of(value)
    if len(digits) != 11 or _all_same(digits):
        return False
    for n in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:n], range(n + 1, 1, -1)))
        check = (total * 10) % 11 % 10
        if check != int(digits[n]):
            return False
    return True


def cl_rut_valid(value: str) -> bool:
    """Chile RUT/RUN: body and a mod-11 check character (0-9 or K)."""
    compact = re.sub(r"[.\s-]", "", value).upper()
    if len(compact) < 2:
        return False
    body, check = compact[:-1], compact[-1]
    if not body.isdigit() or not 1_000_000 <= int(body) <= 99_999_999:
        return False
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(body)))
    expected = 11 - total % 11
    return check == {11: "0", 10: "K"}.get(expected, str(expected))


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni_valid(value: str) -> bool:
    """Spain DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter)."""
    compact = re.sub(r"[\s-]", "", value).upper()
    if len(compact) != 9:
        return False
    head = compact[:8]
    if head[0] in "XYZ":
        head = str("XYZ".index(head[0])) + head[1:]
    if not head.isdigit():
        return False
    return _DNI_LETTERS[int(head) % 23] == compact[8]


_CUIT_PREFIXES = {"20", "23", "24", "25", "26", "27", "30", "33", "34"}


def ar_cuit_valid(value: str) -> bool:
    """Argentina CUIT/CUIL: type prefix, 8-digit document, mod-11 check digit."""
    digits = digits_of(value)
    if len(digits) != 11 or digits[:2] not in _CUIT_PREFIXES or _all_same(digits[2:10]):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check < 10 and check == int(digits[10])


MX_STATES = frozenset(
    "AS BC BS CC CL CM CS CH DF DG GT GR HG JC MC MN MS NT NL OC PL QT QR SP SL SR TC TS TL VZ YN ZS NE".split())
_CURP_ALPHABET = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"


def mx_curp_valid(value: str) -> bool:
    """Mexico CURP: structure, birth date, state code and the final check digit."""
    curp = value.upper()
    if len(curp) != 18 or curp[11:13] not in MX_STATES or curp[10] not in "HMX":
        return False
    try:
        yy, mm, dd = int(curp[4:6]), int(curp[6:8]), int(curp[8:10])
        # Position 17 is a digit for people born before 2000 and a letter after.
        century = 2000 if curp[16].isalpha() else 1900
        date(century + yy, mm, dd)
    except ValueError:
        return False
    try:
        total = sum(_CURP_ALPHABET.index(ch) * (18 - i) for i, ch in enumerate(curp[:17]))
    except ValueError:
        return False
    return curp[17].isdigit() and (10 - total % 10) % 10 == int(curp[17])


# Numbers the SSA never issued or that were published as examples (and are not anyone's).
_SSN_EXAMPLES = {"078051120", "219099999", "123456789"}


def us_ssn_valid(value: str) -> bool:
    """US SSN: area not 000/666/900-999, group not 00, serial not 0000."""
    digits = digits_of(value)
    if len(digits) != 9 or digits in _SSN_EXAMPLES or _all_same(digits):
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


# --- network and secrets ----------------------------------------------------------------------

_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def ip_public(value: str) -> bool:
    """A globally routable address: private, loopback, link-local, reserved, multicast and
    documentation ranges (192.0.2.0/24, 2001:db8::/32 ...) are not personal data."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    if addr.is_multicast or not addr.is_global:
        return False
    if addr.version == 6 and addr not in _GLOBAL_UNICAST:
        return False
    return True


def aws_key_id_valid(value: str) -> bool:
    """AWS access key ids: AKIA (long-term) / ASIA (temporary) + 16 base-32 characters.
    AWS's own documentation key ends in EXAMPLE and is not a secret."""
    return (len(value) == 20 and value[:4] in ("AKIA", "ASIA") and not value.endswith("EXAMPLE")
            and re.fullmatch(r"[A-Z2-7]{16}", value[4:]) is not None)
