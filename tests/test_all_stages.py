"""``python -m pipelines all`` and its completion manifest: skip when done, redo after a failure.

The end-to-end runs read the bundled sample WARC through a miniature Common Crawl layout served
on 127.0.0.1 and write to a local directory or to moto's S3 server.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipelines import completion
from pipelines.cli import main
from tests.servers import FileServer, make_cc_layout, moto_s3_server, s3_test_client

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "sample.warc.gz"
LATEST = "CC-MAIN-2031-07"
OLDER = ["CC-MAIN-2024-22", "CC-MAIN-2019-04"]
ONE_WORKER = "--direct_num_workers=1"


# ---------------------------------------------------------------------------------------- pure logic
def test_stage_lists_must_be_known_contiguous_and_ordered():
    assert completion.parse_stages("extract,refine,tokenize") == ["extract", "refine", "tokenize"]
    assert completion.parse_stages(" refine , tokenize ") == ["refine", "tokenize"]
    assert completion.parse_stages(["extract"]) == ["extract"]
    for bad, words in [("extract,tokenize", "contiguous"), ("refine,extract", "order"), ("dedupe", "dedupe"),
                       ("extract,extract", "twice"), ("", "empty")]:
        with pytest.raises(ValueError, match=words):
            completion.parse_stages(bad)


def test_config_hash_follows_config_and_parameters():
    cfg = {"tokenize": {"seed": 0}}
    params = {"max_warcs": 5, "source": "s3", "stages": ["extract"], "tokenizer": None}
    h = completion.run_config_hash(cfg, params)
    assert h == completion.run_config_hash({"tokenize": {"seed": 0}}, dict(reversed(params.items())))
    assert h != completion.run_config_hash({"tokenize": {"seed": 1}}, params)
    assert h != completion.run_config_hash(cfg, {**params, "max_warcs": 6})
    assert h != completion.run_config_hash(cfg, {**params, "source": "https"})


def test_is_complete_needs_the_same_snapshot_and_hash(tmp_path):
    out = str(tmp_path)
    assert not completion.is_complete(out, "CC-MAIN-2024-22", "h1")
    manifest = completion.build_manifest(snapshot="CC-MAIN-2024-22", config_hash="h1", input_warcs=["a"],
                                         stages=["extract"], stage_summaries={"extract": {"kept": 3}},
                                         files=["b", "a"], params={})
    path = completion.write_completion(out, "CC-MAIN-2024-22", manifest)
    assert Path(path) == tmp_path / "CC-MAIN-2024-22" / "_COMPLETE.json"
    assert [p.name for p in (tmp_path / "CC-MAIN-2024-22").iterdir()] == ["_COMPLETE.json"]  # no temp file left
    assert json.loads(Path(path).read_text())["files"] == ["a", "b"]
    assert completion.is_complete(out, "CC-MAIN-2024-22", "h1")
    assert not completion.is_complete(out, "CC-MAIN-2024-22", "h2")
    assert not completion.is_complete(out, "CC-MAIN-2024-26", "h1")
    with pytest.raises(ValueError, match="CC-MAIN-2024-22"):
        completion.write_completion(out, "CC-MAIN-2024-26", manifest)
    Path(path).write_text("{not json")  # a torn or hand-edited manifest means "not done"
    assert not completion.is_complete(out, "CC-MAIN-2024-22", "h1")
    assert completion.clear_completion(out, "CC-MAIN-2024-22") and not Path(path).exists()
    assert not completion.clear_completion(out, "CC-MAIN-2024-22")


def test_output_listing_is_recursive_and_leaves_out_manifest_and_temporaries(tmp_path):
    for rel in ["extracted/a.parquet", "extracted/dead-letter/a.jsonl", "shards/manifest.json",
                "_COMPLETE.json", "shards/.x.bin.tmp-0123456789ab"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert completion.list_output_files(str(tmp_path)) == [
        "extracted/a.parquet", "extracted/dead-letter/a.jsonl", "shards/manifest.json"]


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["all", "--snapshot", "latest", "--output", str(tmp_path), "--stages", "extract,tokenize"]) == 2
    assert "--stages" in capsys.readouterr().err
    assert main(["all", "--snapshot", "latest", "--output", str(tmp_path)]) == 2
    assert "--tokenizer" in capsys.readouterr().err
    assert main(["all", "--snapshot", "latest", "--output", str(tmp_path), "--stages", "extract",
                 "--max-warcs", "0"]) == 2
    assert "--max-warcs" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def cc_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("cc")
    make_cc_layout(root, LATEST, [SAMPLE], extra_collinfo_ids=OLDER)
    with FileServer(root) as server:
        yield server


def write_config(path: Path, server: FileServer, **tokenize) -> Path:
    cfg = {"sources": {"https_base": server.url, "collinfo_url": server.url + "collinfo.json",
                       "backoff_base_s": 0.01, "backoff_max_s": 0.05},
           "tokenize": {"val_fraction": 0.2, "train": {"vocab_size": 300, "sample_docs": None}, **tokenize}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def count_pipelines(monkeypatch, fail: str | None = None) -> list:
    """Counts the Beam pipelines ``all`` builds; with ``fail``, building one raises instead."""
    import pipelines.runner

    made = []
    real = pipelines.runner.new_pipeline

    def counting(*a, **k):
        if fail:
            raise RuntimeError(fail)
        made.append(a)
        return real(*a, **k)
    monkeypatch.setattr(pipelines.runner, "new_pipeline", counting)
    return made


def manifest_of(out: Path, snapshot: str = LATEST) -> dict:
    return json.loads((out / snapshot / "_COMPLETE.json").read_text())


def test_local_run_is_one_job_completes_once_skips_then_redoes_after_a_failure(cc_server, tmp_path, monkeypatch,
                                                                                capsys):
    out = tmp_path / "out"
    config = write_config(tmp_path / "cfg.yaml", cc_server)
    argv = ["all", "--snapshot", "latest", "--source", "https", "--output", str(out), "--config", str(config),
            "--tokenizer", "train", ONE_WORKER]
    with monkeypatch.context() as mp:
        made = count_pipelines(mp)
        assert main(argv) == 0
    assert len(made) == 1  # extract, refine, tokenizer training and tokenize in one job
    root = out / LATEST
    m = manifest_of(out)
    extract_summary = json.loads((root / "extracted" / "summary.json").read_text())
    refine_summary = json.loads((root / "refined" / "summary.json").read_text())
    shards = json.loads((root / "shards" / "manifest.json").read_text())
    assert m["snapshot"] == LATEST and m["stages"] == ["extract", "refine", "tokenize"]
    assert m["input_warcs"] == [cc_server.url + f"crawl-data/{LATEST}/segments/1700000000000.00/warc/sample.warc.gz"]
    assert m["counts"]["extract"]["kept"] == extract_summary["kept"] > 0
    assert m["counts"]["refine"]["kept"] == refine_summary["kept"] > 0
    # Refine read exactly the files extract wrote in the same job.
    assert refine_summary["input_files"] == len(extract_summary["outputs"]["documents"]) == \
        len(list((root / "extracted").glob("*.parquet")))
    assert refine_summary["documents_in"] == extract_summary["kept"]
    kept_rows = sum(pq.read_metadata(p).num_rows for p in (root / "refined").glob("*.parquet"))
    assert sum(s["documents"] for s in shards["shards"]) == kept_rows == refine_summary["kept"]
    assert m["counts"]["tokenize"]["tokens"]["train"] == shards["splits"]["train"]["tokens"] > 0
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert m["files"] == [f for f in on_disk if f != "_COMPLETE.json"]
    assert "tokenizer.json" in m["files"] and "shards/manifest.json" in m["files"]
    # The tokenizer trained in the job is the one the shards were encoded with.
    trained = (root / "tokenizer.json").read_bytes()
    assert json.loads(trained)["model"]["type"] == "BPE"
    assert (root / "shards" / "tokenizer.json").read_bytes() == trained
    first_shards = {p.name: p.read_bytes() for p in (root / "shards").glob("train-*")}
    out_text = capsys.readouterr().out
    assert "refine:" in out_text and "tokenize:" in out_text  # each stage's summary is printed

    # Same snapshot, same config: exits early, no job is built.
    with monkeypatch.context() as mp:
        count_pipelines(mp, fail="a completed snapshot must not be processed again")
        assert main(argv) == 0
    assert "already complete" in capsys.readouterr().out
    assert manifest_of(out) == m

    # Another config: the old manifest goes first.  The job then fails in its last stage (a file
    # where the shards' staging directory must go): no manifest, earlier stages' outputs remain.
    config2 = write_config(tmp_path / "cfg2.yaml", cc_server, seed=5)
    argv2 = [a if a != str(config) else str(config2) for a in argv]
    blocker = root / "shards" / "_staging"
    blocker.write_text("not a directory")
    with pytest.raises(Exception, match="_staging"):  # noqa: B017 - whatever the runner wraps it in
        main(argv2)
    assert not (root / "_COMPLETE.json").exists()
    assert (root / "extracted" / "summary.json").exists()
    assert not (root / "shards" / "manifest.json").exists()

    blocker.unlink()
    assert main(argv2) == 0
    m2 = manifest_of(out)
    assert m2["config_hash"] != m["config_hash"]
    assert m2["counts"]["extract"] == m["counts"]["extract"]
    # A new seed reorders documents inside the shards; the totals stay.
    assert m2["counts"]["tokenize"]["tokens"] != {} and \
        sum(m2["counts"]["tokenize"]["tokens"].values()) == sum(m["counts"]["tokenize"]["tokens"].values())
    assert {p.name: p.read_bytes() for p in (root / "shards").glob("train-*")} != first_shards


def test_later_stages_alone_read_what_the_earlier_run_left(cc_server, tmp_path):
    out = tmp_path / "out"
    config = write_config(tmp_path / "cfg.yaml", cc_server)
    base = ["all", "--snapshot", LATEST, "--output", str(out), "--config", str(config), ONE_WORKER]
    assert main(base + ["--stages", "extract"]) == 0
    tok = tmp_path / "tok.json"
    from tokenization.tokenizer import train_bpe
    tok.write_text(train_bpe(["some words to learn a few merges from", "more words"], 300).to_str())
    assert main(base + ["--stages", "refine,tokenize", "--tokenizer", str(tok)]) == 0
    root = out / LATEST
    m = manifest_of(out)
    assert m["stages"] == ["refine", "tokenize"] and set(m["counts"]) == {"refine", "tokenize"}
    refine_summary = json.loads((root / "refined" / "summary.json").read_text())
    assert refine_summary["input_files"] == len(list((root / "extracted").glob("*.parquet")))
    shards = json.loads((root / "shards" / "manifest.json").read_text())
    assert shards["tokenizer"]["source"] == "tok.json"
    assert (root / "shards" / "tokenizer.json").read_text() == tok.read_text()
    assert sum(s["documents"] for s in shards["shards"]) == refine_summary["kept"] > 0


def test_s3_output_skips_when_complete_and_recovers_from_a_failed_run(cc_server, tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path / "cfg.yaml", cc_server)
    with moto_s3_server() as endpoint:
        s3 = s3_test_client(endpoint)
        s3.create_bucket(Bucket="corpus")
        argv = ["all", "--snapshot", LATEST, "--output", "s3://corpus/cc", "--config", str(config),
                "--stages", "extract", ONE_WORKER, f"--s3_endpoint_url={endpoint}"]
        key = f"cc/{LATEST}/_COMPLETE.json"

        def manifest():
            return json.loads(s3.get_object(Bucket="corpus", Key=key)["Body"].read())

        assert main(argv) == 0
        m = manifest()
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="corpus")["Contents"])
        assert m["files"] == [k[len(f"cc/{LATEST}/"):] for k in keys if k != key]
        assert any(f.startswith("extracted/") and f.endswith(".parquet") for f in m["files"])
        assert m["counts"]["extract"]["kept"] > 0
        capsys.readouterr()

        with monkeypatch.context() as mp:
            count_pipelines(mp, fail="a completed snapshot must not be processed again")
            assert main(argv) == 0
        assert "already complete" in capsys.readouterr().out

        # --force: the manifest goes before the job starts; a job that never finishes leaves none.
        with monkeypatch.context() as mp:
            count_pipelines(mp, fail="preempted")
            with pytest.raises(RuntimeError, match="preempted"):
                main(argv + ["--force"])
        assert "Contents" not in s3.list_objects_v2(Bucket="corpus", Prefix=key)

        assert main(argv) == 0
        assert manifest()["config_hash"] == m["config_hash"] and manifest()["files"] == m["files"]
