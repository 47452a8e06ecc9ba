"""The dedup package: pure line helpers, texts kept out of the steps' shuffles, step order."""
from __future__ import annotations

import json
import random

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import execution

from filters.dedup.lines import cut_lines, line_key, line_keys, pack_keys, unpack_keys
from filters.dedup.text import normalize_line
from pipelines.config import load_config
from pipelines.dedup import Deduplicate
from pipelines.runner import new_pipeline

SENTINEL = "qqsentinelqq"


def test_line_keys_are_distinct_in_order_and_skip_short_lines():
    text = "A long enough line here\nshort\nA LONG enough line, here!\nanother long line of text"
    keys = line_keys(text, min_line_chars=10)
    assert keys == [line_key(normalize_line("A long enough line here")),
                    line_key(normalize_line("another long line of text"))]
    assert unpack_keys(pack_keys(keys)) == keys and len(pack_keys(keys)) == 16


def test_cut_lines_removes_every_copy_of_a_dropped_line_and_nothing_else():
    text = "Keep this line please\nDrop this line now\nshort\ndrop THIS line now!\nlast line kept here"
    drop = {line_key(normalize_line("Drop this line now"))}
    assert cut_lines(text, drop, 10) == ("Keep this line please\nshort\nlast line kept here", 2)
    assert cut_lines(text, set(), 10) == (text, 0)
    # A short line is never cut, even if its key is listed.
    assert cut_lines(text, {line_key("short")}, 10) == (text, 0)


def _words(rng, n):
    return " ".join("".join(rng.choices("abcdefghij", k=6)) for _ in range(n))


def _rows():
    rng = random.Random(3)
    shared = "Subscribe to the newsletter of the example gazette for weekly news"
    body = "\n".join(_words(rng, 30) for _ in range(4))
    rows = [dict(doc_id=f"copy-{i}", url=f"https://copy{i}.example/", text=f"{SENTINEL} {body}")
            for i in range(3)]                                          # MinHash duplicates
    rows += [dict(doc_id=f"line-{i}", url=f"https://lines.example/{i}",
                  text=f"{shared}\n{SENTINEL} " + _words(rng, 60)) for i in range(4)]  # a repeated line
    rows.append(dict(doc_id="line-short", url="https://lines.example/short", text=f"{shared}\ntiny"))
    rows.append(dict(doc_id="url-old", url="https://lines.example/0#top", text=f"{SENTINEL} " + _words(rng, 60)))
    return rows


def _run(rows, overrides, tmp_path, spy=None):
    """Deduplicate on the in-process runner; {"kept": {...}, "removed": {...}, "stats": {...}}."""
    cfg = load_config(overrides={"dedup": overrides})
    out = tmp_path / "out"
    p = new_pipeline(["--direct_running_mode=in_memory"], workers=1)
    result = p | beam.Create(rows, reshuffle=False) | Deduplicate(cfg)
    for name in ("kept", "removed", "stats"):
        (result[name] | f"Json{name}" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, default=str))
         | f"Write{name}" >> beam.io.WriteToText(str(out / name)))
    p.run().wait_until_finish()
    got = {}
    for name in ("kept", "removed", "stats"):
        records = [json.loads(line) for f in out.glob(f"{name}*") for line in f.read_text().splitlines()]
        got[name] = records[0] if name == "stats" else {r["doc_id"]: r for r in records}
    return got


def test_only_the_join_back_shuffles_the_texts(tmp_path, monkeypatch):
    """Every GroupByKey buffer of the local runner that receives a text: exactly one (the join
    back to the rows), not one per step."""
    buffers = set()
    append = execution.GroupingBuffer.append

    def spy(self, elements_data):
        if SENTINEL.encode() in elements_data:
            buffers.add(id(self))
        return append(self, elements_data)

    monkeypatch.setattr(execution.GroupingBuffer, "append", spy)
    got = _run(_rows(), {}, tmp_path)
    assert len(buffers) == 1
    assert sorted(d for d, r in got["removed"].items() if r["dedup_reason"] == "minhash") == ["copy-1", "copy-2"]
    assert got["kept"]["line-1"]["dup_lines_removed"] == 1 and SENTINEL in got["kept"]["line-1"]["text"]


def test_lines_before_url_with_minhash_off(tmp_path):
    """Lines cut before a later step (here URL) are decided there; a disabled MinHash adds its
    cluster columns to kept rows only."""
    got = _run(_rows(), {"order": ["lines", "url", "minhash"], "minhash": {"enabled": False}}, tmp_path)
    kept, removed = got["kept"], got["removed"]
    short = removed["line-short"]
    assert short["dedup_reason"] == "line-too-short" and "dup_cluster_id" not in short
    assert short["text"] == "tiny" and short["dup_lines_removed"] == 1
    assert removed["url-old"]["dedup_reason"] == "url" and removed["url-old"]["dup_kept_doc_id"] == "line-0"
    assert kept["line-0"]["dup_cluster_id"] == "line-0" and kept["line-0"]["dup_cluster_size"] == 1
    assert kept["line-0"]["dup_lines_removed"] == 0      # the owner keeps the shared line
    assert kept["line-2"]["dup_lines_removed"] == 1
    # Lines first takes the exact copies apart line by line (docs/dedup.md, "Order of the steps").
    assert {d for d, r in removed.items() if r["dedup_reason"] == "line-too-short"} == {"line-short", "copy-1", "copy-2"}
    assert got["stats"]["line_too_short_removed"] == 3 and got["stats"]["kept"] == len(kept)


@pytest.mark.parametrize("verify", ["exact"])
def test_minhash_after_lines_hashes_the_shortened_texts(tmp_path, verify):
    """Two pages that are near-duplicates only once their repeated lines are cut."""
    rng = random.Random(9)
    body = _words(rng, 80)
    noise = ["\n".join(_words(random.Random(100 + i * 10 + k), 12) for k in range(12)) for i in range(2)]
    # Each page's noise block is repeated in 3 filler pages, so line dedup removes it from all.
    rows = [dict(doc_id=f"page-{i}", url=f"https://p{i}.example/", text=f"{noise[i]}\n{body}") for i in range(2)]
    rows += [dict(doc_id=f"a-fill-{i}-{j}", url=f"https://f{i}-{j}.example/",
                  text=f"{noise[i]}\n{_words(rng, 80)}") for i in range(2) for j in range(3)]
    overrides = {"order": ["url", "lines", "minhash"], "minhash": {"verify": verify},
                 "lines": {"keep_one_occurrence": True}}
    got = _run(rows, overrides, tmp_path)
    assert got["removed"]["page-1"]["dedup_reason"] == "minhash"
    assert got["removed"]["page-1"]["dup_kept_doc_id"] == "page-0"
    assert got["removed"]["page-1"]["dup_lines_removed"] == 12
    # MinHash first: the noise keeps the pages apart.
    overrides["order"] = ["url", "minhash", "lines"]
    got = _run(rows, overrides, tmp_path / "second")
    assert "page-1" in got["kept"]
