"""A miniature ablation through the CLI: 2 variants (shards made by the real tokenization code, each
with its own tokenizer), a tiny model, a few steps, 2 seeds."""
import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.test_trainer_e2e import build_shards
from trainer import ablate_report, checkpoint
from trainer.__main__ import main as cli
from trainer.ablate import read_eval_text
from trainer.ablate_data import held_out, split

# 30 characters, 39 UTF-8 bytes (ü, ß, ö: 2 bytes; the dash and the two CJK characters: 3 bytes)
LINE = "Grüße aus Köln – 東京 ist weit.\n"
EVAL_TEXT = LINE * 8
EVAL_BYTES = 39 * 8
MODEL = ["n_layer=1", "n_head=2", "n_embd=32", "block_size=32", "batch_size=4", "warmup_steps=2",
         "eval_interval=3", "eval_windows=4", "log_interval=3", "ckpt_interval=3", "vocab_multiple=1",
         "threads=1", "lr=1e-2", "min_lr=1e-3"]
TOKENS = 6 * 4 * 32  # 6 steps of 4 x 32 tokens


def corpus(seed: int, words: list[str], docs: int) -> str:
    rnd = random.Random(seed)
    return "\n\n".join(" ".join(rnd.choice(words) for _ in range(rnd.randint(20, 60))) for _ in range(docs))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    words = ["Haus", "Baum", "river", "stone", "über", "Straße", "light", "night", "Feld", "wind", "and"]
    small = build_shards(root / "small", corpus(1, words, 8), vocab=300)     # fewer tokens: repeated
    large = build_shards(root / "large", corpus(2, words, 400), vocab=400)    # more tokens: cut
    (root / "eval.txt").write_text(EVAL_TEXT, encoding="utf-8")
    return root, small, large


def ablate(root, small, large, out, *extra):
    return cli(["ablate", "--variant", f"small={small}", "--variant", f"large={large}",
                "--config", "configs/train/ablation-tiny.yaml", "--tokens", str(TOKENS), "--seeds", "2",
                "--eval", f"probe={root / 'eval.txt'}", "--out", str(out), *MODEL, *extra])


@pytest.fixture(scope="module")
def ran(setup):
    root, small, large = setup
    out = root / "out"
    assert ablate(root, small, large, out) == 0
    return root, small, large, out


def test_equal_budget_and_mean_std_over_seeds(ran):
    root, small, large, out = ran
    res = json.loads((out / "results.json").read_text())
    assert res["tokens_per_run"] == TOKENS and res["seeds"] == [1, 2]
    v = res["variants"]
    assert v["small"]["tokens_seen"] == v["large"]["tokens_seen"] == [TOKENS]
    assert v["small"]["data"] == "repeated" and v["large"]["data"] == "cut"
    for name in ("small", "large"):
        assert v[name]["epochs"] == pytest.approx(TOKENS / v[name]["train_tokens"])
        bpb = v[name]["evals"]["probe"]["bits_per_byte"]
        runs = [json.loads((out / "runs" / name / f"seed-{s}" / "result.json").read_text()) for s in (1, 2)]
        values = [r["evals"]["probe"]["bits_per_byte"] for r in runs]
        assert bpb["n"] == 2 and bpb["values"] == values
        assert bpb["mean"] == pytest.approx(np.mean(values))
        assert bpb["std"] == pytest.approx(np.std(values, ddof=1))
        assert values[0] != values[1]  # the seeds really differ
        assert all(r["steps"] == 6 and r["tokens_seen"] == TOKENS for r in runs)
    d = res["differences"]["probe"]["large"]
    assert d["diff"] == pytest.approx(v["large"]["evals"]["probe"]["bits_per_byte"]["mean"]
                                      - v["small"]["evals"]["probe"]["bits_per_byte"]["mean"])
    md = (out / "results.md").read_text()
    assert "| small |" in md and "seed spread" in md
    svg = (out / "curves.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 4


def test_bits_per_byte_matches_a_direct_computation(ran):
    root, small, large, out = ran
    run = out / "runs" / "large" / "seed-2"
    result = json.loads((run / "result.json").read_text())["evals"]["probe"]
    assert result["bytes"] == EVAL_BYTES == len(EVAL_TEXT.encode("utf-8"))
    model, meta = checkpoint.load_model(run / "ckpt.pt")
    tok = checkpoint.load_tokenizer(run)
    ids = [meta["tokenizer"]["eot_id"]] + tok.encode(EVAL_TEXT).ids
    assert len(ids) > 33  # more than one context window
    nll = 0.0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, 32):
            chunk = torch.tensor([ids[s:s + 33]])
            logits, _ = model(chunk[:, :-1])
            nll += F.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item()
    assert result["tokens"] == len(ids) - 1
    assert result["bits_per_byte"] == pytest.approx(nll / math.log(2) / EVAL_BYTES, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-5)


