"""GPT model: parameter counts, causality, KV cache, weight tying, initialisation, scaling laws."""
import math

import pytest
import torch

from trainer import scaling
from trainer.model import GPT, GPTConfig, flops_per_token


def tiny(**kw):
    base = dict(vocab_size=101, block_size=32, n_layer=2, n_head=4, n_embd=32)
    base.update(kw)
    return GPTConfig(**base)


def test_param_counts_match_the_architecture():
    cfg = tiny()
    model = GPT(cfg)
    d, L, V, T = cfg.n_embd, cfg.n_layer, cfg.vocab_size, cfg.block_size
    # per block: 2 LayerNorms (2d each), qkv (3d^2 + 3d), attn proj (d^2 + d), fc (4d^2 + 4d), proj (4d^2 + d)
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    expected_non_emb = L * per_block + 2 * d  # + final LayerNorm
    counts = model.param_counts()
    assert counts["non_embedding"] == expected_non_emb
    assert counts["total"] == expected_non_emb + V * d + T * d  # lm_head is tied: not counted twice
    assert counts["approx_12Ld2"] == 12 * L * d * d
    assert model.lm_head.weight is model.transformer.wte.weight


def test_gpt2_124m_has_the_published_size():
    cfg = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    # building on the meta device skips the 124M-parameter allocation
    with torch.device("meta"):
        model = GPT(cfg)
    assert model.param_counts()["total"] == 124_439_808  # GPT-2 small, as counted by HF


@pytest.mark.parametrize("pos_emb", ["learned", "rope"])
def test_future_tokens_do_not_change_past_logits(pos_emb):
    torch.manual_seed(0)
    model = GPT(tiny(pos_emb=pos_emb)).eval()
    x = torch.randint(0, 101, (2, 20))
    y = x.clone()
    y[:, 12:] = torch.randint(0, 101, (2, 8))
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


@pytest.mark.parametrize("pos_emb", ["learned", "rope"])
def test_kv_cache_forward_equals_full_forward(pos_emb):
    torch.manual_seed(1)
    model = GPT(tiny(pos_emb=pos_emb)).eval()
    x = torch.randint(0, 101, (2, 24))
    with torch.no_grad():
        full, _ = model(x)
        cache = model.new_cache(2)
        parts = [model(x[:, :10], cache=cache)[0]]       # prefill
        parts.append(model(x[:, 10:13], cache=cache)[0])  # several new tokens after a prefix
        for t in range(13, 24):                           # then one at a time
            parts.append(model(x[:, t:t + 1], cache=cache)[0])
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.pos == 24


def test_context_longer_than_block_size_is_an_error():
    model = GPT(tiny())
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_loss_is_cross_entropy_of_the_logits():
    torch.manual_seed(2)
    model = GPT(tiny())
    x = torch.randint(0, 101, (3, 16))
    y = torch.randint(0, 101, (3, 16))
    logits, loss = model(x, y)
    ref = -torch.log_softmax(logits, -1).gather(-1, y.unsqueeze(-1)).mean()
    torch.testing.assert_close(loss, ref)
    # an untrained GPT-2-initialised model predicts close to uniform
    assert abs(loss.item() - math.log(101)) < 0.1


def test_gpt2_initialisation_scales_residual_projections():
    torch.manual_seed(3)
    cfg = GPTConfig(vocab_size=512, block_size=64, n_layer=8, n_head=4, n_embd=256)
    model = GPT(cfg)
    h0 = model.transformer.h[0]
    assert abs(h0.attn.c_attn.weight.std().item() - 0.02) < 0.002
    want = 0.02 / math.sqrt(2 * cfg.n_layer)
    assert abs(h0.attn.c_proj.weight.std().item() - want) < 0.1 * want
    assert abs(h0.mlp.c_proj.weight.std().item() - want) < 0.1 * want
    assert torch.all(h0.attn.c_attn.bias == 0)


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="pos_emb"):
        GPTConfig(pos_emb="alibi")


def test_flops_per_token_counts_weights_lm_head_and_attention():
    cfg = GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    with torch.device("meta"):
        n = GPT(cfg).param_counts()["non_embedding"]
    assert n == 85_056_000  # GPT-2 small without wte/wpe
    # 6N (weights), 6dV (tied lm_head, outside N), 12*L*d*T (QK^T and AV, PaLM appendix B)
    assert flops_per_token(cfg, n) == 6 * n + 6 * 768 * 50304 + 12 * 12 * 768 * 1024


def test_kaplan_laws_use_the_published_constants():
    # eq. 1.1 and 1.2 of Kaplan et al. (2020) at the scale constants give exactly 1 nat
    assert scaling.loss_from_params(8.8e13) == pytest.approx(1.0)
    assert scaling.loss_from_tokens(5.4e13) == pytest.approx(1.0)
    # each factor 10 in N lowers L(N) by 10**-0.076 (x0.839), in D by 10**-0.095 (x0.804)
    assert scaling.loss_from_params(1e9) / scaling.loss_from_params(1e8) == pytest.approx(10 ** -0.076)
    assert scaling.loss_from_tokens(1e10) / scaling.loss_from_tokens(1e9) == pytest.approx(10 ** -0.095)
    # L(N, D) approaches its L(N) limit (Table 2 constants) when data is unlimited
    n = 1e8
    limit = (scaling.ND_N_C / n) ** scaling.ND_ALPHA_N
    assert scaling.loss_from_params_and_tokens(n, 1e30) == pytest.approx(limit, rel=1e-6)
    assert scaling.loss_from_params_and_tokens(n, 1e9) > limit
    with pytest.raises(ValueError):
        scaling.loss_from_params(0)
