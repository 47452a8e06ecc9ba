"""The one I/O layer of every stage: the --input listing rule, the Parquet reader, the shard
function, the dead-letter shape and format, and staged runs that commit atomically (local and S3)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import inputs, outputs, writers
from pipelines.cli import CliError, main
from tokenization.dochash import doc_id_for


def write_docs(path: Path, n: int = 3, text: str = "hello world number {i}. ") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"doc_id": f"{path.stem}-{i}", "url": f"https://example.org/{path.stem}/{i}", "text": text.format(i=i) * 20}
            for i in range(n)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ------------------------------------------------------------------------------------ listing rule
def test_a_folder_means_its_top_level_visible_parquet(tmp_path):
    d = tmp_path / "d"
    a, b = write_docs(d / "a.parquet"), write_docs(d / "b.parquet")
    write_docs(d / "removed" / "r.parquet")            # refine's removed documents: not read
    write_docs(d / "_hidden.parquet")                  # Hadoop/Spark convention: hidden
    write_docs(d / ".tmp.parquet")
    (d / "summary.json").write_text("{}")
    assert inputs.list_inputs(str(d)) == [str(a), str(b)]


def test_a_hidden_name_listed_by_success_is_read(tmp_path):
    # extract over _x.warc.gz writes _x-<hash>-00000.parquet: its _SUCCESS lists it, so every
    # stage reads it (it used to be read by refine and silently skipped by tokenize).
    d = tmp_path / "extracted"
    x, y = write_docs(d / "_x-0a1b2c3d-00000.parquet"), write_docs(d / "y.parquet")
    write_docs(d / "_stray.parquet")
    (d / "_SUCCESS").write_text(json.dumps({"stage": "extract", "files": [x.name, y.name, "summary.json"]}))
    assert inputs.list_inputs(str(d)) == [str(x), str(y)]
    assert inputs.list_inputs(f"{d}/*.parquet") == [str(x), str(y)]       # a glob: the same rule
    from pipelines.report.layout import RunLayout

    assert RunLayout(str(tmp_path)).parquet_files("extract") == [str(x), str(y)]
    # a Spark-style empty _SUCCESS lists nothing
    (d / "_SUCCESS").write_text("")
    assert inputs.list_inputs(str(d)) == [str(y)]


def test_comma_lists_globs_files_and_recursion(tmp_path):
    a = write_docs(tmp_path / "a" / "1.parquet")
    b = write_docs(tmp_path / "b" / "2.parquet")
    deep = write_docs(tmp_path / "b" / "sub" / "3.parquet")
    odd = tmp_path / "odd.data"
    odd.write_bytes(a.read_bytes())
    spec = f"{tmp_path / 'a'}, {tmp_path}/b/*.parquet ,{a},{odd}"
    assert inputs.list_inputs(spec) == sorted([str(a), str(b), str(odd)])   # once each, sorted
    assert inputs.list_inputs(f"{tmp_path}/b/**.parquet") == [str(b), str(deep)]
    assert inputs.list_inputs([str(tmp_path / "a")]) == [str(a)]


@pytest.mark.parametrize("item", ["missing-dir", "missing.parquet", "empty", "*.nothing"])
def test_an_item_that_matches_nothing_is_a_one_line_error(tmp_path, item):
    (tmp_path / "empty").mkdir()
    write_docs(tmp_path / "ok" / "a.parquet")
    spec = f"{tmp_path / 'ok'},{tmp_path / item}"
    with pytest.raises(CliError) as err:
        inputs.list_inputs(spec)
    line = str(err.value)
    assert "\n" not in line and str(tmp_path / item) in line
    assert "no Parquet files match" in line and "no .parquet files" in line
    assert inputs.list_parquet(spec) == [str(tmp_path / "ok" / "a.parquet")]  # the report's lenient form


def test_the_refine_cli_reports_an_empty_input_with_exit_2(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert main(["refine", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --input") and "no Parquet files match" in err[-1]


# ------------------------------------------------------------------------------------ reader
def test_the_reader_ends_a_bad_file_with_one_problem(tmp_path):
    good = write_docs(tmp_path / "good.parquet", n=5)
    kinds = [k for k, _ in inputs.read_parquet(str(good), ["text", "nope"], batch_rows=2)]
    assert kinds == ["schema", "batch", "batch", "batch"]
    batches = [v for k, v in inputs.read_parquet(str(good), ["text", "nope"]) if k == "batch"]
    assert batches[0].schema.names == ["text"]

    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really")
    assert [(k, v.reason) for k, v in inputs.read_parquet(str(junk))] == [("problem", "unreadable_file")]
    no_text = tmp_path / "no_text.parquet"
    pq.write_table(pa.table({"url": ["u"]}), no_text)
    out = list(inputs.iter_documents(str(no_text)))
    assert [(k, v.reason, v.missing) for k, v in out] == [("problem", "missing_columns", ("text",))]
    gone = list(inputs.read_parquet(str(tmp_path / "gone.parquet")))
    assert [(k, v.reason) for k, v in gone] == [("problem", "unreadable_file")]
    docs = [v for k, v in inputs.iter_documents(str(good))]
    assert [d[0] for d in docs] == [0, 1, 2, 3, 4] and docs[1][1] == "good-1" and docs[1][2].endswith("/1")


def test_a_truncated_file_keeps_what_was_read(tmp_path):
    big = tmp_path / "big.parquet"
    rows = [{"text": f"row {i} " + "x" * 200} for i in range(3000)]
    pq.write_table(pa.Table.from_pylist(rows), big, row_group_size=1000, compression="none")
    data = big.read_bytes()
    cut = tmp_path / "cut.parquet"
    # keep the footer (so the file opens) but spoil the last row group's bytes
    meta = pq.ParquetFile(big).metadata
    start = meta.row_group(2).column(0).data_page_offset
    cut.write_bytes(data[:start] + b"\x00" * (len(data) - start - 4 - 4 - meta.serialized_size)
                    + data[len(data) - 8 - meta.serialized_size:])
    out = list(inputs.iter_documents(str(cut), batch_rows=1000))
    assert out[-1][0] == "problem" and out[-1][1].reason == "corrupt_file" and out[-1][1].row == 2000
    assert [v[0] for k, v in out if k == "doc"] == list(range(2000))


# ------------------------------------------------------------------------------------ shards
def test_shard_of_is_refines_historic_function():
    hexid = "0123456789abcdef"
    assert writers.shard_of(hexid, 7) == int(hexid[:15], 16) % 7
    assert writers.shard_of("not-hex", 5) == int(doc_id_for("not-hex")[:15], 16) % 5
    assert writers.shard_of(None, 3) == writers.shard_of("", 3)
    from pipelines import refine

    assert refine.shard_of is writers.shard_of
    assert {writers.shard_of(doc_id_for(str(i)), 4) for i in range(100)} == {0, 1, 2, 3}


# ------------------------------------------------------------------------------------ dead letters
def test_every_stage_builds_the_same_dead_letter_shape(tmp_path):
    from pipelines import refine_io, tokenize
    from pipelines.records import dead_letter as extract_dead_letter

    no_text = tmp_path / "no_text.parquet"
    pq.write_table(pa.table({"url": ["u"], "doc_id": ["d"]}), no_text)
    keys = set(writers.DEAD_LETTER_KEYS)
    refine_rows = [v for k, v in refine_io.read_parquet_rows(str(no_text)) if k == "rejected"]
    tok_rows = [t.value[1] for t in tokenize.ReadDocsFn(seed=1, val_fraction=0.0, max_chars=100).process(str(no_text))]

    class Rec:  # the fields extract's records carry
        warc_file, offset, record_id, target_uri = "s3://cc/a.warc.gz", 1234, "<urn:uuid:1>", "https://x/"

    ex = writers.as_dead_letter(extract_dead_letter(Rec(), "extract", "internal_error", "boom"))
    assert set(refine_rows[0]) == set(tok_rows[0]) == set(ex) == keys
    assert refine_rows[0]["file"] == tok_rows[0]["file"] == str(no_text)
    assert (refine_rows[0]["stage"], refine_rows[0]["reason"]) == ("refine", "missing_columns")
    assert (tok_rows[0]["stage"], tok_rows[0]["reason"]) == ("tokenize", "missing_text_column")
    assert ex["file"] == ex["warc_file"] == "s3://cc/a.warc.gz" and ex["warc_offset"] == 1234 and ex["row"] is None
    assert writers.as_dead_letter({"file": "f", "row": 3, "url": "u", "stage": "refine", "reason": "r",
                                   "detail": "x" * 5000})["detail"] == "x" * writers.DETAIL_CHARS
    with pytest.raises(ValueError, match="unknown keys"):
        writers.as_dead_letter({"stage": "x", "reason": "y", "colour": "red"})


def test_the_dead_letter_file_is_the_same_for_any_record_order():
    recs = [writers.dead_letter("refine", r, "d", file=f, row=i, url="u")
            for i, (f, r) in enumerate([("b", "x"), ("a", "y"), ("a", "x"), (None, "z")])]
    one = writers.dead_letter_bytes(recs)
    assert one == writers.dead_letter_bytes(list(reversed(recs)))
    lines = [json.loads(line) for line in one.decode().splitlines()]
    assert [(r["file"], r["row"]) for r in lines] == [(None, 3), ("a", 1), ("a", 2), ("b", 0)]
    assert all(list(r) == sorted(r) for r in lines)


# ------------------------------------------------------------------------------------ staging
def stage_args(output: str, overwrite: bool = False) -> argparse.Namespace:
    return argparse.Namespace(output=output, overwrite=overwrite, break_lock=False)


PATTERNS = ("*.parquet", "dead-letter/*.jsonl", "summary.json")


def fake_job(n_files: int, crash_after: int | None = None, seen: list | None = None):
    def job(target):
        if seen is not None:
            seen.append(target)
        for i in range(n_files):
            if crash_after is not None and i == crash_after:
                raise RuntimeError("worker died")
            writers.write_bytes_atomic(writers.join(target, f"part-{i}.parquet"), f"data {i}".encode())
        writers.write_bytes_atomic(writers.join(target, "dead-letter/x.jsonl"), b"{}\n")
        writers.write_bytes_atomic(writers.join(target, ".leftover.tmp-1"), b"retried bundle")
        writers.write_json(writers.join(target, "summary.json"), {"stage": "fake", "files": n_files})
    return job


def final_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_staged_run_commits_only_at_the_end(tmp_path):
    out = tmp_path / "out"
    seen: list = []
    summary = outputs.run_stage(stage_args(str(out)), "fake", PATTERNS, fake_job(2, seen=seen))
    assert summary == {"stage": "fake", "files": 2}
    assert seen[0].startswith(str(out / outputs.STAGING_DIR)) and seen[0] != str(out)
    assert final_files(out) == ["_SUCCESS", "dead-letter/x.jsonl", "part-0.parquet", "part-1.parquet",
                                "summary.json"]
    assert json.loads((out / "_SUCCESS").read_text())["files"] == final_files(out)[1:]
    assert not (out / outputs.STAGING_DIR).exists()


def test_a_crash_mid_run_leaves_nothing_under_the_final_names(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="worker died"):
        outputs.run_stage(stage_args(str(out)), "fake", PATTERNS, fake_job(3, crash_after=2))
    assert final_files(out) == [outputs.LOCK_NAME]             # no part-0/1, no summary, no _SUCCESS
    assert json.loads((out / outputs.LOCK_NAME).read_text())["state"] == "failed"
    with pytest.raises(CliError, match="--overwrite"):
        outputs.run_stage(stage_args(str(out)), "fake", PATTERNS, fake_job(1))
    outputs.run_stage(stage_args(str(out), overwrite=True), "fake", PATTERNS, fake_job(1))
    assert final_files(out) == ["_SUCCESS", "dead-letter/x.jsonl", "part-0.parquet", "summary.json"]


def test_a_crash_keeps_the_earlier_complete_output_whole(tmp_path):
    out = tmp_path / "out"
    outputs.run_stage(stage_args(str(out)), "fake", PATTERNS, fake_job(3))
    before = {f: (out / f).read_bytes() for f in final_files(out)}
    with pytest.raises(RuntimeError):
        outputs.run_stage(stage_args(str(out), overwrite=True), "fake", PATTERNS, fake_job(2, crash_after=1))
    after = {f: (out / f).read_bytes() for f in final_files(out) if f != outputs.LOCK_NAME}
    assert after == before                                     # still complete, _SUCCESS included
    # the next --overwrite run replaces it whole: part-2 of the first run does not linger
    outputs.run_stage(stage_args(str(out), overwrite=True), "fake", PATTERNS, fake_job(1))
    assert final_files(out) == ["_SUCCESS", "dead-letter/x.jsonl", "part-0.parquet", "summary.json"]


def test_a_failure_during_the_commit_keeps_the_staged_files(tmp_path, monkeypatch):
    """Once the commit has removed the earlier output, the staged files are the only complete
    copy: a failing move must not delete them, and no _SUCCESS may appear."""
    from apache_beam.io.filesystems import FileSystems

    out = tmp_path / "out"
    outputs.run_stage(stage_args(str(out)), "fake", PATTERNS, fake_job(3))

    real_rename = FileSystems.rename

    def broken_rename(src, dst):   # atomic writes inside the job still work; the commit's move fails
        if any(outputs.STAGING_DIR not in d for d in dst) and any(outputs.STAGING_DIR in x for x in src):
            raise OSError("object store went away")
        return real_rename(src, dst)

    monkeypatch.setattr(FileSystems, "rename", staticmethod(broken_rename))
    with pytest.raises(OSError, match="went away"):
        outputs.run_stage(stage_args(str(out), overwrite=True), "fake", PATTERNS, fake_job(2))
    staged = [f for f in final_files(out) if f.startswith(outputs.STAGING_DIR + "/")]
    assert sorted(f.rsplit("/", 1)[-1] for f in staged if f.endswith(".parquet")) == ["part-0.parquet",
                                                                                      "part-1.parquet"]
    assert "_SUCCESS" not in final_files(out)
    assert json.loads((out / outputs.LOCK_NAME).read_text())["state"] == "failed"
    monkeypatch.undo()
    outputs.run_stage(stage_args(str(out), overwrite=True), "fake", PATTERNS, fake_job(1))
    assert final_files(out) == ["_SUCCESS", "dead-letter/x.jsonl", "part-0.parquet", "summary.json"]


def test_a_hard_killed_staged_run_is_cleaned_by_the_next_overwrite(tmp_path):
    out = tmp_path / "out"
    left = out / outputs.STAGING_DIR / "deadbeef" / "part-9.parquet"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"half")
    (out / outputs.LOCK_NAME).write_text(json.dumps({"stage": "fake", "state": "failed", "run_id": "deadbeef"}))
    outputs.run_stage(stage_args(str(out), overwrite=True), "fake", PATTERNS, fake_job(1))
    assert final_files(out) == ["_SUCCESS", "dead-letter/x.jsonl", "part-0.parquet", "summary.json"]


def test_refine_through_the_cli_crashes_without_final_outputs_then_reruns(tmp_path, monkeypatch, capsys):
    from pipelines import refine

    src = tmp_path / "src"
    write_docs(src / "a.parquet", n=4, text="The quick brown fox {i} jumps over the lazy dog near the river bank. ")
    (src / "b.parquet").write_bytes(b"not parquet")
    out = tmp_path / "ref"
    real_build = refine.build

    def crash(pipeline, paths, output, *a, **kw):
        assert outputs.STAGING_DIR in output
        (Path(output) / "part-00000-of-00004.parquet").write_bytes(b"half")
        raise RuntimeError("preempted")

    monkeypatch.setattr(refine, "build", crash)
    with pytest.raises(RuntimeError, match="preempted"):
        main(["refine", "--input", str(src), "--output", str(out)])
    assert final_files(out) == [outputs.LOCK_NAME]
    monkeypatch.setattr(refine, "build", real_build)
    capsys.readouterr()
    assert main(["refine", "--input", str(src), "--output", str(out), "--overwrite",
                 "--direct_num_workers=1", "--direct_running_mode=in_memory"]) == 0
    files = final_files(out)
    assert "_SUCCESS" in files and outputs.LOCK_NAME not in files
    assert not any(f.startswith(outputs.STAGING_DIR) for f in files)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rejected_by_reason"] == {"unreadable_file": 1}
    rejected = [json.loads(line) for f in sorted((out / "rejected").glob("*.jsonl"))
                for line in f.read_text().splitlines()]
    assert [(r["stage"], r["reason"], Path(r["file"]).name) for r in rejected] == [("refine", "unreadable_file",
                                                                                   "b.parquet")]
    assert set(rejected[0]) == set(writers.DEAD_LETTER_KEYS)


# ------------------------------------------------------------------------------------ S3 (moto)
@pytest.fixture
def s3_filesystems():
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from tests.servers import moto_s3_server, s3_test_client

    with moto_s3_server() as endpoint:
        client = s3_test_client(endpoint)
        client.create_bucket(Bucket="corpus")
        FileSystems.set_options(PipelineOptions([f"--s3_endpoint_url={endpoint}"]))
        try:
            yield client
        finally:
            FileSystems.set_options(PipelineOptions([]))


def keys(client, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="corpus", Prefix=prefix).get("Contents", []))


def test_staged_commit_and_crash_on_s3(s3_filesystems):
    client = s3_filesystems
    out = "s3://corpus/run/out"
    with pytest.raises(RuntimeError):
        outputs.run_stage(stage_args(out), "fake", PATTERNS, fake_job(3, crash_after=2))
    assert keys(client) == ["run/out/_RUNNING.json"]             # nothing staged or final is left
    outputs.run_stage(stage_args(out, overwrite=True), "fake", PATTERNS, fake_job(2))
    assert keys(client) == ["run/out/_SUCCESS", "run/out/dead-letter/x.jsonl", "run/out/part-0.parquet",
                            "run/out/part-1.parquet", "run/out/summary.json"]
    marker = json.loads(client.get_object(Bucket="corpus", Key="run/out/_SUCCESS")["Body"].read())
    assert marker == {"stage": "fake", "files": ["dead-letter/x.jsonl", "part-0.parquet", "part-1.parquet",
                                                 "summary.json"]}
    # the lister reads a committed S3 folder by the same rule
    assert inputs.list_inputs(out) == [f"{out}/part-0.parquet", f"{out}/part-1.parquet"]


def test_a_recursive_glob_skips_staged_and_not_kept_folders(tmp_path):
    # refine's output: kept parts at the top, removed/ and dead letters below, a crashed run's
    # staged files under _uncommitted/.  out/** must mean the kept documents only.
    out = tmp_path / "out"
    kept = write_docs(out / "part-00000-of-00001.parquet")
    write_docs(out / "removed" / "part-00000-of-00001.parquet")
    write_docs(out / "_uncommitted" / "run1" / "part-00000-of-00001.parquet")
    write_docs(out / ".cache" / "x.parquet")
    (out / "_SUCCESS").write_text(json.dumps({"stage": "refine", "files": [kept.name]}))
    # a plain folder of folders (no marker) is still crossed, like before
    plain = write_docs(tmp_path / "plain" / "2026" / "a.parquet")
    assert inputs.list_inputs(f"{out}/**.parquet") == [str(kept)]
    assert inputs.list_inputs(f"{tmp_path}/**.parquet") == [str(kept), str(plain)]
    # naming the folder before the glob reads it
    assert inputs.list_inputs(f"{out}/removed/*.parquet") == [str(out / "removed" / "part-00000-of-00001.parquet")]
    # relative patterns keep the same rule
    import os
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert inputs.list_inputs("out/**.parquet") == ["out/part-00000-of-00001.parquet"]
    finally:
        os.chdir(cwd)


def test_pipelines_all_lists_a_stage_folder_in_the_job_with_the_same_rule(tmp_path):
    # `pipelines all` resuming after extract lists extract's folder inside the job (the list can
    # be too large for the graph); it must skip and keep the same names as list_inputs.
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipelines.all_stages import matched_files

    d = tmp_path / "extracted"
    x, y = write_docs(d / "_x-0a1b2c3d-00000.parquet"), write_docs(d / "y.parquet")
    write_docs(d / "_stray.parquet")
    write_docs(d / ".y.parquet.tmp-1.parquet")
    (d / "_SUCCESS").write_text(json.dumps({"stage": "extract", "files": [x.name, y.name]}))
    expected = inputs.list_inputs(str(d))
    assert expected == [str(x), str(y)]
    with TestPipeline() as p:
        assert_that(matched_files(p, "T", f"{d}/*.parquet") | beam.Map(str), equal_to(expected))


@pytest.mark.parametrize("pattern, expected", [
    ("./*.parquet", ["./a.parquet"]),
    ("./**.parquet", ["./a.parquet", "./sub/b.parquet"]),
    ("./*/*.parquet", ["./sub/b.parquet"]),
])
def test_relative_globs_with_dot_segments_still_match(tmp_path, monkeypatch, pattern, expected):
    write_docs(tmp_path / "a.parquet")
    write_docs(tmp_path / "sub" / "b.parquet")
    monkeypatch.chdir(tmp_path)
    assert inputs.list_inputs(pattern) == expected
