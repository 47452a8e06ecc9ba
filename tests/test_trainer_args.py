"""Trainer arguments and config values (issue 11, items 10 and 15): a bad one is a one-line error
with exit status 2 before any data is read -- never a traceback, never silently accepted."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainer import __main__ as cli
from trainer import train as train_mod
from trainer.sample import check_sampling_args
from trainer.train import TrainConfig, load_config

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs/train/tiny.yaml"


def one_line_error(stderr: str, *needles: str) -> str:
    assert "Traceback" not in stderr, stderr
    last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1]
    assert "error" in last, stderr
    for needle in needles:
        assert needle in last, (needle, stderr)
    return last


def run_cli(argv, capsys) -> tuple[int, str]:
    """main(argv) as the entry point runs it: argparse errors are SystemExit(2)."""
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


@pytest.fixture
def no_training(monkeypatch):
    """Records what train_from_shards would have been asked to do, and fails if it runs for a bad value."""
    calls = []
    monkeypatch.setattr(train_mod, "train_from_shards", lambda data, cfg, out, **kw: calls.append((cfg, kw)))
    return calls


# ---- config values ---------------------------------------------------------------------------------
BAD_OVERRIDES = [
    ("seed=-1", "seed"),
    ("batch_size=1e8", "batch_size"),
    ("eval_batch_size=100000000", "eval_batch_size"),
    ("device=tpu", "device"),
    ("weight_decay=-5", "weight_decay"),
    ("warmup_steps=-10", "warmup_steps"),
    ("threads=-3", "threads"),
    ("lr=nan", "lr"),
    ("grad_clip=-inf", "grad_clip"),
    ("max_steps=inf", "max_steps"),
    ("beta2=1", "beta2"),
    ("dtype=fp8", "dtype"),
    ("n_head=3", "n_head"),          # 128 is not divisible by 3
    ("eval_windows=0", "eval_windows"),
]


@pytest.mark.parametrize("override,key", BAD_OVERRIDES, ids=[o for o, _ in BAD_OVERRIDES])
def test_a_bad_config_value_is_exit_2_naming_the_key(override, key, tmp_path, capsys, no_training):
    # --data does not exist: an error about the key proves it came before any data was read
    rc, err = run_cli(["train", "--data", tmp_path / "no-shards", "--config", TINY, "--out", tmp_path / "run",
                       override], capsys)
    assert rc == 2 and not no_training
    one_line_error(err, key)


def test_typed_values_in_yaml_are_checked_too(tmp_path):
    cfg = tmp_path / "c.yaml"
    for text, key in (("batch_size: 1.0e+8\n", "batch_size"), ("n_layer: true\n", "n_layer"),
                      ("device: [cpu]\n", "device"), ("lr: .nan\n", "lr"), ("compile: 1\n", "compile")):
        cfg.write_text(text)
        with pytest.raises(ValueError, match=key):
            load_config(cfg)


def test_the_dataclass_refuses_bad_values_made_in_code():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1e8)
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=-1)
    with pytest.raises(ValueError, match="dropout"):
        TrainConfig(dropout=1.0)
    assert TrainConfig(seed=0, threads=0, warmup_steps=0, weight_decay=0.0, lr=1).lr == 1


def test_cuda_without_cuda_is_exit_2(tmp_path, capsys, monkeypatch, no_training):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, err = run_cli(["train", "--data", tmp_path / "d", "--config", TINY, "--out", tmp_path / "run",
                       "device=cuda"], capsys)
    assert rc == 2 and not no_training
    one_line_error(err, "device=cuda", "CUDA")


# ---- overrides anywhere ------------------------------------------------------------------------------
def test_overrides_may_stand_among_the_flags(tmp_path, capsys, no_training):
    rc, err = run_cli(["train", "--data", tmp_path / "d", "max_steps=3", "--config", TINY, "lr=2e-3",
                       "--out", tmp_path / "run", "n_layer=2", "--no-progress", "seed=7"], capsys)
    assert rc == 0, err
    (cfg, kw), = no_training
    assert (cfg.max_steps, cfg.lr, cfg.n_layer, cfg.seed) == (3, 2e-3, 2, 7)
    assert kw["progress"] is False


def test_an_unknown_flag_is_still_refused(tmp_path, capsys, no_training):
    rc, err = run_cli(["train", "--data", tmp_path / "d", "--config", TINY, "--out", tmp_path / "run",
                       "max_steps=3", "--bogus"], capsys)
    assert rc == 2 and not no_training
    one_line_error(err, "--bogus")


# ---- --out ---------------------------------------------------------------------------------------------
def test_train_refuses_an_out_that_is_a_file_before_reading_data(tmp_path, capsys, no_training):
    out = tmp_path / "ckpt.pt"
    out.write_bytes(b"x")
    rc, err = run_cli(["train", "--data", tmp_path / "no-shards", "--config", TINY, "--out", out], capsys)
    assert rc == 2 and not no_training
    one_line_error(err, "--out", str(out), "existing file")
    rc, err = run_cli(["train", "--data", tmp_path / "no-shards", "--config", TINY, "--out", out / "run"],
                      capsys)
    assert rc == 2
    one_line_error(err, "--out", "not a directory")


def test_export_refuses_an_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "hf"
    out.write_bytes(b"x")
    rc, err = run_cli(["export", "--ckpt", tmp_path / "no-run", "--out", out], capsys)
    assert rc == 2
    one_line_error(err, "--out", "existing file")


# ---- sample / eval arguments ---------------------------------------------------------------------------
BAD_SAMPLE_ARGS = [
    (["--top-p", "2"], "--top-p"), (["--top-p", "0"], "--top-p"), (["--top-k", "-5"], "--top-k"),
    (["--temperature", "nan"], "--temperature"), (["--temperature", "-1"], "--temperature"),
    (["--max-new-tokens", "-1"], "--max-new-tokens"), (["--num-samples", "0"], "--num-samples"),
    (["--seed", "-1"], "--seed"), (["--device", "tpu"], "--device"),
]


@pytest.mark.parametrize("args,flag", BAD_SAMPLE_ARGS, ids=[" ".join(a) for a, _ in BAD_SAMPLE_ARGS])
def test_bad_sample_arguments_are_exit_2_naming_the_flag(args, flag, tmp_path, capsys):
    rc, err = run_cli(["sample", "--ckpt", tmp_path / "no-run", *args], capsys)
    assert rc == 2
    one_line_error(err, flag)


@pytest.mark.parametrize("args,flag", [(["--batch-size", "0"], "--batch-size"),
                                       (["--max-windows", "-2"], "--max-windows"),
                                       (["--device", "tpu"], "--device")])
def test_bad_eval_arguments_are_exit_2_naming_the_flag(args, flag, tmp_path, capsys):
    rc, err = run_cli(["eval", "--ckpt", tmp_path / "no-run", "--data", tmp_path / "d", *args], capsys)
    assert rc == 2
    one_line_error(err, flag)


def test_the_sampling_api_checks_its_arguments():
    check_sampling_args(10, 0.0, None, None)
    check_sampling_args(10, 0.8, 0, 1.0)
    for bad in ((10, math.nan, None, None), (10, 1.0, -5, None), (10, 1.0, None, 2.0), (-1, 1.0, None, None)):
        with pytest.raises(ValueError):
            check_sampling_args(*bad)
