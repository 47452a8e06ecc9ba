"""The extract stage end to end on real Beam runs: real pages, S3, flaky HTTPS, bad files."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from warcio.archiveiterator import ArchiveIterator

from bench.extraction_eval import score
from pipelines.cli import main
from pipelines.warc import RawRecord, iter_records, local_opener
from tests.conftest import require_shared
from tests.servers import FaultInjector, FileServer, make_cc_layout, moto_s3_server, upload_dir_to_s3

SNAPSHOT = "CC-MAIN-TEST-00"
LATEST = "CC-MAIN-2030-05"


def run_extract(*args: str) -> int:
    return main(["extract", *args])


def docs_of(out: Path) -> list[dict]:
    files = sorted(out.glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["doc_id"])


def comparable(rows: list[dict]) -> list[tuple]:
    """Document content independent of where the WARC was read from."""
    return [(r["doc_id"], r["url"], r["text"], r["warc_record_id"], r["warc_offset"], r["fetch_date"],
             r["charset"]) for r in rows]


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def carve(src: Path, dest: Path, first: int, count: int) -> Path:
    """A new per-record-gzip WARC holding fetches [first, first+count) of ``src`` (real bytes)."""
    data = src.read_bytes()
    spans = []
    with open(src, "rb") as fh:
        it = ArchiveIterator(fh)
        for rec in it:
            rec.content_stream().read()
            spans.append((rec.rec_type, it.get_record_offset(), it.get_record_length()))
    head = [s for s in spans if s[0] == "warcinfo"][:1]
    fetches = [s for s in spans if s[0] != "warcinfo"]
    chosen = head + fetches[first * 3:(first + count) * 3]
    dest.write_bytes(b"".join(data[o:o + n] for _, o, n in chosen))
    return dest


@pytest.fixture(scope="module")
def small_warcs(tmp_path_factory) -> list[Path]:
    realweb = require_shared("realweb/realweb.warc.gz")
    root = tmp_path_factory.mktemp("warcs")
    return [carve(realweb, root / "CC-TEST-00000.warc.gz", 0, 25),
            carve(realweb, root / "CC-TEST-00001.warc.gz", 25, 25)]


@pytest.fixture(scope="module")
def reference_run(small_warcs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    assert run_extract("--input", ",".join(map(str, small_warcs)), "--output", str(out), "--overwrite",
                       "--direct_num_workers=2") == 0
    return out


def test_realweb_end_to_end_beats_plain_trafilatura(tmp_path, capsys):
    """All 990 real pages: nothing lost, and boilerplate removal at least as good as trafilatura."""
    import trafilatura

    warc = require_shared("realweb/realweb.warc.gz")
    truth = require_shared("realweb/realweb-eval.json")
    out = tmp_path / "out"
    assert run_extract("--input", str(warc), "--output", str(out)) == 0
    summary = summary_of(out)
    assert summary["records_read"] == summary["kept"] + summary["dropped"] + summary["dead_lettered"]
    with open(warc, "rb") as fh:
        assert summary["records_read"] == sum(1 for _ in ArchiveIterator(fh))
    rows = docs_of(out)
    assert len(rows) == summary["kept"] >= 950
    ours = score({r["url"]: r["text"] for r in rows}, str(truth))

    baseline_texts = {}
    for rec in iter_records(local_opener(str(warc)), str(warc), want_body=lambda r: r.rec_type == "response"):
        if isinstance(rec, RawRecord) and rec.body:
            baseline_texts[rec.target_uri] = trafilatura.extract(rec.body) or ""
    baseline = score(baseline_texts, str(truth))
    with capsys.disabled():
        print(f"\nrealweb snippets: pipeline P={ours['precision']:.3f} R={ours['recall']:.3f} "
              f"F1={ours['f1']:.3f} | trafilatura defaults F1={baseline['f1']:.3f}")
    assert ours["f1"] >= baseline["f1"] - 0.005


def test_same_bytes_on_one_and_two_workers(small_warcs, reference_run, tmp_path):
    out = tmp_path / "one"
    assert run_extract("--input", ",".join(map(str, small_warcs)), "--output", str(out),
                       "--direct_num_workers=1") == 0
    ref_files = sorted(p.name for p in reference_run.glob("*.parquet"))
    assert ref_files == sorted(p.name for p in out.glob("*.parquet")) and len(ref_files) == 2
    for name in ref_files:
        assert (out / name).read_bytes() == (reference_run / name).read_bytes()


def test_bad_files_are_dead_lettered_and_counted(tmp_path):
    folder = require_shared("warc/warcio")
    out = tmp_path / "bad"
    assert run_extract("--input", str(folder), "--output", str(out)) == 0
    summary = summary_of(out)
    assert summary["records_read"] == summary["kept"] + summary["dropped"] + summary["dead_lettered"]
    dead = [json.loads(line) for f in sorted((out / "dead-letter").glob("*.jsonl"))
            for line in f.read_text().splitlines()]
    assert len(dead) == summary["dead_lettered"] >= 1
    assert all(d["warc_file"] and d["stage"] and d["reason"] and d["warc_offset"] is not None for d in dead)
    assert any(d["warc_file"].endswith("example-wrong-chunks.warc.gz") and d["reason"] == "malformed_record"
               for d in dead)
    assert summary["dropped_by_reason"].get("record_type:request", 0) > 0


def test_s3_snapshot_end_to_end(small_warcs, reference_run, tmp_path):
    root = tmp_path / "cc"
    make_cc_layout(root, SNAPSHOT, small_warcs)
    with moto_s3_server() as endpoint:
        upload_dir_to_s3(endpoint, "commoncrawl", root)
        out = tmp_path / "s3out"
        assert run_extract("--snapshot", SNAPSHOT, "--source", "s3", "--s3-endpoint-url", endpoint,
                           "--output", str(out)) == 0
    summary = summary_of(out)
    assert summary["snapshot"] == SNAPSHOT and summary["input_files"] == 2
    assert comparable(docs_of(out)) == comparable(docs_of(reference_run))
    assert all(r["warc_file"].startswith("s3://commoncrawl/crawl-data/") for r in docs_of(out))


def test_flaky_https_gives_the_same_output_as_a_clean_run(small_warcs, reference_run, tmp_path):
    root = tmp_path / "cc"
    # "latest" must pick the newest real-looking id from collinfo.json, not an older one.
    make_cc_layout(root, LATEST, small_warcs, extra_collinfo_ids=["CC-MAIN-2024-22", "CC-MAIN-2019-04"])
    faults = FaultInjector(p=0.2, seed=11)
    # A run makes only a few requests (collinfo, listing, one per WARC plus resumes), so a few
    # faults are forced on top of the random 20%: every kind is exercised on every run.
    # The first two requests (collinfo.json, warc.paths.gz) come from the launcher; the
    # scripted faults then land on the WARC downloads inside the Beam workers.
    faults.script = [None, None, "reset", "503", "truncate", "429", "reset", "503-retry-after-0"]
    with FileServer(root, faults=faults) as server:
        config = tmp_path / "flaky.yaml"
        config.write_text(yaml.safe_dump({"sources": {
            "https_base": server.url, "collinfo_url": server.url + "collinfo.json",
            "backoff_base_s": 0.01, "backoff_max_s": 0.05, "max_retries": 20}}))
        out = tmp_path / "httpsout"
        assert run_extract("--snapshot", "latest", "--source", "https", "--config", str(config),
                           "--output", str(out)) == 0
    summary = summary_of(out)
    assert summary["snapshot"] == LATEST
    assert faults.total > 0
    assert summary["source"]["source_retries"] + summary["source"]["source_resumes"] > 0, (summary["source"], dict(faults.counts), server.requests[:12])
    assert comparable(docs_of(out)) == comparable(docs_of(reference_run))
    assert summary["records_read"] == summary_of(reference_run)["records_read"]


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert run_extract("--input", str(tmp_path / "nope.warc.gz"), "--output", str(tmp_path / "o")) == 2
    assert "nope.warc.gz" in capsys.readouterr().err
    assert run_extract("--input", str(tmp_path), "--output", str(tmp_path / "o"), "--ouput", "x") == 2
    assert "--ouput" in capsys.readouterr().err
    assert run_extract("--input", str(tmp_path), "--output", str(tmp_path / "o"), "--max-warcs", "3") == 2
    assert "--max-warcs" in capsys.readouterr().err
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("extract:\n  min_text_char: 5\n")
    assert run_extract("--input", str(tmp_path), "--output", str(tmp_path / "o"), "--config", str(bad_cfg)) == 2
    assert "extract.min_text_char" in capsys.readouterr().err
    assert run_extract("--snapshot", "CC-MAIN-bad id", "--output", str(tmp_path / "o")) == 2
    assert "CC-MAIN-bad id" in capsys.readouterr().err


def test_existing_output_needs_overwrite(small_warcs, reference_run, capsys):
    assert run_extract("--input", str(small_warcs[0]), "--output", str(reference_run)) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_listed_warc_that_is_gone_is_dead_lettered_and_the_run_completes(small_warcs, reference_run, tmp_path):
    import gzip as gz

    root = tmp_path / "cc"
    listing = make_cc_layout(root, SNAPSHOT, small_warcs)
    gone = f"crawl-data/{SNAPSHOT}/segments/1700000000000.09/warc/CC-TEST-00009.warc.gz"
    with gz.open(root / "crawl-data" / SNAPSHOT / "warc.paths.gz", "wt") as fh:
        fh.write("\n".join(sorted(listing + [gone])) + "\n")
    with FileServer(root) as server:
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump({"sources": {"https_base": server.url, "backoff_base_s": 0.01}}))
        out = tmp_path / "out"
        assert run_extract("--snapshot", SNAPSHOT, "--source", "https", "--config", str(config),
                           "--output", str(out)) == 0
    summary = summary_of(out)
    assert summary["input_files"] == 3
    assert summary["dead_lettered_by_reason"] == {"source_error": 1}
    dead = [json.loads(line) for f in (out / "dead-letter").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert len(dead) == 1 and dead[0]["warc_file"].endswith("CC-TEST-00009.warc.gz")
    assert comparable(docs_of(out)) == comparable(docs_of(reference_run))


def test_an_unexpected_error_on_one_page_is_its_dead_letter(monkeypatch, tmp_path):
    """A bug tripped by one odd page must not end the job: that page is dead-lettered."""
    from pipelines import extract
    from pipelines.records import DEAD
    from pipelines.schema import DOC_SCHEMA

    class Boom:
        def __call__(self, doc):
            if "library" in doc["url"]:
                raise RuntimeError("signal computation failed")
            return {}

    from pipelines.config import load_config

    fn = extract.ExtractFileFn({**load_config()["extract"], "timeout_s": 0}, {}, output=str(tmp_path),
                               schema=DOC_SCHEMA)
    fn.setup()
    fn.signals = Boom()
    outs = list(fn.process(("samples/sample.warc.gz", 0, 1)))
    dead = [o.value[1] for o in outs if getattr(o, "tag", None) == extract.DEAD_LETTERS]
    files = [o for o in outs if not hasattr(o, "tag")]
    internal = [d for d in dead if d["reason"] == "internal_error"]
    assert internal and all("library" in d["url"] and "signal computation failed" in d["detail"] for d in internal)
    kept = [r for f in files for r in pq.read_table(tmp_path / f).to_pylist()]
    assert kept, "the other pages are still extracted"
    assert not any("library" in r["url"] for r in kept)
    outcomes = [o.value for o in outs if getattr(o, "tag", None) == extract.OUTCOMES]
    assert (DEAD, "internal_error") in outcomes
    fn.teardown()


def _chunk_files(out: Path, chunk_bytes: int, splits: int) -> tuple[list, dict[str, bytes]]:
    """Every split of samples/sample.warc.gz through ExtractFileFn.process: (outputs, files written)."""
    from pipelines import extract
    from pipelines.config import load_config
    from pipelines.schema import DOC_SCHEMA

    cfg = {**load_config()["extract"], "timeout_s": 0, "output_chunk_bytes": chunk_bytes}
    fn = extract.ExtractFileFn(cfg, {}, output=str(out), schema=DOC_SCHEMA)
    fn.setup()
    try:
        outs = [o for split in reversed(range(splits)) for o in fn.process(("samples/sample.warc.gz", split, splits))]
    finally:
        fn.teardown()
    return outs, {p.name: p.read_bytes() for p in sorted(out.glob("*.parquet"))}


def test_the_reader_writes_each_chunk_itself_the_same_for_any_split_count(tmp_path):
    """No documents leave the reader: it writes <file>-<chunk>.parquet as soon as a chunk is done,
    with names and bytes that do not depend on how many readers share the file (or on a retry)."""
    chunk_bytes = 40_000   # samples/sample.warc.gz is 170 kB: 5 chunks
    outs, one = _chunk_files(tmp_path / "one", chunk_bytes, 1)
    assert len(one) >= 4
    names = [o for o in outs if isinstance(o, str)]
    assert sorted(names) == sorted(one)     # the main output is the names written, each once
    for name, data in one.items():
        offsets = pq.read_table(pa.BufferReader(data)).column("warc_offset").to_pylist()
        chunk = int(name.rsplit("-", 1)[1].split(".")[0])
        assert offsets == sorted(offsets) and all(o // chunk_bytes == chunk for o in offsets)
    # Written while reading, not at the end: the first file comes before the last record's outcome.
    tags = [getattr(o, "tag", "file") for o in outs]
    last_outcome = max(i for i, t in enumerate(tags) if t == "outcomes")
    assert tags.index("file") < last_outcome
    _, three = _chunk_files(tmp_path / "three", chunk_bytes, 3)
    assert three == one
    again_outs, again = _chunk_files(tmp_path / "one", chunk_bytes, 1)   # a retried bundle
    assert again == one and sorted(o for o in again_outs if isinstance(o, str)) == sorted(one)


def test_splits_are_capped_at_the_chunks_of_local_files(tmp_path):
    from pipelines.extract import plan_splits

    small, big = tmp_path / "a.warc.gz", tmp_path / "b.warc.gz"
    small.write_bytes(b"x" * 10)
    big.write_bytes(b"x" * 250)
    assert plan_splits([str(small)], "auto", 2) == 4                      # 2 x workers, one file
    assert plan_splits([str(small)], "auto", 2, chunk_bytes=100) == 1     # one chunk: one reader
    assert plan_splits([str(small), str(big)], "auto", 4, chunk_bytes=100) == 3
    assert plan_splits(["s3://bucket/x.warc.gz"], "auto", 2, chunk_bytes=100) == 4   # size unknown
    assert plan_splits([str(small)], 5, 2, chunk_bytes=100) == 5          # an explicit count stays


def test_big_inputs_are_written_in_offset_ranges(small_warcs, tmp_path):
    """One Parquet file per offset range, so a writer never holds a whole big WARC's documents;
    written by three readers on two workers, listed in the summary and _SUCCESS."""
    out = tmp_path / "chunked"
    chunk_bytes = small_warcs[0].stat().st_size // 4
    cfg = tmp_path / "chunks.yaml"
    cfg.write_text(f"extract:\n  output_chunk_bytes: {chunk_bytes}\n  splits_per_file: 3\n")
    assert run_extract("--input", str(small_warcs[0]), "--output", str(out), "--config", str(cfg),
                       "--direct_num_workers=2") == 0
    files = sorted(out.glob("*.parquet"))
    assert len(files) >= 3
    assert summary_of(out)["outputs"]["documents"] == [f.name for f in files]
    assert sorted(json.loads((out / "_SUCCESS").read_text())["files"]) == sorted(
        [f.name for f in files] + ["summary.json"])
    rows_per_file = [pq.read_table(f).column("warc_offset").to_pylist() for f in files]
    for index, offsets in enumerate(rows_per_file):
        chunk = int(files[index].stem.rsplit("-", 1)[1])
        assert offsets == sorted(offsets) and all(o // chunk_bytes == chunk for o in offsets)
    whole = tmp_path / "whole"
    assert run_extract("--input", str(small_warcs[0]), "--output", str(whole)) == 0
    assert comparable(docs_of(out)) == comparable(docs_of(whole))


def test_chunk_files_of_a_failed_attempt_that_the_result_does_not_name_are_removed(tmp_path):
    # A reader that died after writing chunks 0-1 and whose retry stopped earlier (a source error
    # ends the file) leaves chunk 1 behind: the summary step removes it, so it is never committed.
    from pipelines.extract import WriteSummaryFn

    kept, stray = tmp_path / "w-00000000-00000.parquet", tmp_path / "w-00000000-00001.parquet"
    kept.write_bytes(b"PAR1")
    stray.write_bytes(b"PAR1")
    (tmp_path / "dead-letter").mkdir()
    (tmp_path / "dead-letter" / "w.jsonl").write_text("{}\n")
    fn = WriteSummaryFn(str(tmp_path), {"stage": "extract"})
    summary = next(iter(fn.process(None, [], [], [kept.name], ["dead-letter/w.jsonl"])))
    assert summary["outputs"]["documents"] == [kept.name]
    assert kept.exists() and not stray.exists() and (tmp_path / "dead-letter" / "w.jsonl").exists()
