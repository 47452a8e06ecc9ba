"""Property-based fuzzing of the WARC reader and the record -> outcome path (issue 11).

Hypothesis draws the damage (bit flips, cuts, bad or missing Content-Length, spliced half
records / members / junk, oversized header lines) applied to real records of
``samples/sample.warc.gz``, gzipped per record or plain; ``bench/fuzz_warc.py`` holds the
mutations and the invariants and runs many more cases.  Derandomized, so CI sees the same
examples every run; a handful of hand-picked cases pin the mutations that found bugs.
"""
from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_warc import KINDS, Case, Chooser, _encode, _record_id, base_records, make_case, run_case


class _Drawn(Chooser):
    """A Chooser whose choices come from Hypothesis (so failures shrink to a small case)."""

    def __init__(self, data):
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))


def _check(case: Case) -> None:
    result = run_case(case)
    assert result.escape is None, f"{case.kind} (gz={case.gz}): exception escaped: {result.escape}"
    assert not result.violations, f"{case.kind} (gz={case.gz}): {result.violations}"


@pytest.fixture(autouse=True, scope="module")
def _quiet_warcio():
    logging.getLogger("warcio").setLevel(logging.ERROR)


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_damaged_streams_keep_every_record_outside_the_damage(data):
    _check(make_case(_Drawn(data)))


class _Script(Chooser):
    """Replays fixed choices: a regression case that does not depend on Hypothesis' search."""

    def __init__(self, *values):
        self.values = list(values)

    def integer(self, lo: int, hi: int) -> int:
        value = self.values.pop(0) if self.values else lo
        return min(max(value, lo), hi)


@pytest.mark.parametrize("gz", [1, 0], ids=["warc.gz", "warc"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_mutation_on_a_middle_record(kind, gz):
    """Every kind of damage on record 5 of 10: the records before and after it survive."""
    choices = [10, gz, KINDS.index(kind), 5]
    if kind == "content_length":
        choices += [1, 4]                       # LENGTHS[4]: 20 digits
    if kind == "splice":
        choices += [3, 0, 200]                  # half of member 3, cut at 200 bytes
    if kind == "truncate":
        choices += [20_000]                     # inside a later record
    _check(make_case(_Script(*choices)))


@pytest.mark.parametrize("gz", [True, False], ids=["warc.gz", "warc"])
def test_the_undamaged_stream_reads_whole(gz):
    """The invariants hold trivially on the valid stream: every record, no dead letter."""
    records = base_records()
    parts, offsets = _encode(list(records), gz)
    case = Case("none", gz, b"".join(parts), [(o, _record_id(r)) for o, r in zip(offsets, records)])
    result = run_case(case)
    assert result.escape is None and not result.violations
    assert result.items == len(records) >= 10 and not any(s == "dead_letter" for s, _ in result.outcomes)
