"""Decontamination through the real refine stage (CLI, Beam, outputs, summary.json): planted
benchmark passages are removed whatever their casing, punctuation or position; near misses and
boilerplate are kept; ``action: mark`` keeps and marks."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines import cli
from tests.test_refine import read_dir, wikitext_docs

# Benchmark items written for this test.
QUIZ = [
    {"question": "Which instrument did the harbour master of Port Ellery keep beside the tide tables in "
                 "the old customs house during the winter of the great flood?", "answer": "a brass telescope"},
    {"question": "How many lanterns were hung along the stone causeway leading to the monastery on the "
                 "island when the pilgrims arrived after sunset?", "answer": "seventy two"},
]
TRIVIA = ("Seven retired clockmakers repaired the cathedral tower mechanism using parts salvaged from a "
          "shipwreck found near the southern cliffs of the bay.\n\n"
          "The orchard keeper planted pear trees in crooked rows so that the morning frost would drain "
          "away toward the river meadow below the farm.")
BOILERPLATE = "if you have any questions about this or any of the other things that we do"
TRIVIA_WITH_BOILERPLATE = TRIVIA + "\n\nQuestion: " + BOILERPLATE + "?"


def _pages() -> dict[str, str]:
    base = wikitext_docs(8)
    trivia = TRIVIA.split("\n\n")
    words = trivia[0].split()

    def mid(doc: str, insert: str) -> str:
        paras = doc.split("\n")
        return "\n".join(paras[:1] + [insert] + paras[1:])

    first = base[3].split("\n")
    line = first[1].split(". ")
    embedded = ". ".join(line[:2]) + ". My grandmother always said that " + trivia[1].rstrip(".") + \
        ", and then " + ". ".join(line[2:])
    return {
        "verbatim": mid(base[0], QUIZ[0]["question"]),
        "recased": mid(base[1], QUIZ[1]["question"].upper()),
        "repunctuated": mid(base[2], trivia[0].replace(" ", " - ").replace(".", "!").replace("Seven", "SEVEN,")),
        "embedded": "\n".join([first[0], embedded] + first[2:]),
        "near_miss": mid(base[4], " ".join(words[:12]) + " and nothing else happened that day."),
        "boilerplate": mid(base[5], BOILERPLATE.capitalize() + ", please write to the editors."),
        "clean_a": base[6],
        "clean_b": base[7],
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("decon")
    pages = _pages()
    (root / "in").mkdir()
    pq.write_table(pa.Table.from_pylist([{"url": f"https://en.example.org/{k}", "text": t}
                                         for k, t in pages.items()]), root / "in" / "docs.parquet")
    (root / "quiz.jsonl").write_text("\n".join(json.dumps(r) for r in QUIZ) + "\n")
    (root / "trivia.txt").write_text(TRIVIA_WITH_BOILERPLATE + "\n")
    return root, pages


def _config(root: Path, dedup: bool = False, **decon) -> str:
    path = root / f"cfg-{len(list(root.glob('cfg-*')))}.yaml"
    section = {"benchmarks": {"quiz": {"path": str(root / "quiz.jsonl"), "format": "jsonl", "fields": ["question"]}}}
    section.update(decon)
    path.write_text(yaml.safe_dump({"decontamination": section, "refine": {"dedup": dedup}}))
    return str(path)


def _by_key(rows):
    return {r["url"].rsplit("/", 1)[1]: r for r in rows}


def test_planted_passages_are_removed_and_reported(setup):
    root, pages = setup
    out = root / "removed-run"
    cfg = _config(root, dedup=True)
    assert cli.main(["refine", "--input", str(root / "in"), "--output", str(out), "--config", cfg,
                     "--benchmark", f"trivia={root / 'trivia.txt'}", "--direct_num_workers=1"]) == 0
    kept, removed = _by_key(read_dir(out)), _by_key(read_dir(out, "removed"))
    assert set(kept) == {"near_miss", "boilerplate", "clean_a", "clean_b"}
    assert set(removed) == {"verbatim", "recased", "repunctuated", "embedded"}
    for key, bench in (("verbatim", "quiz"), ("recased", "quiz"), ("repunctuated", "trivia"), ("embedded", "trivia")):
        row = removed[key]
        assert row["removed_by"] == "decontamination" and row["removal_rule"] == f"decontamination.{bench}"
        assert f"benchmark {bench}:" in row["removal_reason"]
    assert "HOW MANY LANTERNS WERE HUNG" in removed["recased"]["removal_reason"]
    assert "SEVEN, - retired - clockmakers" in removed["repunctuated"]["removal_reason"]
    assert "The orchard keeper planted pear trees" in removed["embedded"]["removal_reason"]

    summary = json.loads((out / "summary.json").read_text())
    decon = summary["decontamination"]
    assert decon["ngram"] == 13 and decon["action"] == "remove"
    assert set(decon["benchmarks"]) == {"quiz", "trivia"}
    quiz, trivia = decon["benchmarks"]["quiz"], decon["benchmarks"]["trivia"]
    assert quiz["documents_hit"] == 2 and trivia["documents_hit"] == 2
    q_words = [len(q["question"].split()) for q in QUIZ]
    assert quiz["ngrams_matched"] == sum(w - 12 for w in q_words)
    assert len(quiz["snippets"]) == 2 and any("Port Ellery" in s for s in quiz["snippets"])
    assert summary["removed_by"]["decontamination"] == 4
    assert summary["kept"] == 4 and summary["removed"] == summary["documents_filtered"] - summary["kept_before_dedup"]


def test_mark_action_keeps_and_marks(setup):
    root, pages = setup
    out = root / "marked-run"
    assert cli.main(["refine", "--input", str(root / "in"), "--output", str(out),
                     "--config", _config(root, action="mark"),
                     "--benchmark", f"trivia={root / 'trivia.txt'}", "--direct_num_workers=1"]) == 0
    kept = _by_key(read_dir(out))
    assert set(kept) == set(pages) and not read_dir(out, "removed")
    marked = {k: r["contamination"] for k, r in kept.items() if r["contamination"]}
    assert set(marked) == {"verbatim", "recased", "repunctuated", "embedded"}
    assert marked["embedded"][0]["benchmark"] == "trivia" and marked["embedded"][0]["ngrams"] >= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["decontamination"]["action"] == "mark" and summary["kept"] == 8
    assert "decontamination" not in summary["removed_by"]


def test_bad_benchmark_options_are_one_line_errors(setup, capsys):
    root, _ = setup
    base = ["refine", "--input", str(root / "in"), "--output", str(root / "err")]
    assert cli.main(base + ["--benchmark", f"gone={root / 'missing.jsonl'}"]) == 2
    assert cli.main(base + ["--config", _config(root, ngram=40)]) == 2
    bad = root / "bad.jsonl"
    bad.write_text('{"question": "fine"}\n{oops\n')
    assert cli.main(base + ["--benchmark", f"bad={bad}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "missing.jsonl" in err and "lower decontamination.ngram" in err and "line 2: not JSON" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(base + ["--benchmark", "no-equals-sign"])
    assert exc.value.code == 2
