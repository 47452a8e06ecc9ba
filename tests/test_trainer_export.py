"""Hugging Face GPT-2 export: transformers' GPT2LMHeadModel loads it and gives the same logits."""
import json

import numpy as np
import pytest
import torch

from trainer import checkpoint
from trainer.export import export_hf
from trainer.train import TrainConfig, train

transformers = pytest.importorskip("transformers", reason="transformers is needed for the export test")
pytest.importorskip("safetensors")

TEXT = "\n".join(f"line {i}: the {w} fox jumps over the lazy dog {i % 7} times."
                 for i, w in enumerate(["quick", "slow", "red", "brown", "sly"] * 40))


def make_run(tmp_path, **cfg_kw):
    from tokenization.tokenizer import eot_id, train_bpe, vocab_size

    tok = train_bpe(TEXT.splitlines(), 300)
    tok_file = tmp_path / "tokenizer.json"
    tok.save(str(tok_file))
    ids = np.array(tok.encode(TEXT).ids + [eot_id(tok)], dtype=np.uint16)
    cfg = TrainConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=4, max_steps=3,
                      warmup_steps=1, eval_interval=100, log_interval=1, vocab_multiple=64, **cfg_kw)
    info = {"vocab_size": vocab_size(tok), "eot_id": eot_id(tok), "eot_token": "<|endoftext|>",
            "sha256": "x" * 64}
    run = tmp_path / "run"
    train(cfg, run, [ids], [ids[:200]], info, tokenizer_file=tok_file, progress=False)
    return run, tok


@pytest.mark.parametrize("bias", [True, False])
def test_gpt2lmheadmodel_gives_the_same_logits(tmp_path, bias):
    run, tok = make_run(tmp_path, bias=bias)
    out = export_hf(run, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["vocab_size"] == 320  # padded 300 -> 320
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(out)).eval()
    ours, _ = checkpoint.load_model(run)
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # still tied
    ids = torch.tensor([tok.encode(TEXT[:400]).ids[:32], tok.encode(TEXT[400:800]).ids[:32]])
    with torch.no_grad():
        want, _ = ours(ids)
        got = hf(ids).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # the trained weights were exported, not a fresh initialisation
    assert (want.std() > 0.05) and not torch.allclose(got, torch.zeros_like(got))


def test_exported_tokenizer_loads_in_transformers(tmp_path):
    run, tok = make_run(tmp_path)
    out = export_hf(run, tmp_path / "hf")
    hf_tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(out))
    sample = "line 3: the sly fox jumps"
    assert hf_tok(sample)["input_ids"] == tok.encode(sample).ids
    assert hf_tok.eos_token == "<|endoftext|>"


def test_rope_models_are_not_exported(tmp_path):
    run, _ = make_run(tmp_path, pos_emb="rope")
    with pytest.raises(ValueError, match="learned position"):
        export_hf(run, tmp_path / "hf")
