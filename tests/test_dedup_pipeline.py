"""The dedup stage end to end on the local Beam runner (1 and 2 workers)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.dedup.text import jaccard, normalize_text, shingle_set
from pipelines import dedup, writers
from pipelines.cli import main as cli_main

UTC = dt.timezone.utc
BOILER_HEAD = ["Welcome to the Example Regional Gazette online edition for readers",
               "Subscribe to our newsletter for weekly updates and special offers",
               "Home News Sports Weather Opinion Culture Business Contact us today"]
BOILER_FOOT = ["Copyright 2024 Example Media Group all rights reserved worldwide",
               "This site uses cookies to improve your experience read our policy",
               "Follow us on social media and share this article with your friends"]


def _vocab(seed, n=3000):
    rng = random.Random(seed)
    return ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(n)]


def _words(rng, vocab, n):
    return [rng.choice(vocab) for _ in range(n)]


def _para(words, per_line=40):
    return "\n".join(" ".join(words[i:i + per_line]) for i in range(0, len(words), per_line))


def _span_edit(rng, vocab, words, fraction):
    """Replace ``fraction`` of the words in two contiguous spans (a changed sentence or two)."""
    out = list(words)
    total = int(len(words) * fraction)
    for part in (total // 2, total - total // 2):
        start = rng.randrange(0, len(out) - part)
        out[start:start + part] = _words(rng, vocab, part)
    return out


def _day(d):
    return dt.datetime(2024, 1, d, tzinfo=UTC)


def build_rows():
    rows, expect = [], {}
    # Exact duplicates on different URLs: the newest fetch is kept.
    rng, v = random.Random(1), _vocab(1)
    text = _para(_words(rng, v, 300))
    rows += [dict(doc_id=f"exact-{i}", url=f"https://ex{i}.org/story", text=text, fetch_date=_day(1 + i))
             for i in range(3)]
    # Near duplicates: 5%, 10%, 15% of the words replaced in contiguous spans.
    rng, v = random.Random(2), _vocab(2)
    base = _words(rng, v, 400)
    rows.append(dict(doc_id="near-base", url="https://near.org/base", text=_para(base), fetch_date=_day(9)))
    for frac in (0.05, 0.10, 0.15):
        rows.append(dict(doc_id=f"near-{int(frac * 100):02d}", url=f"https://near.org/{frac}",
                         text=_para(_span_edit(rng, v, base, frac)), fetch_date=_day(2)))
    # A chain: each document is the previous one shifted by 5% of its words.
    rng, v = random.Random(3), _vocab(3)
    long = _words(rng, v, 1450)
    for i in range(10):
        rows.append(dict(doc_id=f"chain-{i}", url=f"https://chain.org/{i}", text=_para(long[i * 50:i * 50 + 1000]),
                         fetch_date=None))
    expect["chain_ends_jaccard"] = jaccard(shingle_set(normalize_text(" ".join(long[0:1000]))),
                                           shingle_set(normalize_text(" ".join(long[450:1450]))))
    # Pages sharing only boilerplate (header and footer lines), distinct bodies.
    rng, v = random.Random(4), _vocab(4)
    for i in range(8):
        body = _para(_words(rng, v, 90), per_line=30)
        rows.append(dict(doc_id=f"boiler-{i}", url=f"https://gazette.example/{i}",
                         text="\n".join(BOILER_HEAD + [body] + BOILER_FOOT), fetch_date=_day(3)))
    # URL variants of one page with different texts: newest fetch wins; a tie goes to the smallest doc_id.
    for i, (url, day) in enumerate([("https://Shop.example:443/item/7?utm_source=mail", 4),
                                    ("https://shop.example/item/7/#reviews", 6),
                                    ("https://shop.example/item/7?fbclid=abc", 5)]):
        rows.append(dict(doc_id=f"urlv-{i}", url=url, text=_para(_words(random.Random(50 + i), _vocab(50 + i), 120)),
                         fetch_date=_day(day)))
    for i in (1, 0):
        rows.append(dict(doc_id=f"tie-{i}", url="https://tie.example/p?b=2&a=1" if i else "https://tie.example/p?a=1&b=2",
                         text=_para(_words(random.Random(60 + i), _vocab(60 + i), 120)), fetch_date=_day(7)))
    # Line-level: a line repeated across documents; one document that is mostly repeated lines.
    rng, v = random.Random(5), _vocab(5)
    shared = "Breaking: local council approves the new riverside park budget proposal"
    for i in range(4):
        rows.append(dict(doc_id=f"line-{i}", url=f"https://lines.example/{i}",
                         text=shared + "\n" + _para(_words(rng, v, 120)), fetch_date=_day(8)))
    rows.append(dict(doc_id="line-short", url="https://lines.example/short",
                     text="\n".join([shared, "too short after removal"]), fetch_date=_day(8)))
    # A bad row.
    rows.append(dict(doc_id="bad-1", url="https://bad.example/", text=None, fetch_date=None))
    return rows, expect


def quality_rows():
    rng, v = random.Random(6), _vocab(6)
    text = _para(_words(rng, v, 250))
    return [dict(doc_id=f"q-{i}", url=f"https://q{i}.example/", text=text, fetch_date=_day(1 + i),
                 quality_score=q) for i, q in enumerate([0.2, 0.9, 0.5])]  # q-1 best but not newest


def write_input(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    rows, expect = build_rows()
    pq.write_table(pa.Table.from_pylist(rows), folder / "a.parquet")
    pq.write_table(pa.Table.from_pylist(quality_rows()), folder / "b.parquet")
    return expect


def run_stage(inp: Path, out: Path, workers: int, config: Path | None = None):
    args = argparse.Namespace(input=str(inp), output=str(out), config=str(config) if config else None, shards=3,
                              overwrite=True)
    return dedup.run(args, [], workers=workers)


def read_dir(folder: Path):
    rows = []
    for f in sorted(folder.glob("part-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return {r["doc_id"]: r for r in rows}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    base = tmp_path_factory.mktemp("dedup")
    expect = write_input(base / "in")
    summary = run_stage(base / "in", base / "out1", workers=1)
    return dict(base=base, expect=expect, summary=summary, kept=read_dir(base / "out1"),
                removed=read_dir(base / "out1" / "removed"))


def test_exact_duplicates_keep_newest(stage):
    kept, removed = stage["kept"], stage["removed"]
    assert "exact-2" in kept and kept["exact-2"]["dup_cluster_size"] == 3
    for i in (0, 1):
        assert removed[f"exact-{i}"]["dedup_reason"] == "minhash"
        assert removed[f"exact-{i}"]["dup_kept_doc_id"] == "exact-2"


def test_quality_score_wins_over_newest(stage):
    kept, removed = stage["kept"], stage["removed"]
    assert "q-1" in kept and "q-0" in removed and "q-2" in removed
    assert removed["q-2"]["dup_kept_doc_id"] == "q-1"
    assert kept["q-1"]["quality_score"] == 0.9
    assert kept["exact-2"]["quality_score"] is None  # schema of both input files unified


def test_near_duplicates_with_word_edits(stage):
    kept, removed = stage["kept"], stage["removed"]
    assert kept["near-base"]["dup_cluster_size"] == 4
    for name in ("near-05", "near-10", "near-15"):
        assert removed[name]["dedup_reason"] == "minhash"
        assert removed[name]["dup_kept_doc_id"] == "near-base"


def test_chain_is_one_cluster(stage):
    kept, removed = stage["kept"], stage["removed"]
    assert stage["expect"]["chain_ends_jaccard"] < 0.5  # the ends are not near-duplicates themselves
    chain = [f"chain-{i}" for i in range(10)]
    kept_chain = [c for c in chain if c in kept]
    assert len(kept_chain) == 1
    keeper = kept_chain[0]
    assert keeper == min(chain)  # no quality, no fetch date: smallest doc_id
    assert kept[keeper]["dup_cluster_size"] == 10
    assert all(removed[c]["dup_kept_doc_id"] == keeper for c in chain if c != keeper)


def test_shared_boilerplate_is_not_a_duplicate(stage):
    kept = stage["kept"]
    boiler = [f"boiler-{i}" for i in range(8)]
    assert all(b in kept and kept[b]["dup_cluster_size"] == 1 for b in boiler)
    # The boilerplate lines stay in exactly one page (the owner, smallest doc_id) ...
    assert kept["boiler-0"]["dup_lines_removed"] == 0
    assert BOILER_HEAD[1] in kept["boiler-0"]["text"]
    # ... and are removed from the others, whose bodies stay.
    for b in boiler[1:]:
        assert kept[b]["dup_lines_removed"] == 6
        assert not any(line in kept[b]["text"] for line in BOILER_HEAD + BOILER_FOOT)


def test_url_variants(stage):
    kept, removed = stage["kept"], stage["removed"]
    assert "urlv-1" in kept  # newest fetch of https://shop.example/item/7
    for i in (0, 2):
        assert removed[f"urlv-{i}"]["dedup_reason"] == "url"
        assert removed[f"urlv-{i}"]["dup_kept_doc_id"] == "urlv-1"
    assert "tie-0" in kept and removed["tie-1"]["dup_kept_doc_id"] == "tie-0"


def test_line_level_removal_across_documents(stage):
    kept, removed = stage["kept"], stage["removed"]
    shared = "Breaking: local council approves"
    holders = [d for d in ("line-0", "line-1", "line-2", "line-3") if shared in kept[d]["text"]]
    assert holders == ["line-0"]  # the owner keeps its one copy
    for d in ("line-1", "line-2", "line-3"):
        assert kept[d]["dup_lines_removed"] == 1 and kept[d]["text"].count("\n") == 2  # 3 body lines left
    assert removed["line-short"]["dedup_reason"] == "line-too-short"
    assert removed["line-short"]["dup_kept_doc_id"] is None


def test_bad_rows_are_dead_lettered_and_summary_adds_up(stage):
    s = stage["summary"]
    files = sorted((stage["base"] / "out1" / "rejected").iterdir())
    assert [f.name for f in files] == ["part-00000-of-00001.jsonl"]  # the one dead-letter format
    rej = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [(r["reason"], r["stage"]) for r in rej] == [("missing_text", "dedup")]
    assert set(rej[0]) == set(writers.DEAD_LETTER_KEYS)
    assert s["rejected"] == 1
    assert s["documents_in"] == len(stage["kept"]) + len(stage["removed"])
    assert s["documents_kept"] == len(stage["kept"])
    assert sum(s["documents_removed"].values()) == len(stage["removed"])
    assert s["minhash"]["cc_converged"] is True
    on_disk = json.loads((stage["base"] / "out1" / "summary.json").read_text())
    assert on_disk == s


def test_two_workers_give_byte_identical_output(stage):
    base = stage["base"]
    summary2 = run_stage(base / "in", base / "out2", workers=2)
    files1 = sorted(p.relative_to(base / "out1") for p in (base / "out1").rglob("*.parquet"))
    files2 = sorted(p.relative_to(base / "out2") for p in (base / "out2").rglob("*.parquet"))
    assert files1 == files2 and files1
    for rel in files1:
        assert (base / "out1" / rel).read_bytes() == (base / "out2" / rel).read_bytes(), rel
    strip = lambda s: {k: v for k, v in s.items() if k != "output"}  # noqa: E731
    assert strip(summary2) == strip(stage["summary"])


def test_minhash_alone_does_not_merge_boilerplate_pages(stage, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("dedup:\n  lines:\n    enabled: false\n  url:\n    enabled: false\n")
    inp = tmp_path / "in"
    inp.mkdir()
    rows = [r for r in build_rows()[0] if r["doc_id"].startswith(("boiler-", "exact-"))]
    pq.write_table(pa.Table.from_pylist(rows), inp / "x.parquet")
    summary = run_stage(inp, tmp_path / "out", workers=1, config=cfg)
    kept = read_dir(tmp_path / "out")
    assert all(kept[f"boiler-{i}"]["dup_cluster_size"] == 1 for i in range(8))
    assert summary["documents_removed"] == {"url": 0, "line-too-short": 0, "minhash": 2, "duplicate-doc-id": 0}
    assert kept["boiler-1"]["dup_lines_removed"] == 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["dedup", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "no .parquet files" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"url": ["x"]}), tmp_path / "in" / "x.parquet")
    assert cli_main(["dedup", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")]) == 2
    assert "lacks required column(s) text" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("dedup:\n  minhash:\n    verify: sometimes\n")
    pq.write_table(pa.table({"url": ["x"], "text": ["y"]}), tmp_path / "in" / "x.parquet")
    assert cli_main(["dedup", "--config", str(bad), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")]) == 2
    assert "dedup.minhash.verify" in capsys.readouterr().err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    write_input(tmp_path / "in")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "summary.json").write_text("{}")
    assert cli_main(["dedup", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")]) == 2
    assert "--overwrite" in capsys.readouterr().err
