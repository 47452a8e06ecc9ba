"""The run report: built from a real run of extract -> refine -> tokenize on the bundled sample.

What-if numbers are checked against ``Decider(changed config).decide`` run row by row over the
stored signals; numbers on the page against the summaries; page text from hostile documents must
stay text; raw PII never reaches the page; sections of missing stages are left out.
"""
from __future__ import annotations

import copy
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.bench_report import synthesize_run
from filters.decisions import Decider
from pipelines import cli
from pipelines.config import load_config
from pipelines.report import render, write_report
from pipelines.report.collect import Collector
from pipelines.report.layout import RunLayout
from pipelines.report.whatif import with_threshold
from samples import make_sample

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "sample.warc.gz"
HOSTILE = '<script>alert(1)</script></textarea><img src=x onerror=alert(2)> mail jane.doe@example.com'


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> Path:
    """make run's layout (extracted/, refined/, shards/) from the real stages on the sample, once."""
    out = tmp_path_factory.mktemp("run")
    one = ["--direct_num_workers=1"]
    assert cli.main(["extract", "--input", str(SAMPLE), "--output", str(out / "extracted"), *one]) == 0
    assert cli.main(["refine", "--input", str(out / "extracted"), "--output", str(out / "refined"), *one]) == 0
    from tokenization.__main__ import main as tok_main

    assert tok_main(["train-tokenizer", "--input", str(out / "refined"), "--vocab-size", "300",
                     "--out", str(out / "tokenizer.json")]) == 0
    assert cli.main(["tokenize", "--input", str(out / "refined"), "--tokenizer", str(out / "tokenizer.json"),
                     "--output", str(out / "shards"), "--val-fraction", "0.2", *one]) == 0
    return out


