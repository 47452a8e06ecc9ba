"""End to end on tokenized shards of tinyshakespeare: learning, 2-process DDP, eval and sample CLIs."""
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import require_shared
from trainer import checkpoint
from trainer.__main__ import main as cli
from trainer.data import open_shards, unigram_entropy
from trainer.train import load_config, train_from_shards

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs" / "train" / "tiny.yaml"
# a very small member of the tiny family so the whole file stays well under a minute on 2 cores
SMALL = ["n_layer=2", "n_head=2", "n_embd=64", "block_size=64", "batch_size=16", "lr=3e-3",
         "min_lr=3e-4", "warmup_steps=20", "vocab_multiple=1", "threads=1"]


def build_shards(out: Path, text: str, vocab: int = 512) -> Path:
    """Shards the way the tokenize stage lays them out, through the tokenization/ modules:
    a BPE trained on the text, every 10th paragraph in val, train in two shards, a manifest."""
    from tokenization.indexed import write_indexed
    from tokenization.manifest import build_manifest, manifest_json, sha256_file
    from tokenization.tokenizer import EOT_TOKEN, eot_id, train_bpe, vocab_size

    out.mkdir(parents=True, exist_ok=True)
    docs = [d for d in text.split("\n\n") if d.strip()]
    tok = train_bpe(docs, vocab)
    tok.save(str(out / "tokenizer.json"))
    eot, V = eot_id(tok), vocab_size(tok)
    ids = [e.ids + [eot] for e in tok.encode_batch(docs)]
    train_docs = [d for i, d in enumerate(ids) if i % 10]
    parts = {"train-00000": ("train", train_docs[::2]), "train-00001": ("train", train_docs[1::2]),
             "val-00000": ("val", ids[::10])}
    shards = []
    for name, (split, docs_) in parts.items():
        info = write_indexed(str(out / name), docs_, V)
        shards.append({"file": name, "split": split, **{k: info[k] for k in (
            "tokens", "documents", "sha256_bin", "sha256_idx")}})
    manifest = build_manifest(
        tokenizer={"file": "tokenizer.json", "sha256": sha256_file(out / "tokenizer.json"),
                   "vocab_size": V, "eot_token": EOT_TOKEN, "eot_id": eot},
        dtype=info["dtype"], shards=shards, config={"vocab_size": vocab})
    (out / "manifest.json").write_bytes(manifest_json(manifest))
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    text = require_shared("text/tinyshakespeare.txt").read_text(encoding="utf-8")
    return build_shards(tmp_path_factory.mktemp("shards"), text)


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    """A few hundred CPU steps through the CLI, as `make train` runs it."""
    run = tmp_path_factory.mktemp("run")
    rc = cli(["train", "--data", str(shards), "--config", str(TINY), "--out", str(run),
              "--no-progress", *SMALL, "max_steps=300", "eval_interval=100", "log_interval=50",
              "ckpt_interval=300"])
    assert rc == 0
    return run


