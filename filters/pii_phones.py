"""Phone-number matching for ``filters.pii``: phonenumbers' per-candidate verdicts remembered, and
the pattern of the phone pre-filter (``phone_possible``, documented there).

``phonenumbers.PhoneNumberMatcher`` walks a text's candidates (digit runs with their punctuation)
and, for each one and for the inner candidates it tries when one fails, calls
``_parse_and_verify(candidate, offset)``: parsing and validating a candidate is most of the cost of
PII detection (realweb, resiliparse extract: 36,963 calls for 967 pages, 13,300 distinct).  With
``Leniency.VALID`` (the only leniency ``filters.pii`` uses) that verdict depends on nothing but

* the candidate string and the matcher's region (``parse`` and ``_verify``'s VALID branch:
  ``is_valid_number``, the valid-x-chars and national-prefix checks read the parsed number and
  the candidate only),
* the character just before the candidate, when there is one (a latin letter or an invalid
  punctuation symbol there rejects it), and the character just after it, when there is one.

``MemoPhoneMatcher`` therefore keeps the verdict per ``(region, candidate, previous character or
None, next character or None)`` -- a key at least as fine as what the verdict reads; candidates
over ``MAX_CANDIDATE_CHARS`` are not remembered, which bounds the memo's bytes -- and on a
hit returns a new ``PhoneNumberMatch`` at this offset with the remembered number (nobody mutates
it: ``filters.pii`` reads start, end and raw string).  Everything else (the candidate walk, inner
matches, the try budget) is the library's own code, so the matches are the same in the same
order (``tests/test_pii_scan_prechecks.py`` compares with the plain matcher).  The memo is one dict
per process, cleared when it reaches ``MAX_ENTRIES`` keys.  The library's version is pinned
(pyproject.toml); ``tests/test_pii_phone_memo.py`` fails if the method this overrides is renamed.
"""
from __future__ import annotations

import re
from typing import Iterator

import phonenumbers
from phonenumbers.phonenumbermatcher import PhoneNumberMatch, PhoneNumberMatcher

MAX_ENTRIES = 1 << 16
# A longer candidate is not remembered (the matcher's pattern lets one grow with blanks; ``parse``
# refuses anything over 250 characters, so its verdict is cheap anyway): at most 65,536 keys of
# at most this many characters each.
MAX_CANDIDATE_CHARS = 250
_MISS = object()
_verdicts: dict[tuple, object] = {}


class MemoPhoneMatcher(PhoneNumberMatcher):
    """``PhoneNumberMatcher(text, region, leniency)`` whose candidate verdicts are remembered
    across texts (``Leniency.VALID`` only; any other leniency is the library's code unchanged)."""

    def _parse_and_verify(self, candidate, offset):
        if self.leniency != phonenumbers.Leniency.VALID or len(candidate) > MAX_CANDIDATE_CHARS:
            return super()._parse_and_verify(candidate, offset)
        text = self.text
        end = offset + len(candidate)
        key = (self.preferred_region, candidate, text[offset - 1] if offset > 0 else None,
               text[end] if end < len(text) else None)
        numobj = _verdicts.get(key, _MISS)
        if numobj is _MISS:
            match = super()._parse_and_verify(candidate, offset)
            numobj = None if match is None else match.number
            if len(_verdicts) >= MAX_ENTRIES:
                _verdicts.clear()
            _verdicts[key] = numobj
            return match
        return None if numobj is None else PhoneNumberMatch(offset, candidate, numobj)


def clear() -> None:
    """Forget every remembered verdict (tests)."""
    _verdicts.clear()


def remembered() -> int:
    """How many verdicts are remembered now."""
    return len(_verdicts)


# --- the phone pre-filter's pattern (``filters.pii._PHONE_POSSIBLE``) ------------------------------
def pattern_atoms(seq) -> Iterator[str]:
    """Class items for every character the parsed pattern ``seq`` can match (ValueError: unknown)."""
    from re import _constants as c
    for op, av in seq:
        if op is c.LITERAL or op is c.IN:
            for o, a in (av if op is c.IN else [(op, av)]):
                if (o, a) != (c.CATEGORY, c.CATEGORY_DIGIT) and o is not c.LITERAL and o is not c.RANGE:
                    raise ValueError(o)
                yield (r"\d" if o is c.CATEGORY else re.escape(chr(a)) if o is c.LITERAL
                       else f"{re.escape(chr(a[0]))}-{re.escape(chr(a[1]))}")
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) or (op is c.SUBPATTERN and not av[1] and not av[2]):
            yield from pattern_atoms(av[-1])
        elif op is c.BRANCH:
            yield from (atom for branch in av[1] for atom in pattern_atoms(branch))
        else:
            raise ValueError(op)


def phone_possible(pattern: re.Pattern | None) -> re.Pattern | None:
    """Found in every text where ``filters.pii._phones`` yields a span: a kept raw match has >= 6 ``isdigit``
    characters in a candidate (a ``pattern`` match), so in a run of characters its atoms match
    (their union, compiled with its flags for the same case folding), and none is an ``isdigit``
    character that ``\\d`` misses (tests/test_pii_phone_prefilter.py checks every code point).  Texts
    that have one go to the matcher whole, so its context checks and try budget are untouched."""
    from re import _parser
    if not isinstance(pattern, re.Pattern):
        return None
    try:
        atoms = "".join(pattern_atoms(_parser.parse(pattern.pattern, pattern.flags)))
    except (ValueError, AttributeError, TypeError):
        return None
    return re.compile(rf"\d(?:(?:(?!\d)[{atoms}])*+\d){{5}}", pattern.flags)
