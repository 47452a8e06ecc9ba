"""Training loop pieces: config, LR schedule, optimiser groups, checkpoints and exact resume."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import checkpoint
from trainer.model import GPT
from trainer.train import TrainConfig, load_config, lr_at, make_optimizer, train

REPO = Path(__file__).resolve().parent.parent
TOKENIZER = {"vocab_size": 97, "eot_id": 96, "eot_token": "<|endoftext|>", "sha256": "t" * 64}


def small_cfg(**kw):
    base = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, grad_accum=2,
                max_steps=8, lr=3e-3, min_lr=3e-4, warmup_steps=2, eval_interval=4, eval_windows=8,
                log_interval=1, ckpt_interval=100, vocab_multiple=8, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    # a repetitive sequence so the model has something to learn
    pattern = rng.integers(0, 96, 50)
    train_arr = np.tile(pattern, 60).astype(np.uint16)
    train_arr[rng.integers(0, len(train_arr), 200)] = 96
    return [train_arr[:1700], train_arr[1700:]], [np.tile(pattern, 4).astype(np.uint16)]


def records(run, kind="train"):
    return [json.loads(ln) for ln in (Path(run) / "metrics.jsonl").read_text().splitlines()
            if json.loads(ln)["type"] == kind]


# ---- config --------------------------------------------------------------------------------------
def test_config_files_load_and_overrides_are_typed(tmp_path):
    tiny = load_config(REPO / "configs/train/tiny.yaml")
    gpt2 = load_config(REPO / "configs/train/gpt2-124m.yaml")
    assert (gpt2.n_layer, gpt2.n_head, gpt2.n_embd, gpt2.block_size) == (12, 12, 768, 1024)
    assert isinstance(gpt2.lr, float) and gpt2.compile
    assert tiny.n_layer < gpt2.n_layer
    cfg = load_config(REPO / "configs/train/tiny.yaml", ["lr=1e-3", "n_layer=3", "compile=true",
                                                         "max_steps=2e3"])
    assert cfg.lr == 1e-3 and cfg.n_layer == 3 and cfg.compile is True and cfg.max_steps == 2000
    with pytest.raises(ValueError, match="unknown config keys.*n_layers"):
        load_config(None, ["n_layers=3"])
    with pytest.raises(ValueError, match="n_layer: expected int"):
        load_config(None, ["n_layer=2.5"])
    with pytest.raises(ValueError, match="compile: expected true/false"):
        load_config(None, ["compile=maybe"])
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["lr"])


def test_padded_vocabulary():
    assert TrainConfig(vocab_multiple=64).model_config(50257).vocab_size == 50304
    assert TrainConfig(vocab_multiple=1).model_config(50257).vocab_size == 50257


def test_warmup_then_cosine_to_min_lr():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(4, cfg) == pytest.approx(0.5)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)          # half way: (lr + min_lr) / 2
    assert lr_at(110, cfg) == pytest.approx(0.1)
    assert lr_at(500, cfg) == pytest.approx(0.1)
    lrs = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    cfg.lr_decay_steps = 60
    assert lr_at(60, cfg) == pytest.approx(0.1) and lr_at(35, cfg) == pytest.approx(0.55)


def test_weight_decay_only_on_matrices():
    model = GPT(small_cfg().model_config(97))
    opt = make_optimizer(model, small_cfg(weight_decay=0.1), torch.device("cpu"))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert any(p is model.transformer.wte.weight for p in decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == \
        model.param_counts()["total"]


# ---- checkpoints ----------------------------------------------------------------------------------
def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        checkpoint.atomic_write_bytes(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_checkpoint_loading_refuses_arbitrary_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, tmp_path / "ckpt.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        checkpoint.load(tmp_path)
    torch.save({"format": "other"}, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="not a trainer checkpoint"):
        checkpoint.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "nope")


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    train_arrays, val_arrays = arrays()
    # dropout on, so resuming must also restore the RNG state exactly
    cfg = small_cfg(dropout=0.1, ckpt_interval=2)
    train(cfg, tmp_path / "full", train_arrays, val_arrays, TOKENIZER, progress=False)
    part = train(cfg, tmp_path / "part", train_arrays, val_arrays, TOKENIZER, progress=False,
                 stop_after=3)
    assert part["step"] == 3 and not part["finished"]
    assert checkpoint.load(tmp_path / "part")["step"] == 3
    resumed = train(cfg, tmp_path / "part", train_arrays, val_arrays, TOKENIZER, progress=False,
                    resume=True)
    assert resumed["step"] == 8 and resumed["finished"]

    full_losses = [(r["step"], r["loss"]) for r in records(tmp_path / "full")]
    part_losses = [(r["step"], r["loss"]) for r in records(tmp_path / "part")]
    assert [s for s, _ in full_losses] == list(range(1, 9))
    assert part_losses == full_losses  # bit-exact, and no duplicated steps in the log
    assert [r["val_loss"] for r in records(tmp_path / "part", "eval")] == \
        [r["val_loss"] for r in records(tmp_path / "full", "eval")]
    a = checkpoint.load(tmp_path / "full")
    b = checkpoint.load(tmp_path / "part")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["data"] == b["data"] == {"seed": cfg.seed, "samples_seen": 8 * 2 * 4}
    # the loss went down: the repetitive data is learnable
    assert full_losses[-1][1] < full_losses[0][1] - 0.3
    assert not [p for p in (tmp_path / "part").iterdir() if p.name.endswith(".tmp")]


def test_resume_with_another_model_shape_is_refused(tmp_path):
    train_arrays, val_arrays = arrays()
    train(small_cfg(max_steps=1), tmp_path / "r", train_arrays, val_arrays, TOKENIZER, progress=False)
    with pytest.raises(ValueError, match="does not match the checkpoint"):
        train(small_cfg(max_steps=2, n_embd=64), tmp_path / "r", train_arrays, val_arrays, TOKENIZER,
              progress=False, resume=True)
    other_tok = dict(TOKENIZER, sha256="u" * 64)
    with pytest.raises(ValueError, match="another tokenizer"):
        train(small_cfg(max_steps=2), tmp_path / "r", train_arrays, val_arrays, other_tok,
              progress=False, resume=True)


def test_summary_reports_params_scaling_and_throughput(tmp_path):
    train_arrays, val_arrays = arrays()
    s = train(small_cfg(max_steps=4), tmp_path / "r", train_arrays, val_arrays, TOKENIZER,
              progress=False)
    on_disk = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert on_disk["step"] == s["step"] == 4
    assert s["tokens_seen"] == 4 * 2 * 4 * 16
    assert s["kaplan_L_N"] == pytest.approx((8.8e13 / s["params"]["non_embedding"]) ** 0.076)
    assert s["kaplan_L_D"] == pytest.approx((5.4e13 / s["tokens_seen"]) ** 0.095)
    assert s["val_ppl"] == pytest.approx(math.exp(s["val_loss"]))
    assert s["tok_per_s"] > 0 and 0 < s["mfu"]
    assert (tmp_path / "r" / "config.yaml").exists()
