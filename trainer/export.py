"""Export a run as a Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer).

The parameter names already match HF's ``GPT2LMHeadModel``; HF keeps the attention and MLP
matrices as ``Conv1D`` ([in, out]), so those are transposed.  The tied ``lm_head.weight`` is left
out (HF re-ties it from ``transformer.wte.weight``).  Only learned-position models map onto GPT-2.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from . import checkpoint

CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_state_dict(model) -> dict[str, torch.Tensor]:
    cfg = model.config
    sd = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        t = t.detach().to("cpu", torch.float32)
        if name.endswith(CONV1D_SUFFIXES):
            t = t.t()
        sd[name] = t.contiguous()
    if not cfg.bias:  # GPT-2 always has biases: zeros are the same function
        for i in range(cfg.n_layer):
            h = f"transformer.h.{i}."
            for lin, width in (("attn.c_attn", 3 * cfg.n_embd), ("attn.c_proj", cfg.n_embd),
                               ("mlp.c_fc", 4 * cfg.n_embd), ("mlp.c_proj", cfg.n_embd),
                               ("ln_1", cfg.n_embd), ("ln_2", cfg.n_embd)):
                sd.setdefault(h + lin + ".bias", torch.zeros(width))
        sd.setdefault("transformer.ln_f.bias", torch.zeros(cfg.n_embd))
    return sd


def hf_config(model, eot_id: int | None) -> dict:
    cfg = model.config
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_ctx": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": cfg.layer_norm_eps,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "torch_dtype": "float32",
    }


def export_hf(run_dir, out_dir) -> Path:
    from safetensors.torch import save_file

    model, meta = checkpoint.load_model(run_dir, "cpu")
    if model.config.pos_emb != "learned":
        raise ValueError("only models with learned position embeddings map onto HF GPT-2 "
                         f"(this one uses {model.config.pos_emb!r})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = meta.get("tokenizer", {})
    eot_id, eot_token = tok.get("eot_id"), tok.get("eot_token") or "<|endoftext|>"
    save_file(hf_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf_config(model, eot_id), indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": eot_id, "eos_token_id": eot_id}, indent=2) + "\n")
    try:
        src = checkpoint.tokenizer_path(run_dir)
    except FileNotFoundError:
        src = None
    if src is not None:
        shutil.copyfile(src, out / "tokenizer.json")
        (out / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": model.config.block_size,
            "bos_token": eot_token, "eos_token": eot_token, "unk_token": eot_token,
        }, indent=2) + "\n")
        (out / "special_tokens_map.json").write_text(json.dumps(
            {"bos_token": eot_token, "eos_token": eot_token, "unk_token": eot_token}, indent=2) + "\n")
    return out
