"""Refine's read: files are listed into row-group slices that are spread (not the rows), every
row is read once, a corrupt row group is one dead letter, and document rows cross exactly one
shuffle in the whole stage (the output-shard grouping that also applies dedup's decisions)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.shuffle_refine import count_shuffles, shuffle_counts
from pipelines.inputs import list_inputs
from pipelines import refine, refine_io
from pipelines.config import load_config
from pipelines.runner import new_pipeline
from pipelines.schema import row_doc_id
from tests.conftest import require_shared


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"url": f"https://example.org/{i}", "text": f"row {i} " + "x" * 200, "my_column": i}
            for i in range(start, start + n)]


def test_splits_cover_every_row_group_in_slices(tmp_path):
    path = tmp_path / "three.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(25)), path, row_group_size=10)
    out = list(refine_io.list_splits(str(path), split_rows=4))
    assert [v for k, v in out if k == "dropped_column"] == ["my_column"]
    splits = [tuple(v)[1:] for k, v in out if k == "split"]
    # (row group, first, stop, first row in the file)
    assert splits == [(0, 0, 4, 0), (0, 4, 8, 4), (0, 8, 10, 8), (1, 0, 4, 10), (1, 4, 8, 14), (1, 8, 10, 18),
                      (2, 0, 4, 20), (2, 4, 5, 24)]
    rows = [v for k, v in refine_io.read_parquet_rows(str(path), split_rows=4) if k == "row"]
    whole = [v for k, v in refine_io.read_parquet_rows(str(path), split_rows=1000) if k == "row"]
    assert rows == whole and [r["url"] for r in rows] == [f"https://example.org/{i}" for i in range(25)]
    assert all(r["doc_id"] == row_doc_id(None, r["url"], r["text"]) and "my_column" not in r for r in rows)


def test_bad_files_are_one_dead_letter_each(tmp_path):
    no_text = tmp_path / "no_text.parquet"
    pq.write_table(pa.table({"url": ["u"]}), no_text)
    typed = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"url": ["u", "v"], "text": ["a", "b"], "warc_offset": [[1], [2]]}), typed)
    for path, reason in ((no_text, "missing_columns"), (typed, "bad_column_type"),
                         (tmp_path / "gone.parquet", "unreadable_file")):
        out = list(refine_io.read_parquet_rows(str(path), split_rows=1))
        assert [(k, v["reason"]) for k, v in out] == [("rejected", reason)], path


@pytest.mark.parametrize("split_rows", [250, 1000, refine_io.SPLIT_ROWS])   # 4 slices / whole row groups
def test_a_corrupt_row_group_is_one_dead_letter_and_the_rows_before_it_stand(tmp_path, split_rows):
    big = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(3000)), big, row_group_size=1000, compression="none")
    data = big.read_bytes()
    meta = pq.ParquetFile(big).metadata
    # spoil the middle row group's pages, keep the footer so the file opens
    start = meta.row_group(1).column(0).data_page_offset
    end = meta.row_group(2).column(0).dictionary_page_offset or meta.row_group(2).column(0).data_page_offset
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[:start] + b"\x00" * (end - start) + data[end:])
    out = list(refine_io.read_parquet_rows(str(cut), split_rows=split_rows))
    dead = [v for k, v in out if k == "rejected"]
    assert [(d["reason"], d["row"], d["file"]) for d in dead] == [("corrupt_file", 1000, str(cut))]
    urls = [v["url"] for k, v in out if k == "row"]
    assert urls == [f"https://example.org/{i}" for i in [*range(1000), *range(2000, 3000)]]


@pytest.fixture(scope="module")
def overrides():
    return {"toxicity": {"wordlists": str(require_shared("badwords/en").parent)}}


def _docs() -> list[dict]:
    text = require_shared("text/wikitext-2-test.txt").read_text(encoding="utf-8")
    paras = [p.strip() for p in text.split("\n") if len(p.split()) > 60 and not p.strip().startswith("=")]
    rows = [{"url": f"https://en.example.org/wiki/{i}", "text": "\n".join(paras[i * 3:(i + 1) * 3])}
            for i in range(10)]
    rows.append(dict(rows[0], url="https://en.example.org/wiki/0?utm_source=x"))   # a URL duplicate
    rows.append({"url": "https://spam.example.com/", "text": "Buy cheap shoes now, free delivery.\n" * 30})
    return rows


def _run(inp: Path, out: Path, overrides: dict, workers: int):
    cfg = load_config(overrides=overrides)
    with count_shuffles():
        pipeline = new_pipeline([], workers=workers)
        refine.build(pipeline, list_inputs(str(inp)), str(out), cfg, {"stage": "refine", "input": "t"})
    result = pipeline.run()
    result.wait_until_finish()
    return shuffle_counts(result)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            and p.name != "_SUCCESS"}


def test_rows_cross_one_shuffle_and_slices_do_not_change_the_output(tmp_path, overrides, monkeypatch):
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(pa.Table.from_pylist(_docs()), inp / "docs.parquet", row_group_size=5)
    whole = _run(inp, tmp_path / "whole", overrides, workers=1)
    monkeypatch.setattr(refine_io, "SPLIT_ROWS", 2)
    sliced = _run(inp, tmp_path / "sliced", overrides, workers=2)
    assert _files(tmp_path / "whole") == _files(tmp_path / "sliced")
    summary = json.loads((tmp_path / "sliced" / "summary.json").read_text())
    assert summary["documents_in"] == 12 and summary["dedup"]["url_removed"] == 1
    for counts in (whole, sliced):
        with_rows = {name: c["rows"] for name, c in counts.items() if c["rows"]}
        # every document row once, in the one grouping by output shard (kept, removed, joined)
        assert with_rows == {"Refine/GroupShards": 12}
    # the spread is of slices, not of rows: 3 row groups of 5, 5 and 2 rows in slices of at most 2
    assert sliced["Refine/ReadParquet/SpreadSplits/ReshufflePerKey/GroupByKey"]["elements"] == 7


def test_a_file_with_a_repeated_column_name_is_one_dead_letter(tmp_path):
    path = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["u"]), pa.array(["t" * 50]), pa.array(["v"])],
                                        names=["url", "text", "url"]), path)
    out = list(refine_io.read_parquet_rows(str(path)))
    assert [(k, v["reason"]) for k, v in out] == [("rejected", "unreadable_file")]
    assert "url" in out[0][1]["detail"]


def test_one_uncastable_value_costs_its_row_only(tmp_path):
    path = tmp_path / "values.parquet"
    n = 2500   # three record batches; the bad value sits in the second
    offsets = [str(i) for i in range(n)]
    offsets[1234] = "not a number"
    pq.write_table(pa.table({"url": [f"https://e.org/{i}" for i in range(n)], "text": ["some text"] * n,
                             "warc_offset": offsets}), path)
    out = list(refine_io.read_parquet_rows(str(path)))
    rows = [v for k, v in out if k == "row"]
    rejected = [v for k, v in out if k == "rejected"]
    assert len(rows) == n - 1 and [r["warc_offset"] for r in rows] == [i for i in range(n) if i != 1234]
    assert [(r["reason"], r["row"]) for r in rejected] == [("bad_column_type", 1234)]


def test_a_huge_foreign_row_group_is_decoded_at_most_a_few_times(tmp_path):
    path = tmp_path / "one_group.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(100)), path, row_group_size=100)
    splits = [v for k, v in refine_io.list_splits(str(path), split_rows=10) if k == "split"]
    assert len(splits) == refine_io.MAX_SPLITS_PER_ROW_GROUP
    assert [(s.first, s.stop) for s in splits] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    rows = [v for k, v in refine_io.read_parquet_rows(str(path), split_rows=10) if k == "row"]
    assert [r["url"] for r in rows] == [f"https://example.org/{i}" for i in range(100)]
