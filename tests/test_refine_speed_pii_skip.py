"""Refine skips PII redaction of a kept text whose stored pii_counts found nothing; the output
must be exactly what redaction would have produced."""
from __future__ import annotations

import apache_beam as beam
import pytest

from filters.decisions import Decision
from filters.signals import SignalComputer
from pipelines.config import load_config
from pipelines.refine import DecideFn

TEXTS = [
    "A plain paragraph about gardening. " * 12 + "\nAnother line with enough words to be kept here.",
    "Write to jane.doe@example.org or call +49 30 1234567 for the details of the offer. " * 4,
    "Server at 192.168.10.20 answered; the card 4111 1111 1111 1111 was declined today. " * 4,
    "Short line\n" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. " * 6,
]


def _rows(cfg):
    computer = SignalComputer(cfg)
    rows = []
    for i, text in enumerate(TEXTS):
        row = {"doc_id": f"d{i}", "url": f"https://example.de/{i}", "text": text}
        row.update(computer(row))
        rows.append(row)
    return rows


def _decide(fn: DecideFn, row: dict) -> list:
    out = []
    for item in fn.process(dict(row, _signals="reused")):
        out.append((item.tag, item.value) if isinstance(item, beam.pvalue.TaggedOutput) else ("kept", item))
    return out


@pytest.fixture(scope="module")
def cfg():
    return load_config(None)


def test_skipping_gives_what_redaction_gives(cfg, monkeypatch):
    fn = DecideFn(cfg)
    fn.setup()
    # Keep every text (these short samples fail quality filters), so each one reaches redaction.
    monkeypatch.setattr(fn.decider, "decide", lambda row: Decision(keep=True))
    rows = _rows(cfg)
    skipped = [_decide(fn, r) for r in rows]
    kept = [out[0][1] for out in skipped]
    # Both paths ran: a text with PII was redacted, a text without kept its stored counts' verdict.
    assert any(k["pii_redacted"] for k in kept)
    assert any(fn.no_pii(r) and not k["c4_lines_removed"] for r, k in zip(rows, kept))
    calls = []
    monkeypatch.setattr(DecideFn, "no_pii", lambda self, row: calls.append(1) or False)
    assert [_decide(fn, r) for r in rows] == skipped
    assert calls  # the second pass redacted every kept text


def test_no_pii_needs_every_redacted_type_at_zero(cfg):
    fn = DecideFn(cfg)
    fn.setup()
    zeros = {t: 0 for t in fn.pii_types}
    assert fn.no_pii({"pii_counts": zeros})
    assert not fn.no_pii({"pii_counts": None})
    assert not fn.no_pii({})
    assert not fn.no_pii({"pii_counts": dict(zeros, **{sorted(zeros)[0]: 1})})
    assert not fn.no_pii({"pii_counts": {t: 0 for t in sorted(zeros)[1:]}})
