"""Refine skips PII redaction of a kept text whose stored pii_counts found nothing.  On an
unedited text the output must be exactly what redaction would have produced; after C4 line edits
the page is not scanned again either (redaction's scope: docs/pii-and-consent.md, "What refine
redacts"), while a page with stored PII is scanned again after its edits."""
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


# A bare CPF needs its name within 30 characters before it.  In the extracted text a removed
# "javascript" line stands between them (31 characters): no match, the stored counts are zero.
# After the C4 line rules remove that line the name is 22 characters away.
_CROSS = ("O documento foi enviado pelo correio na semana passada, conforme combinado com o banco.\n"
          "Segue abaixo o meu CPF para conferência.\n"
          "ative o javascript no navegador\n"
          "52998224725 é o número que consta no cadastro da empresa desde o ano passado.\n")


def _kept_one(cfg, monkeypatch, text: str) -> tuple[dict, dict]:
    fn = DecideFn(cfg)
    fn.setup()
    monkeypatch.setattr(fn.decider, "decide", lambda row: Decision(keep=True))
    row = {"doc_id": "d", "url": "https://example.com.br/x", "text": text}
    row.update(SignalComputer(cfg)(row))
    out = _decide(fn, row)
    return row, out[0][1]


def test_a_page_without_stored_pii_is_not_scanned_again_after_its_line_edits(cfg, monkeypatch):
    from filters.signals import redact_pii

    row, kept = _kept_one(cfg, monkeypatch, _CROSS)
    assert row["pii_total"] == 0 and kept["c4_lines_removed"] == 1
    assert "javascript" not in kept["text"]
    # The match that forms only across the removed line is outside redaction's scope ...
    assert "52998224725" in kept["text"] and kept["pii_redacted"] == {}
    # ... though a second scan of the edited text would have found it (so the case is real).
    assert redact_pii(kept["text"], row["url"], row["lang"], cfg)[1] == {"br_cpf": 1}


def test_a_page_with_stored_pii_is_redacted_after_its_line_edits(cfg, monkeypatch):
    text = _CROSS.replace("O documento", "Escreva para jane.doe@example.org. O documento")
    row, kept = _kept_one(cfg, monkeypatch, text)
    assert row["pii_counts"]["email"] == 1 and kept["c4_lines_removed"] == 1
    # Scanned again after the edit: the email and the match the edit formed are both redacted.
    assert kept["pii_redacted"] == {"br_cpf": 1, "email": 1}
    assert "jane.doe" not in kept["text"] and "52998224725" not in kept["text"]