@pytest.fixture(scope="module")
def report(real_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = write_report(str(real_run), load_config(), out=str(out), examples=50)
    return result, out.read_text(encoding="utf-8"), (out.parent / "datacard.md").read_text(encoding="utf-8")


def summary(run: Path, stage: str) -> dict:
    return json.loads((run / stage / "summary.json").read_text())


class Facts(HTMLParser):
    """data-fact / data-removed values, tags with attributes, script bodies and text."""

    def __init__(self):
        super().__init__()
        self.facts, self.tags, self.scripts, self.text, self._fact, self._in_script = {}, [], [], [], None, False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._fact = dict(attrs).get("data-fact")
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
            return
        self.text.append(data)
        if self._fact and data.strip():
            self.facts[self._fact] = data.strip()
            self._fact = None


def parse(html: str) -> Facts:
    p = Facts()
    p.feed(html)
    return p


def number(text: str) -> int:
    return int(text.replace(",", ""))


def all_rows(run: Path) -> list[dict]:
    files = sorted((run / "refined").glob("*.parquet")) + sorted((run / "refined" / "removed").glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


@pytest.mark.parametrize("changed", [False, True], ids=["run-config", "other-config"])
def test_whatif_equals_brute_force_decider_over_stored_signals(real_run, changed):
    cfg = load_config()
    if changed:  # a config the run did not use: the "failing today" set is recomputed, not read
        cfg = with_threshold(with_threshold(cfg, ("language", "min_score"), 0.9),
                             ("quality", "thresholds", "gopher_min_words"), 120)
    collector = Collector(RunLayout(str(real_run)), cfg, trust_stored_decisions=not changed)
    collector.run()
    result = collector.whatif.result(None)
    rows = all_rows(real_run)
    assert len(rows) == summary(real_run, "refined")["documents_filtered"]
    assert {"language.min_score", "quality.thresholds.gopher_min_words", "quality.thresholds.c4_min_sentences",
            "quality.thresholds.fineweb_min_line_punct_frac", "toxicity.classifier_max_frac"} <= \
        {item["config_key"] for item in result}
    changed_somewhere = False
    for item in result:
        for alt in item["rows"]:
            decider = Decider(with_threshold(cfg, item["spec"].path, alt["threshold"]))
            decisions = [decider.decide(r) for r in rows]
            removed = [not d.keep for d in decisions]
            assert alt["removed"] == sum(removed), (item["config_key"], alt)
            assert alt["chars_removed"] == sum(r["text_chars"] for r, x in zip(rows, removed) if x)
            assert alt["fail_rule"] == sum(item["spec"].rule in d.failed for d in decisions)
            changed_somewhere |= alt["delta"] != 0
    assert changed_somewhere, "no alternative threshold changed anything: the test would not catch a bug"
    if not changed:
        now = {item["config_key"]: next(r for r in item["rows"] if r["current"]) for item in result}
        refine = summary(real_run, "refined")
        assert now["language.min_score"]["removed"] == refine["removed"]


def test_numbers_shown_equal_the_summaries(real_run, report):
    result, html, card = report
    facts = parse(html).facts
    ext, ref, tok = summary(real_run, "extracted"), summary(real_run, "refined"), summary(real_run, "shards")
    assert number(facts["extract.records_read"]) == ext["records_read"]
    assert number(facts["extract.kept"]) == ext["kept"]
    assert number(facts["refine.kept"]) == ref["kept"]
    assert number(facts["refine.removed"]) == ref["removed"]
    assert number(facts["refine.documents_filtered"]) == ref["documents_filtered"]
    assert number(facts["tokenize.tokens"]) == sum(s["tokens"] for s in tok["splits"].values())
    for split, info in tok["splits"].items():
        assert number(facts[f"tokenize.{split}.tokens"]) == info["tokens"]
    for lang, per in ref["per_language"].items():
        assert number(facts[f"lang.{lang}.documents"]) == per["documents"]
    kept_rows = [r for f in sorted((real_run / "refined").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    for lang in ref["per_language"]:
        assert number(facts[f"lang.{lang}.kept_final"]) == sum(r["lang"] == lang for r in kept_rows)
    assert sum(number(facts[f"lang.{lang}.kept_final"]) for lang in ref["per_language"]) == ref["kept"]
    assert number(facts["dedup.url_removed"]) == ref["dedup"]["url_removed"]
    for kind, n in ref["pii_redacted"].items():
        assert number(facts[f"pii.{kind}"]) == n
    for reason, n in ext["dead_lettered_by_reason"].items():
        assert number(facts[f"extract.dead_lettered.{reason}"]) == n
    # The data card carries the same facts and the datasheet headings, with owner-only parts marked.
    for heading in ("Motivation", "Composition", "Collection process", "Preprocessing / cleaning / labeling",
                    "Uses", "Distribution", "Maintenance"):
        assert f"\n## {heading}\n" in card
    assert f"Documents: {ref['kept']:,} kept of {ref['documents_in']:,}" in card
    assert card.count("[TO FILL IN]") >= 6


def test_examples_never_show_raw_pii(report):
    _, html, _ = report
    pii_page = next(r for r in make_sample.manifest() if r["id"] == "en-pii")
    assert pii_page["url"] in html, "the PII page is among the examples (all are shown with examples=50)"
    for values in pii_page["expect"]["pii"].values():
        for value in values:
            assert value not in html, value
    assert "&lt;EMAIL&gt;" in html


def test_hostile_page_text_stays_text(tmp_path):
    run = synthesize_run(tmp_path / "run", 120, hostile=HOSTILE)
    html = write_report(str(run), load_config(), examples=40)["report"]
    page = Path(html).read_text(encoding="utf-8")
    p = parse(page)
    assert [t for t, _ in p.tags if t in ("script", "img", "textarea", "iframe", "object")] == ["script"]
    assert p.scripts == [render.SCRIPT], "the only script is the report's own"
    assert not [a for _, attrs in p.tags for a in attrs if a.startswith("on")], "no event-handler attributes"
    text = "".join(p.text)
    assert "<script>alert(1)</script></textarea><img src=x onerror=alert(2)>" in text  # shown as text
    assert "jane.doe@example.com" not in page and "<EMAIL>" in text
    assert "</textarea>" not in page.replace("&lt;/textarea&gt;", "")
    csp = next(a for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp["content"] and render.script_hash(render.SCRIPT) in csp["content"]


def test_missing_stages_leave_their_sections_out(real_run, tmp_path):
    only_refined = tmp_path / "a"
    shutil.copytree(real_run / "refined", only_refined / "refined")
    html = Path(write_report(str(only_refined))["report"]).read_text(encoding="utf-8")
    assert 'id="languages"' in html and 'id="thresholds"' in html
    for absent in ('id="tokens"', 'id="training"', 'data-fact="extract.records_read"', 'id="problems"'):
        assert absent not in html
    only_extracted = tmp_path / "b"
    shutil.copytree(real_run / "extracted", only_extracted / "extracted")
    html = Path(write_report(str(only_extracted))["report"]).read_text(encoding="utf-8")
    assert 'data-fact="extract.records_read"' in html
    for absent in ('id="languages"', 'id="thresholds"', 'id="dedup"', 'id="examples"', 'id="decontamination"'):
        assert absent not in html


def test_training_decontamination_and_bad_files(real_run, tmp_path):
    run = tmp_path / "OUTPUT" / "CC-MAIN-2026-01"   # pipelines all layout, given its OUTPUT root
    shutil.copytree(real_run, run)
    (run / "_COMPLETE.json").write_text(json.dumps({"snapshot": "CC-MAIN-2026-01", "input_warcs": ["a", "b"],
                                                    "stages": ["extract", "refine", "tokenize"],
                                                    "config_hash": "h", "params": {}}))
    (run / "run").mkdir()
    (run / "run" / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in [
        {"type": "train", "step": 10, "loss": 7.0}, {"type": "eval", "step": 10, "val_loss": 7.2},
        {"type": "train", "step": 20, "loss": 5.5}, {"type": "eval", "step": 20, "val_loss": 6.1}]) + "\n{oops\n")
    ref = json.loads((run / "refined" / "summary.json").read_text())
    ref["decontamination"] = {"ngram": 13, "action": "remove", "benchmarks": {
        "gsm8k": {"documents_hit": 3, "ngrams_matched": 17, "snippets": [HOSTILE]}}}
    (run / "refined" / "summary.json").write_text(json.dumps(ref))
    (run / "refined" / "removed" / "part-99999.parquet").write_bytes(b"PAR1 not really parquet")
    result = write_report(str(tmp_path / "OUTPUT"))
    html = Path(result["report"]).read_text(encoding="utf-8")
    p = parse(html)
    assert result["report"] == str(run / "report.html")
    assert "CC-MAIN-2026-01" in html and p.facts["decontamination.gsm8k"] == "3"
    assert 'id="training"' in html and "validation loss" in html
    assert any("part-99999.parquet" in problem for problem in result["problems"]) and 'id="problems"' in html
    assert any("metrics.jsonl" in problem for problem in result["problems"])
    assert [t for t, _ in p.tags if t == "script"] == ["script"] and "jane.doe@example.com" not in html
    card = (run / "datacard.md").read_text(encoding="utf-8")
    assert "gsm8k 3 documents" in card and "13-grams" in card


def test_cli_writes_report_and_reports_bad_input_in_one_line(real_run, tmp_path, capsys):
    out = tmp_path / "r" / "page.html"
    assert cli.main(["report", "--run", str(real_run), "--out", str(out)]) == 0
    assert out.is_file() and (out.parent / "datacard.md").is_file()
    assert str(out) in capsys.readouterr().out
    assert cli.main(["report", "--run", str(tmp_path / "missing")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", "--run", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err and "is this a run directory" in err


def test_pipelines_all_writes_the_report_before_its_manifest(real_run, tmp_path):
    from pipelines.all_stages import WriteReportFn

    root = tmp_path / "CC-MAIN-2026-05"
    shutil.copytree(real_run, root)
    fn = WriteReportFn(str(root), load_config(), "CC-MAIN-2026-05")
    assert list(fn.process(None, refine={}, extract={})) == [None]
    html = (root / "report.html").read_text(encoding="utf-8")
    assert "CC-MAIN-2026-05" in html and (root / "datacard.md").is_file()