def test_resume_reuses_finished_runs_and_continues_unfinished_ones(ran, capsys):
    root, small, large, out = ran
    results = sorted((out / "runs").glob("*/seed-*/result.json"))
    assert len(results) == 4
    before = {p: p.stat().st_mtime_ns for p in results}
    redo = out / "runs" / "small" / "seed-2" / "result.json"
    old = json.loads(redo.read_text())
    redo.unlink()  # as if killed after the last checkpoint, before the evaluation
    capsys.readouterr()
    assert ablate(root, small, large, out) == 0
    log = capsys.readouterr().out
    assert log.count("done before, reused") == 3
    for p, t in before.items():
        if p != redo:
            assert p.stat().st_mtime_ns == t
    new = json.loads(redo.read_text())
    assert new["evals"]["probe"]["bits_per_byte"] == pytest.approx(old["evals"]["probe"]["bits_per_byte"])
    # other settings in the same --out: refused, not mixed into the results
    assert ablate(root, small, large, out, "lr=5e-3") == 2


def test_contaminated_eval_text_and_too_small_budget_are_refused(setup, tmp_path, capsys):
    root, small, large = setup
    train_text = corpus(2, ["Haus", "Baum", "river", "stone", "über", "Straße", "light", "night", "Feld",
                            "wind", "and"], 400)
    leaked = tmp_path / "leaked.txt"
    leaked.write_text(train_text.split("\n\n")[5] + "\n", encoding="utf-8")
    rc = cli(["ablate", "--variant", f"large={large}", "--config", "configs/train/ablation-tiny.yaml",
              "--tokens", str(TOKENS), "--seeds", "1", "--eval", f"leak={leaked}", "--out",
              str(tmp_path / "o"), *MODEL])
    assert rc == 2 and "overlaps the training data" in capsys.readouterr().err
    assert not (tmp_path / "o" / "runs").exists()
    rc = cli(["ablate", "--variant", f"large={large}", "--config", "configs/train/ablation-tiny.yaml",
              "--tokens", "10", "--eval", f"probe={root / 'eval.txt'}", "--out", str(tmp_path / "o2"), *MODEL])
    assert rc == 2 and "less than one step" in capsys.readouterr().err
    rc = cli(["ablate", "--variant", "large", "--config", "configs/train/ablation-tiny.yaml",
              "--tokens", str(TOKENS), "--eval", f"probe={root / 'eval.txt'}", "--out", str(tmp_path / "o3")])
    assert rc == 2 and "NAME=PATH" in capsys.readouterr().err


def test_eval_text_is_cut_at_a_paragraph(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("a" * 60 + "\n\n" + "b" * 60 + "\n\n" + "c" * 60, encoding="utf-8")
    assert read_eval_text(str(p), 130) == "a" * 60 + "\n\n" + "b" * 60 + "\n"
    p.write_bytes(b"\xff\xfe bad")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_eval_text(str(p), None)


def test_difference_verdict_uses_the_seed_spread():
    class V:
        def __init__(self, name):
            self.name, self.shards, self.train_tokens = name, name, 100

    def runs(name, values):
        return [{"variant": name, "seed": i, "tokens_seen": 200, "evals": {"e": {
            "bits_per_byte": x, "loss": x, "perplexity": x}}} for i, x in enumerate(values)]

    s = ablate_report.summarize(runs("a", [2.0, 2.1, 1.9]) + runs("b", [1.5, 1.6, 1.4]),
                                [V("a"), V("b")], {"e": {"path": "e.txt", "bytes": 10}}, {}, 2, 100, 3, [])
    assert s["differences"]["e"]["b"]["exceeds_seed_spread"]
    s = ablate_report.summarize(runs("a", [2.0, 2.1, 1.9]) + runs("b", [1.95, 2.1, 1.9]),
                                [V("a"), V("b")], {"e": {"path": "e.txt", "bytes": 10}}, {}, 2, 100, 3, [])
    assert not s["differences"]["e"]["b"]["exceeds_seed_spread"]
    assert "cannot be told apart" in ablate_report.markdown(s)


def test_heldout_split_is_deterministic_and_keeps_the_schema(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"doc-{i}" for i in range(200)]
    langs = ["de" if i % 2 else "en" for i in range(200)]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"doc_id": ids, "lang": langs, "text": ids}), tmp_path / "in" / "p.parquet")
    n_pool, n_held = split(str(tmp_path / "in"), str(tmp_path / "pool"), str(tmp_path / "held"), "de", 5)
    held = pq.read_table(tmp_path / "held" / "p.parquet")
    expect = [d for d, lg in zip(ids, langs) if lg == "de" and held_out(d, 5)]
    assert held.column("doc_id").to_pylist() == expect and 5 < n_held < 40
    assert n_pool + n_held == 200
    assert pq.read_table(tmp_path / "pool" / "p.parquet").schema == held.schema
