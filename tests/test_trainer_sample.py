"""Sampling: top-k / top-p masks on hand-made distributions, KV-cache generation vs recomputation."""

import pytest
import torch

from trainer.model import GPT, GPTConfig
from trainer.sample import generate, next_token_distribution, top_k_filter, top_p_filter

PROBS = torch.tensor([0.05, 0.5, 0.1, 0.2, 0.15])  # sorted: idx 1 (.5), 3 (.2), 4 (.15), 2 (.1), 0 (.05)
LOGITS = PROBS.log()


def kept(logits):
    return set(torch.nonzero(torch.isfinite(logits)).flatten().tolist())


def test_top_k_keeps_the_k_most_likely():
    assert kept(top_k_filter(LOGITS, 1)) == {1}
    assert kept(top_k_filter(LOGITS, 2)) == {1, 3}
    assert kept(top_k_filter(LOGITS, 4)) == {1, 3, 4, 2}
    assert kept(top_k_filter(LOGITS, 5)) == {0, 1, 2, 3, 4}
    assert kept(top_k_filter(LOGITS, None)) == {0, 1, 2, 3, 4}
    # kept logits are unchanged
    torch.testing.assert_close(top_k_filter(LOGITS, 2)[[1, 3]], LOGITS[[1, 3]])


def test_top_k_works_row_by_row():
    rows = torch.stack([LOGITS, LOGITS.flip(0)])
    out = top_k_filter(rows, 2)
    assert kept(out[0]) == {1, 3}
    assert kept(out[1]) == {3, 1}  # flipped: probabilities .15 .2 .1 .5 .05


@pytest.mark.parametrize("p, expected", [
    (0.01, {1}),                 # the top token is always kept
    (0.5 - 1e-4, {1}),
    (0.5 + 1e-4, {1, 3}),        # 0.5 is not enough: add the next one
    (0.7 - 1e-4, {1, 3}),
    (0.7 + 1e-4, {1, 3, 4}),
    (0.85 + 1e-4, {1, 3, 4, 2}),
    (0.95 + 1e-4, {0, 1, 2, 3, 4}),
    (1.0, {0, 1, 2, 3, 4}),
])
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    assert kept(top_p_filter(LOGITS, p)) == expected


def test_top_p_on_a_batch_and_with_unsorted_rows():
    rows = torch.stack([LOGITS, torch.tensor([0.3, 0.1, 0.1, 0.1, 0.4]).log()])
    out = top_p_filter(rows, 0.65)
    assert kept(out[0]) == {1, 3}  # .5 < .65 <= .5 + .2
    assert kept(out[1]) == {4, 0}  # .4 < .65 <= .4 + .3


def test_distribution_is_renormalised_after_filtering():
    probs = next_token_distribution(LOGITS, temperature=1.0, top_k=2)
    torch.testing.assert_close(probs, torch.tensor([0, 0.5 / 0.7, 0, 0.2 / 0.7, 0]))
    # temperature 0.5 squares the probabilities before renormalising
    probs = next_token_distribution(LOGITS, temperature=0.5)
    torch.testing.assert_close(probs, PROBS ** 2 / (PROBS ** 2).sum())
    with pytest.raises(ValueError):
        top_p_filter(LOGITS, 0.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    # larger weights than GPT-2's init so the logits are far apart and argmax is not a coin toss
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return m


@pytest.mark.parametrize("new_tokens", [10, 60])  # 60 runs past block_size (32)
def test_greedy_with_kv_cache_equals_recomputation(model, new_tokens):
    prompt = [5, 17, 3, 9, 40]
    cached = generate(model, prompt, new_tokens, temperature=0, use_cache=True)
    recomputed = generate(model, prompt, new_tokens, temperature=0, use_cache=False)
    assert len(cached) == new_tokens
    assert cached == recomputed
    # and the first token really is the argmax of the full forward pass
    with torch.no_grad():
        logits, _ = model(torch.tensor([prompt]))
    assert cached[0] == int(logits[0, -1].argmax())


def test_seeded_sampling_is_reproducible(model):
    a = generate(model, [1, 2, 3], 25, temperature=1.0, top_k=20, seed=7)
    b = generate(model, [1, 2, 3], 25, temperature=1.0, top_k=20, seed=7)
    c = generate(model, [1, 2, 3], 25, temperature=1.0, top_k=20, seed=8)
    assert a == b
    assert a != c


def test_generation_stops_at_end_of_text(model):
    first = generate(model, [1, 2, 3], 5, temperature=0)[0]
    assert generate(model, [1, 2, 3], 20, temperature=0, eot_id=first) == [first]


def test_padding_ids_are_never_sampled(model):
    out = generate(model, [1, 2, 3], 200, temperature=2.0, seed=1, vocab_limit=10)
    assert len(out) == 200 and max(out) < 10
    assert len(set(out)) > 3  # really sampling, not stuck on one token


def test_empty_prompt_starts_from_end_of_text(model):
    assert generate(model, [], 4, temperature=0, eot_id=63) == \
        generate(model, [63], 4, temperature=0, eot_id=63)
    with pytest.raises(ValueError):
        generate(model, [], 4)
