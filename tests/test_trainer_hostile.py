"""Hostile runs of the trainer CLI: out-of-vocabulary token ids, an earlier run in --out, a torn
metrics log, temporaries of a killed write, truncated or garbage checkpoints.  Each must end in
exit status 2 with a one-line error naming the file (or be tolerated, where that is the promise)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_tokenize_hostile import make_shards
from trainer import checkpoint
from trainer.__main__ import main as cli
from tokenization.tokenizer import train_bpe, vocab_size

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs" / "train" / "tiny.yaml"
FAST = ["n_layer=1", "n_head=1", "n_embd=16", "block_size=8", "batch_size=2", "max_steps=4",
        "warmup_steps=1", "eval_interval=2", "eval_windows=2", "eval_batch_size=2", "log_interval=1",
        "ckpt_interval=1", "vocab_multiple=64", "threads=1", "device=cpu"]


@pytest.fixture(scope="module")
def tok():
    return train_bpe(["the cat sat on the mat and the dog ran to the park " * 20], 300)


def _docs(V, n, seed, top=None):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, V if top is None else top, 40).tolist() for _ in range(n)]


@pytest.fixture(scope="module")
def shards(tok, tmp_path_factory):
    V = vocab_size(tok)
    return make_shards(tmp_path_factory.mktemp("shards"), tok, {"train": _docs(V, 8, 0), "val": _docs(V, 2, 1)})


@pytest.fixture(scope="module")
def run(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert cli(["train", "--data", str(shards), "--config", str(TINY), "--out", str(out), "--no-progress",
                *FAST, "--stop-after", "2"]) == 0
    return out


def _copy(run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def _one_line_error(capsys, *names) -> str:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("error") or "Traceback" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _steps(run_dir, kind="train"):
    return [json.loads(ln)["step"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(ln)["type"] == kind]


# ---- item 12: token ids the model has no row for -----------------------------------------------
@pytest.mark.parametrize("record_max", [True, False], ids=["manifest-max", "old-manifest-scanned"])
@pytest.mark.parametrize("beyond", [0, 40], ids=["in-padding", "past-padding"])
def test_train_refuses_ids_outside_the_vocabulary(tok, tmp_path, capsys, record_max, beyond):
    V = vocab_size(tok)  # padded to a multiple of 64: ids in [V, padded) used to train silently
    bad_id = V + 1 + beyond
    docs = _docs(V, 8, 0)
    docs[5][7] = bad_id
    data = make_shards(tmp_path / "shards", tok, {"train": docs, "val": _docs(V, 2, 1)}, record_max=record_max)
    rc = cli(["train", "--data", str(data), "--config", str(TINY), "--out", str(tmp_path / "r"),
              "--no-progress", *FAST])
    assert rc == 2
    _one_line_error(capsys, str(data / "train-00000.bin"), f"token id {bad_id}")
    assert not (tmp_path / "r" / "ckpt.pt").exists()


# ---- item 13: an earlier run in --out ---------------------------------------------------------
def test_train_into_an_existing_run_needs_resume_or_overwrite(run, shards, tmp_path, capsys):
    r = _copy(run, tmp_path)
    ckpt, metrics = (r / "ckpt.pt").read_bytes(), (r / "metrics.jsonl").read_bytes()
    base = ["train", "--data", str(shards), "--config", str(TINY), "--out", str(r), "--no-progress", *FAST]
    assert cli(base) == 2
    line = _one_line_error(capsys, str(r), "--resume", "--overwrite")
    assert "ckpt.pt" in line
    assert (r / "ckpt.pt").read_bytes() == ckpt and (r / "metrics.jsonl").read_bytes() == metrics
    assert cli(base + ["--resume", "--overwrite"]) == 2
    _one_line_error(capsys, "--resume", "--overwrite")
    assert cli(base + ["--overwrite", "max_steps=1"]) == 0
    assert checkpoint.load(r)["step"] == 1 and _steps(r) == [1]


def test_an_empty_or_new_directory_needs_no_flag(shards, tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new"):
        assert cli(["train", "--data", str(shards), "--config", str(TINY), "--out", str(out), "--no-progress",
                    *FAST, "max_steps=1"]) == 0


# ---- item 14: torn metrics, temporaries of a killed write -----------------------------------------
def test_resume_drops_a_torn_last_metrics_line_and_stale_temporaries(run, shards, tmp_path, capsys):
    r = _copy(run, tmp_path)
    with (r / "metrics.jsonl").open("a") as f:
        f.write('{"type": "train", "step": 3, "loss": 4.1')  # killed mid-write
    stale = [r / ".ckpt.pt.k3j_9x2a.tmp", r / ".summary.json.abcdefgh.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    keep = r / "notes.tmp"
    keep.write_text("not ours")
    assert cli(["train", "--data", str(shards), "--out", str(r), "--resume", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "metrics.jsonl" in err and "torn" in err
    assert _steps(r) == [1, 2, 3, 4]
    assert not any(p.exists() for p in stale) and keep.exists()


def test_a_damaged_line_inside_the_metrics_log_is_an_error_naming_it(run, shards, tmp_path, capsys):
    r = _copy(run, tmp_path)
    lines = (r / "metrics.jsonl").read_text().splitlines()
    lines.insert(1, '{"type": "tra')
    (r / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = (r / "metrics.jsonl").read_bytes()
    assert cli(["train", "--data", str(shards), "--out", str(r), "--resume", "--no-progress"]) == 2
    _one_line_error(capsys, f"{r / 'metrics.jsonl'}:2")
    assert (r / "metrics.jsonl").read_bytes() == before
    assert checkpoint.load(r)["step"] == 2


# ---- item 15 (part): truncated or garbage checkpoints ----------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_checkpoint_is_a_one_line_error_everywhere(run, shards, tmp_path, capsys, damage):
    r = _copy(run, tmp_path)
    ckpt, best = r / "ckpt.pt", r / checkpoint.BEST_NAME
    # eval/sample/export of a run directory read best.pt when the run kept one, else ckpt.pt;
    # train --resume always reads ckpt.pt.  Damage every checkpoint file the run has.
    read_by_run_dir = best if best.exists() else ckpt
    for f in {ckpt, read_by_run_dir}:
        data = f.read_bytes()
        f.write_bytes({"truncated": data[:len(data) // 2], "garbage": b"\x80\x02not a checkpoint" * 50,
                       "empty": b""}[damage])
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat")
    for argv, named in ((["train", "--data", str(shards), "--out", str(r), "--resume", "--no-progress"], ckpt),
                        (["eval", "--ckpt", str(r), "--data", str(shards), "--device", "cpu"], read_by_run_dir),
                        (["eval", "--ckpt", str(ckpt), "--text", str(text), "--device", "cpu"], ckpt),
                        (["sample", "--ckpt", str(r), "--max-new-tokens", "2", "--device", "cpu"], read_by_run_dir),
                        (["export", "--ckpt", str(r), "--out", str(tmp_path / "hf")], read_by_run_dir)):
        assert cli(argv) == 2, argv
        _one_line_error(capsys, str(named))
