"""Output safety through the real CLIs: no stage writes where it reads, --overwrite removes only
what a previous run of the same stage wrote, a lock keeps two runs out of one folder, and
``_SUCCESS`` is written last (a crashed run never looks complete)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import extract, outputs
from pipelines.cli import main
from tests.conftest import REPO_ROOT

SAMPLE = str(REPO_ROOT / "samples" / "sample.warc.gz")
LOCAL = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]  # a small sample: no worker processes


def tiny_parquet(folder: Path, name: str = "docs.parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"doc_id": f"d{i}", "url": f"https://example.org/{i}", "text": f"hello world number {i}. " * 20}
            for i in range(3)]
    path = folder / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------- 1. output vs inputs
@pytest.mark.parametrize("stage", ["refine", "dedup", "tokenize"])
@pytest.mark.parametrize("where", ["same", "inside", "parent", "dotted"])
def test_a_stage_refuses_an_output_that_overlaps_its_input(tmp_path, capsys, stage, where):
    docs = tmp_path / "docs"
    original = tiny_parquet(docs).read_bytes()
    out = {"same": docs, "inside": docs / "out", "parent": tmp_path, "dotted": docs / "x" / ".."}[where]
    extra = ["--tokenizer", str(tmp_path / "tok.json")] if stage == "tokenize" else []
    assert main([stage, "--input", str(docs), "--output", str(out), "--overwrite", *extra]) == 2
    line = one_line_error(capsys)
    assert "--input" in line and "never writes where it reads" in line
    assert (docs / "docs.parquet").read_bytes() == original           # the input is untouched
    assert sorted(p.name for p in docs.iterdir()) == ["docs.parquet"]  # and nothing was written


def test_refine_with_a_glob_or_comma_list_input_is_checked_too(tmp_path, capsys):
    docs = tmp_path / "a" / "docs"
    tiny_parquet(docs)
    other = tiny_parquet(tmp_path / "b")
    assert main(["refine", "--input", f"{other},{docs}/*.parquet", "--output", str(tmp_path / "a")]) == 2
    assert "contains --input" in one_line_error(capsys)


def test_refine_refuses_an_output_over_its_robots_or_benchmark_input(tmp_path, capsys):
    docs = tiny_parquet(tmp_path / "docs").parent
    robots = tmp_path / "robots"
    robots.mkdir()
    assert main(["refine", "--input", str(docs), "--robots", f"{robots}/*.warc.gz",
                 "--output", str(robots / "out")]) == 2
    assert "--robots" in one_line_error(capsys)
    bench = tmp_path / "bench" / "b.jsonl"
    bench.parent.mkdir()
    bench.write_text('{"text": "x"}\n')
    assert main(["refine", "--input", str(docs), "--benchmark", f"b={bench}",
                 "--output", str(bench.parent)]) == 2
    assert "--benchmark" in one_line_error(capsys)


def test_extract_refuses_an_output_around_its_warc_input(tmp_path, capsys):
    warcs = tmp_path / "warcs"
    warcs.mkdir()
    (warcs / "a.warc.gz").write_bytes(Path(SAMPLE).read_bytes())
    assert main(["extract", "--input", str(warcs / "a.warc.gz"), "--output", str(warcs)]) == 2
    assert "contains --input" in one_line_error(capsys)


def test_urls_compare_by_normalised_prefix():
    assert outputs._overlap(outputs.normalise_location("GS://b/x/../data/"),
                            outputs.normalise_location("gs://b/data")) == "is"
    assert outputs._overlap(outputs.normalise_location("s3://b/data/out"),
                            outputs.normalise_location("s3://b//data")) == "lies inside"
    assert outputs._overlap(outputs.normalise_location("s3://b/data2"),
                            outputs.normalise_location("s3://b/data")) is None
    assert outputs._overlap(outputs.normalise_location("gs://b/data"),
                            outputs.normalise_location("s3://b/data")) is None


def test_an_input_folder_still_being_written_is_refused(tmp_path, capsys):
    docs = tiny_parquet(tmp_path / "docs").parent
    (docs / outputs.LOCK_NAME).write_text(json.dumps({"stage": "extract", "pid": os.getpid()}))
    assert main(["refine", "--input", str(docs), "--output", str(tmp_path / "out")]) == 2
    line = one_line_error(capsys)
    assert outputs.LOCK_NAME in line and "_SUCCESS" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------ 2./3. overwrite, lock, commit
def test_extract_markers_overwrite_foreign_files_and_locks(tmp_path, capsys):
    out = tmp_path / "ex"
    assert main(["extract", "--input", SAMPLE, "--output", str(out), *LOCAL]) == 0
    success = json.loads((out / "_SUCCESS").read_text())
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "_SUCCESS")
    assert success["stage"] == "extract" and success["files"] == written
    assert not (out / outputs.LOCK_NAME).exists()
    first = {f: (out / f).read_bytes() for f in written if f.endswith(".parquet")}

    # A file the stage did not write and that no stage reads is left alone by --overwrite.
    (out / "notes.txt").write_text("mine")
    # A foreign Parquet file would be read by the next stage as extract's output: refused by name,
    # with or without --overwrite, and nothing is deleted.
    (out / "foreign.parquet").write_bytes(b"not yours")
    capsys.readouterr()
    for flags in ([], ["--overwrite"]):
        assert main(["extract", "--input", SAMPLE, "--output", str(out), *flags, *LOCAL]) == 2
        assert "foreign.parquet" in one_line_error(capsys)
    assert all((out / f).exists() for f in written)
    (out / "foreign.parquet").unlink()

    # Another run is writing (a live pid holds the lock): refused naming the lock and the way out.
    (out / outputs.LOCK_NAME).write_text(json.dumps({"stage": "extract", "run_id": "x", "pid": os.getpid(),
                                                     "host": socket.gethostname(), "started": "now"}))
    assert main(["extract", "--input", SAMPLE, "--output", str(out), "--overwrite", *LOCAL]) == 2
    line = one_line_error(capsys)
    assert outputs.LOCK_NAME in line and "--break-lock" in line
    # A lock of a dead local pid is stale: --overwrite takes it over.
    (out / outputs.LOCK_NAME).write_text(json.dumps({"stage": "extract", "run_id": "x", "pid": dead_pid(),
                                                     "host": socket.gethostname(), "started": "then"}))
    assert main(["extract", "--input", SAMPLE, "--output", str(out), "--overwrite", *LOCAL]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / outputs.LOCK_NAME).exists()
    assert json.loads((out / "_SUCCESS").read_text()) == success
    assert {f: (out / f).read_bytes() for f in first} == first


def test_a_crashed_run_leaves_no_success_and_a_failed_lock(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ex"

    def half_then_crash(pipeline, paths, output, *a, **kw):
        (Path(output) / "part-half.parquet").write_bytes(b"half")
        raise RuntimeError("worker died")

    monkeypatch.setattr(extract, "build", half_then_crash)
    with pytest.raises(RuntimeError):
        main(["extract", "--input", SAMPLE, "--output", str(out), *LOCAL])
    assert not (out / "_SUCCESS").exists()
    lock = json.loads((out / outputs.LOCK_NAME).read_text())
    assert lock["state"] == "failed" and "worker died" in lock["error"]
    monkeypatch.undo()
    # The next stage does not read it as complete.
    assert main(["refine", "--input", str(out), "--output", str(tmp_path / "ref")]) == 2
    assert outputs.LOCK_NAME in one_line_error(capsys)
    # Rerunning without --overwrite says what to do; with it, the leftovers go and the run commits.
    assert main(["extract", "--input", SAMPLE, "--output", str(out), *LOCAL]) == 2
    assert "--overwrite" in one_line_error(capsys)
    assert main(["extract", "--input", SAMPLE, "--output", str(out), "--overwrite", *LOCAL]) == 0
    assert not (out / "part-half.parquet").exists() and (out / "_SUCCESS").exists()


def test_a_stage_does_not_write_into_another_stages_output(tmp_path, capsys):
    # dedup into a folder holding extract's output (with or without the markers) must not replace
    # extract's summary.json nor mix Parquet files.
    src = tiny_parquet(tmp_path / "src").parent
    for marked in (True, False):
        ex = tmp_path / f"ex-{marked}"
        tiny_parquet(ex, "part-00000.parquet")
        (ex / "summary.json").write_text(json.dumps({"stage": "extract"}))
        if marked:
            (ex / "_SUCCESS").write_text(json.dumps({"stage": "extract", "files": ["part-00000.parquet",
                                                                                   "summary.json"]}))
        before = {p.name: p.read_bytes() for p in ex.iterdir()}
        assert main(["dedup", "--input", str(src), "--output", str(ex), "--overwrite"]) == 2
        line = one_line_error(capsys)
        assert ("another stage" in line) if marked else ("no earlier dedup run wrote" in line)
        assert {p.name: p.read_bytes() for p in ex.iterdir()} == before


def test_a_folder_from_before_the_markers_is_still_overwritable(tmp_path):
    out = tmp_path / "ex"
    assert main(["extract", "--input", SAMPLE, "--output", str(out), *LOCAL]) == 0
    (out / "_SUCCESS").unlink()  # as an earlier version left it: summary.json names the stage
    assert main(["extract", "--input", SAMPLE, "--output", str(out), "--overwrite", *LOCAL]) == 0
    assert (out / "_SUCCESS").exists()


def test_two_runs_cannot_hold_one_output(tmp_path, capsys):
    # The second of two simultaneous runs finds the first one's lock (created exclusively).
    out = str(tmp_path / "o")
    with outputs.StageOutput(out, "extract", extract.STAGE_OUTPUTS, overwrite=False) as first:
        assert json.loads((tmp_path / "o" / outputs.LOCK_NAME).read_text())["run_id"] == first.run_id
        assert main(["extract", "--input", SAMPLE, "--output", out, *LOCAL]) == 2
        assert "is in use" in one_line_error(capsys)
        assert not outputs._create_exclusive(str(tmp_path / "o" / outputs.LOCK_NAME), {"run_id": "other"})
        tiny_parquet(tmp_path / "o", "a.parquet")
        first.commit()
    assert not (tmp_path / "o" / outputs.LOCK_NAME).exists()
    assert json.loads((tmp_path / "o" / "_SUCCESS").read_text()) == {"stage": "extract", "files": ["a.parquet"]}
    # --break-lock takes over any lock (here one of a live pid), and the files of that stage.
    (tmp_path / "o" / outputs.LOCK_NAME).write_text(json.dumps({"stage": "extract", "pid": os.getpid(),
                                                               "host": socket.gethostname()}))
    assert main(["extract", "--input", SAMPLE, "--output", out, "--overwrite", "--break-lock", *LOCAL]) == 0
    assert not (tmp_path / "o" / "a.parquet").exists() and not (tmp_path / "o" / outputs.LOCK_NAME).exists()


def test_dedup_refuses_a_foreign_parquet_in_its_output(tmp_path, capsys):
    src = tiny_parquet(tmp_path / "src").parent
    out = tmp_path / "out"
    tiny_parquet(out, "mine.parquet")
    assert main(["dedup", "--input", str(src), "--output", str(out), "--overwrite"]) == 2
    assert "mine.parquet" in one_line_error(capsys)
    assert (out / "mine.parquet").exists()


def test_pipelines_all_refuses_a_snapshot_another_run_is_writing(tmp_path, capsys):
    import yaml

    from tests.servers import FileServer, make_cc_layout

    snapshot = "CC-MAIN-2031-07"
    make_cc_layout(tmp_path / "cc", snapshot, [Path(SAMPLE)])
    root = tmp_path / "out" / snapshot
    root.mkdir(parents=True)
    (root / "input_warcs.txt").write_text("old\n")
    (root / outputs.LOCK_NAME).write_text(json.dumps({"stage": "all", "pid": os.getpid(),
                                                      "host": socket.gethostname(), "started": "now"}))
    with FileServer(tmp_path / "cc") as server:
        config = tmp_path / "cfg.yaml"
        config.write_text(yaml.safe_dump({"sources": {"https_base": server.url,
                                                      "collinfo_url": server.url + "collinfo.json"}}))
        argv = ["all", "--snapshot", snapshot, "--stages", "extract", "--output", str(tmp_path / "out"),
                "--config", str(config), *LOCAL]
        assert main(argv) == 2
        assert outputs.LOCK_NAME in one_line_error(capsys)
        assert (root / "input_warcs.txt").read_text() == "old\n"  # nothing cleared
        # The lock of a dead pid is taken over; the run completes and removes it.
        (root / outputs.LOCK_NAME).write_text(json.dumps({"stage": "all", "pid": dead_pid(),
                                                          "host": socket.gethostname()}))
        assert main(argv) == 0
    assert not (root / outputs.LOCK_NAME).exists() and (root / "_COMPLETE.json").exists()
    assert outputs.LOCK_NAME not in json.loads((root / "_COMPLETE.json").read_text())["files"]
