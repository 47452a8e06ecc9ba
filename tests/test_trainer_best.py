"""Keep-best and early stopping: best.pt is the minimum val loss of metrics.jsonl, early stopping
ends the run after `patience` evals without a new best, and eval/sample read best.pt."""
import json
import random

import numpy as np
import pytest
import torch

from tests.test_trainer_e2e import TINY, build_shards
from trainer import checkpoint
from trainer.__main__ import main as cli
from trainer.data import eval_windows
from trainer.eval import nll_sum
from trainer.train import TrainConfig, train

TOKENIZER = {"vocab_size": 97, "eot_id": 96, "eot_token": "<|endoftext|>", "sha256": "t" * 64}


def cfg(**kw):
    base = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, grad_accum=1,
                max_steps=24, lr=1e-2, min_lr=1e-3, warmup_steps=2, eval_interval=2, eval_windows=8,
                log_interval=2, ckpt_interval=100, vocab_multiple=8, threads=1, keep_best=True)
    base.update(kw)
    return TrainConfig(**base)


def data():
    # train on one repeated pattern, validate on another: val loss first falls (token
    # frequencies) then rises as the model memorises the training pattern
    rng = np.random.default_rng(3)
    train_arr = np.tile(rng.integers(0, 96, 40), 50).astype(np.uint16)
    val_arr = np.tile(rng.integers(0, 96, 40), 4).astype(np.uint16)
    return [train_arr], [val_arr]


def evals(run):
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(ln)["type"] == "eval"]


def test_best_checkpoint_is_the_minimum_val_loss_of_the_log(tmp_path):
    tr, va = data()
    c = cfg()
    s = train(c, tmp_path, tr, va, TOKENIZER, progress=False)
    ev = evals(tmp_path)
    assert len(ev) == 12
    losses = [r["val_loss"] for r in ev]
    i = int(np.argmin(losses))
    best = checkpoint.load(tmp_path / checkpoint.BEST_NAME)
    assert best["step"] == ev[i]["step"] == s["best_step"]
    assert best["val"]["val_loss"] == pytest.approx(min(losses)) == s["best_val_loss"]
    assert s["first_val_loss"] == losses[0] and not s["early_stopped"]
    # the weights in best.pt really give that loss, and are not the last step's weights
    model, meta = checkpoint.load_model(tmp_path)
    assert meta["path"].endswith("best.pt")
    total, count = nll_sum(model, eval_windows(va, c.block_size, c.eval_windows), 16, "cpu")
    assert total / count == pytest.approx(min(losses), rel=1e-5)
    if ev[i]["step"] != ev[-1]["step"]:
        last = checkpoint.load(tmp_path / checkpoint.CKPT_NAME)
        assert any(not torch.equal(v, last["model"][k]) for k, v in best["model"].items())


def test_early_stop_after_patience_evals_without_a_new_best(tmp_path):
    tr, va = data()
    # min_delta so large that only the first eval counts as a best: the stop step is known
    c = cfg(early_stop_patience=3, early_stop_min_delta=100.0)
    s = train(c, tmp_path, tr, va, TOKENIZER, progress=False)
    assert [r["step"] for r in evals(tmp_path)] == [2, 4, 6, 8]
    assert s["step"] == 8 and s["early_stopped"] and s["finished"] and s["best_step"] == 2
    assert checkpoint.load(tmp_path)["step"] == 8          # ckpt.pt written where it stopped
    assert checkpoint.load(tmp_path / checkpoint.BEST_NAME)["step"] == 2
    # resuming a run that stopped early does not train further
    again = train(c, tmp_path, tr, va, TOKENIZER, progress=False, resume=True)
    assert again["step"] == 8 and checkpoint.load(tmp_path)["step"] == 8
    assert len(evals(tmp_path)) == 4


def test_patience_survives_stop_and_resume(tmp_path):
    tr, va = data()
    c = cfg(early_stop_patience=3, early_stop_min_delta=100.0)
    part = train(c, tmp_path, tr, va, TOKENIZER, progress=False, stop_after=5)
    assert part["step"] == 5 and not part["early_stopped"]
    s = train(c, tmp_path, tr, va, TOKENIZER, progress=False, resume=True)
    assert s["step"] == 8 and s["early_stopped"]


def test_fresh_run_removes_a_stale_best_and_keep_best_off_writes_none(tmp_path):
    tr, va = data()
    train(cfg(max_steps=4), tmp_path, tr, va, TOKENIZER, progress=False)
    assert (tmp_path / checkpoint.BEST_NAME).is_file()
    s = train(cfg(max_steps=4, keep_best=False), tmp_path, tr, va, TOKENIZER, progress=False,
              overwrite=True)
    assert not (tmp_path / checkpoint.BEST_NAME).exists() and s["best_checkpoint"] is None
    assert checkpoint.model_file(tmp_path).name == checkpoint.CKPT_NAME


def test_config_rejects_negative_patience():
    with pytest.raises(ValueError, match="early_stop_patience"):
        TrainConfig(early_stop_patience=-1)


def test_sample_and_eval_cli_use_the_best_checkpoint(tmp_path, capsys):
    rnd = random.Random(7)
    words = ["Haus", "Baum", "river", "stone", "über", "Straße", "light", "night", "Feld", "wind"]
    text = "\n\n".join(" ".join(rnd.choice(words) for _ in range(40)) for _ in range(60))
    shards = build_shards(tmp_path / "shards", text, vocab=300)
    run = tmp_path / "run"
    rc = cli(["train", "--data", str(shards), "--config", str(TINY), "--out", str(run), "--no-progress",
              "n_layer=1", "n_head=2",
              "n_embd=32", "block_size=32", "batch_size=4", "max_steps=12", "eval_interval=3",
              "warmup_steps=2", "vocab_multiple=1", "threads=1", "keep_best=true", "lr=3e-2",
              "min_lr=3e-3", "eval_windows=8"])
    assert rc == 0
    summary = json.loads((run / "summary.json").read_text())
    capsys.readouterr()
    assert cli(["sample", "--ckpt", str(run), "--prompt", "Haus", "--max-new-tokens", "5", "--seed", "1"]) == 0
    out = capsys.readouterr()
    assert f"sampling from {run / 'best.pt'}" in out.err
    assert cli(["sample", "--ckpt", str(run / "best.pt"), "--prompt", "Haus", "--max-new-tokens", "5",
                "--seed", "1"]) == 0
    assert capsys.readouterr().out == out.out
    assert cli(["eval", "--ckpt", str(run), "--data", str(shards), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == summary["best_step"]
