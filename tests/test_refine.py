"""The refine stage on a real Beam pipeline: determinism across workers, thresholds without
re-extraction, removed/rejected outputs and the summary with its toxicity audit."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.inputs import list_inputs
from pipelines import cli, refine
from pipelines.config import load_config
from pipelines.runner import new_pipeline
from pipelines.schema import doc_id_for
from tests.conftest import require_shared

IN_MEMORY = ["--direct_running_mode=in_memory"]


def wikitext_docs(n: int) -> list[str]:
    text = require_shared("text/wikitext-2-test.txt").read_text(encoding="utf-8")
    paras = [p.strip() for p in text.split("\n") if len(p.split()) > 60 and not p.strip().startswith("=")]
    return ["\n".join(paras[i * 3:(i + 1) * 3]) for i in range(n)]


def input_rows() -> list[dict]:
    rows = [{"url": f"https://en.example.org/wiki/{i}", "text": t, "my_column": i}
            for i, t in enumerate(wikitext_docs(8))]
    rows.append({"url": "https://spam.example.com/", "my_column": 99,
                 "text": "\n".join(["Buy cheap shoes now at the best price in our online shop, with free delivery "
                                   "to your home."] * 30)})
    rows.append({"url": "https://rude.example.net/", "my_column": 98,
                 "text": wikitext_docs(9)[8] + "\n" + "fuck this shit, you bitch ass motherfucker. " * 4})
    rows.append({"url": "https://nothing.example.org/", "text": None, "my_column": 97})
    return rows


def write_input(path: Path, rows: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path / "docs.parquet")
    return path


@pytest.fixture(scope="module")
def cfg_overrides():
    return {"toxicity": {"wordlists": str(require_shared("badwords/en").parent)}}


def run_refine(inp: Path, out: Path, overrides: dict, beam_args=(), workers: int = 1) -> dict:
    cfg = load_config(overrides=overrides)
    meta = {"stage": "refine", "input": "test"}
    with new_pipeline(list(beam_args), workers=workers) as p:
        refine.build(p, list_inputs(str(inp)), str(out), cfg, meta)
    return json.loads((out / "summary.json").read_text())


def read_dir(out: Path, sub: str = "") -> list[dict]:
    files = sorted((out / sub).glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def test_refine_same_output_on_one_and_two_workers(tmp_path, cfg_overrides):
    inp = write_input(tmp_path / "in", input_rows())
    s1 = run_refine(inp, tmp_path / "w1", cfg_overrides, workers=1)
    s2 = run_refine(inp, tmp_path / "w2", cfg_overrides, workers=2)
    files1 = sorted(p.relative_to(tmp_path / "w1") for p in (tmp_path / "w1").rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(tmp_path / "w2") for p in (tmp_path / "w2").rglob("*") if p.is_file())
    assert files1 == files2 and files1
    for rel in files1:
        assert (tmp_path / "w1" / rel).read_bytes() == (tmp_path / "w2" / rel).read_bytes(), rel
    assert s1 == s2

    # What came out, and why.
    assert s1["documents_in"] == 11 and s1["rejected"] == 1 and s1["rejected_by_reason"] == {"missing_text": 1}
    kept, removed = read_dir(tmp_path / "w1"), read_dir(tmp_path / "w1", "removed")
    assert len(kept) + len(removed) == 10 == s1["documents_filtered"]
    assert {r["url"] for r in kept} == {f"https://en.example.org/wiki/{i}" for i in range(8)}
    by_url = {r["url"]: r for r in removed}
    spam = by_url["https://spam.example.com/"]
    assert spam["removed_by"] == "gopher_repetition" and "gopher_repetition.dup_lines" in spam["failed_filters"]
    rude = by_url["https://rude.example.net/"]
    assert rude["removed_by"] == "toxicity_words" and "word-list hits" in rude["removal_reason"]
    assert s1["removed_by"] == {"gopher_repetition": 1, "toxicity_words": 1}
    assert s1["per_language"]["en"]["documents"] == 10 and s1["per_language"]["en"]["kept"] == 8
    audit = s1["toxicity_audit"]["en"]
    assert audit["removed"] == 1 and audit["examples"][0]["url"] == "https://rude.example.net/"
    assert "motherfucker" in audit["examples"][0]["lines"][0]
    assert s1["dropped_input_columns"] == ["my_column"]
    assert s1["signals"] == {"computed": 10}
    # Kept rows carry the signals, doc_ids derived from url+text, input columns missing -> null.
    row = kept[0]
    assert row["lang"] == "en" and row["q_words"] > 100 and len(row["doc_id"]) == 16
    assert row["warc_file"] is None and "my_column" not in row
    rejected = (tmp_path / "w1" / "rejected").glob("*.jsonl")
    lines = [json.loads(l) for f in rejected for l in f.read_text().splitlines()]
    assert [l["reason"] for l in lines] == ["missing_text"] and lines[0]["url"] == "https://nothing.example.org/"


def test_threshold_change_uses_stored_signals_without_recomputing(tmp_path, cfg_overrides):
    from filters.registry import signal_fields
    from filters.signals import SignalComputer

    cfg = load_config(overrides=cfg_overrides)
    computer = SignalComputer(cfg)
    rows = []
    for row in input_rows()[:9]:
        row = {k: v for k, v in row.items() if k != "my_column"}
        row["doc_id"] = doc_id_for(row["url"])
        rows.append({**row, **computer(row)})
    # Extract-time signals are what refine decides on: this document really has > 100 words,
    # but its stored q_words says 20.  If refine recomputed, it would keep it.
    assert rows[0]["q_words"] > 100
    rows[0]["q_words"] = 20
    schema = refine.kept_schema()
    inp = tmp_path / "extracted"
    inp.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), inp / "docs.parquet")
    assert {f.name for f in signal_fields()} <= set(schema.names)

    default = run_refine(inp, tmp_path / "default", cfg_overrides, IN_MEMORY)
    assert default["signals"] == {"reused": 9}
    removed = {r["url"]: r for r in read_dir(tmp_path / "default", "removed")}
    first = removed["https://en.example.org/wiki/0"]
    assert first["removal_rule"] == "gopher_quality.min_words" and "20 words < 50" in first["removal_reason"]

    looser = {**cfg_overrides, "quality": {"thresholds": {"gopher_min_words": 10}}}
    changed = run_refine(inp, tmp_path / "looser", looser, IN_MEMORY)
    assert changed["signals"] == {"reused": 9}
    kept_urls = {r["url"] for r in read_dir(tmp_path / "looser")}
    assert "https://en.example.org/wiki/0" in kept_urls
    assert changed["kept"] == default["kept"] + 1


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["refine", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o")]) == 2
    assert "no Parquet files match" in capsys.readouterr().err
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("refine:\n  filters: [language, quality, sentiment]\n")
    inp = write_input(tmp_path / "in", input_rows()[:1])
    assert cli.main(["refine", "--input", str(inp), "--output", str(tmp_path / "o"),
                     "--config", str(bad_cfg)]) == 2
    assert "unknown filter 'sentiment'" in capsys.readouterr().err


def test_input_without_text_column_is_rejected_not_crashed(tmp_path):
    from pipelines.refine import read_parquet_rows

    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist([{"url": "https://a.example/"}]), path)
    out = list(read_parquet_rows(str(path)))
    assert out[0][0] == "rejected" and out[0][1]["reason"] == "missing_columns"
    path.write_bytes(b"not parquet")
    out = list(read_parquet_rows(str(path)))
    assert out[0][0] == "rejected" and out[0][1]["reason"] == "unreadable_file"


def test_robots_opt_out_through_the_refine_cli(tmp_path):
    """refine --robots joins real robots.txt captures by host and removes opted-out pages."""
    captures = require_shared("robots/robotstxt.warc.gz")
    truth = json.loads(require_shared("robots/robotstxt-truth.json").read_text())
    hosts = truth["hosts"]
    chosen = [(u, v) for u, v in sorted(truth["urls"].items())
              if " " not in u and hosts.get(u.split("/")[2]) not in (None, "server-error")][:24]
    assert any(v["opted_out"] for _, v in chosen) and not all(v["opted_out"] for _, v in chosen)
    texts = wikitext_docs(len(chosen))
    inp = write_input(tmp_path / "in", [{"url": u, "text": t} for (u, _), t in zip(chosen, texts)])
    config = tmp_path / "robots.yaml"
    config.write_text(json.dumps({"consent": {"agents": truth["agents"]}}))
    out = tmp_path / "out"
    assert cli.main(["refine", "--input", str(inp), "--output", str(out), "--robots", str(captures),
                     "--config", str(config), "--direct_running_mode=in_memory"]) == 0
    removed = {r["url"] for r in read_dir(out, "removed") if r["removed_by"] == "consent"}
    kept = {r["url"] for r in read_dir(out)}
    for url, verdict in chosen:
        if verdict["opted_out"]:
            assert url in removed, url
        else:
            assert url not in removed, url
    assert kept and kept.isdisjoint(removed)