def test_tiny_model_loss_drops_well_below_unigram_entropy(shards, trained):
    manifest = json.loads((shards / "manifest.json").read_text())
    h_unigram = unigram_entropy(open_shards(shards, "train"), manifest["tokenizer"]["vocab_size"])
    summary = json.loads((trained / "summary.json").read_text())
    evals = [json.loads(ln) for ln in (trained / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in evals if r["type"] == "eval"]
    assert len(val) == 3 and val[0] > val[1] > val[2]
    # a unigram model (no context) cannot go below h_unigram; 1 nat/token below it means the
    # model predicts from context, with ~2.7x fewer plausible next tokens than unigram statistics
    assert summary["val_loss"] < h_unigram - 1.0, (summary["val_loss"], h_unigram)
    assert summary["train_loss"] < h_unigram - 0.7
    assert math.log(manifest["tokenizer"]["vocab_size"]) > h_unigram  # sanity of the entropy


def _run(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180, **kw)


def test_eval_cli_on_shards_and_on_a_text_file(shards, trained, tmp_path):
    r = _run(["eval", "--ckpt", str(trained), "--data", str(shards), "--json", "--device", "cpu"])
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    val_tokens = sum(len(a) - 1 for a in open_shards(shards, "val"))
    assert res["tokens"] == val_tokens  # the whole val split, every token predicted once
    assert res["perplexity"] == pytest.approx(math.exp(res["loss"]))
    summary = json.loads((trained / "summary.json").read_text())
    assert abs(res["loss"] - summary["val_loss"]) < 0.15  # the periodic eval uses a subset

    # a text file through the run's own tokenizer: Shakespeare-like text scores better than
    # Wikipedia, which the model never saw
    text = require_shared("text/wikitext-2-test.txt").read_text(encoding="utf-8")[:20000]
    (tmp_path / "wiki.txt").write_text(text, encoding="utf-8")
    r = _run(["eval", "--ckpt", str(trained), "--text", str(tmp_path / "wiki.txt"), "--json",
              "--device", "cpu"])
    assert r.returncode == 0, r.stderr
    wiki = json.loads(r.stdout)
    tok = checkpoint.load_tokenizer(trained)
    assert wiki["tokens"] == len(tok.encode(text).ids) - 1
    assert wiki["loss"] > res["loss"]
    assert wiki["bits_per_byte"] == pytest.approx(
        wiki["loss"] * wiki["tokens"] / math.log(2) / len(text.encode("utf-8")))


def test_eval_cli_reports_missing_inputs_clearly(trained, tmp_path):
    r = _run(["eval", "--ckpt", str(tmp_path / "nothing"), "--text", str(tmp_path / "x.txt")])
    assert r.returncode == 2 and "no checkpoint" in r.stderr


def test_sample_cli_is_seeded_and_continues_the_prompt(trained):
    args = ["sample", "--ckpt", str(trained), "--prompt", "ROMEO:", "--max-new-tokens", "40",
            "--device", "cpu"]
    a = _run(args + ["--seed", "1"])
    b = _run(args + ["--seed", "1"])
    c = _run(args + ["--seed", "2"])
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout != c.stdout
    assert a.stdout.startswith("ROMEO:") and len(a.stdout) > len("ROMEO:") + 20
    g = _run(args + ["--temperature", "0"])
    assert g.returncode == 0 and g.stdout.startswith("ROMEO:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single_process(shards, tmp_path):
    overrides = SMALL[:3] + ["n_embd=32", "block_size=32", "batch_size=4", "grad_accum=4",
                             "max_steps=4", "warmup_steps=1", "lr=3e-3", "log_interval=1",
                             "eval_interval=2", "eval_windows=16", "vocab_multiple=1", "threads=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    ddp_run = tmp_path / "ddp"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
         "-m", "trainer", "train", "--data", str(shards), "--config", str(TINY), "--out", str(ddp_run),
         "--no-progress", *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    single = train_from_shards(shards, load_config(TINY, overrides), tmp_path / "single",
                               progress=False)
    ddp_summary = json.loads((ddp_run / "summary.json").read_text())
    assert ddp_summary["world_size"] == 2 and single["world_size"] == 1

    def losses(run, kind, key):
        return [json.loads(ln)[key] for ln in (run / "metrics.jsonl").read_text().splitlines()
                if json.loads(ln)["type"] == kind]

    np.testing.assert_allclose(losses(ddp_run, "train", "loss"),
                               losses(tmp_path / "single", "train", "loss"), rtol=1e-5)
    np.testing.assert_allclose(losses(ddp_run, "eval", "val_loss"),
                               losses(tmp_path / "single", "eval", "val_loss"), rtol=1e-5)
    a = checkpoint.load(ddp_run)["model"]
    b = checkpoint.load(tmp_path / "single")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    # the runs really trained (so matching losses are not two copies of the initial model)
    ddp_losses = losses(ddp_run, "train", "loss")
    assert len(ddp_losses) == 4 and ddp_losses[-1] < ddp_losses[0]
