"""Autoregressive sampling with a KV cache.

Per step: logits of the last position -> temperature -> top-k -> top-p -> sample (or argmax when
temperature is 0).  Generation stops at ``<|endoftext|>`` or after ``max_new_tokens``.  Arguments
out of range (``check_sampling_args``) are a ValueError naming the argument, raised before the
model runs.
"""
from __future__ import annotations

import math

import torch


def check_sampling_args(max_new_tokens: int, temperature: float, top_k: int | None,
                        top_p: float | None) -> None:
    """Raise ValueError naming the first sampling argument out of range (before any work)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"top_k must be an integer >= 0 (0 disables), got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (1 disables), got {top_p!r}")


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits of each row (ties with the k-th value are kept too), -inf the rest."""
    if not k or k <= 0 or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose probabilities sum to at
    least ``p`` (Holtzman et al. 2020), -inf the rest."""
    if p is None or p >= 1.0:
        return logits
    if p <= 0.0:
        raise ValueError("top_p must be in (0, 1]")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    # a token is needed while the tokens ranked above it hold less than p; the top token always is
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> torch.Tensor:
    """Probabilities over the vocabulary for the next token (rows of ``logits``)."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0 for sampling (0 means greedy: use argmax)")
    logits = logits.float() / temperature
    logits = top_p_filter(top_k_filter(logits, top_k), top_p)
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def generate(model, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, eot_id: int | None = None,
             seed: int | None = None, use_cache: bool = True, vocab_limit: int | None = None) -> list[int]:
    """New token ids after ``prompt`` (the stop token, if reached, is included).

    ``vocab_limit``: ids at or above it (the padding of the embedding) are never produced.
    ``use_cache=False`` recomputes the whole context every step (the reference the cache is
    tested against).  Once the context is full, the oldest tokens are dropped; the cache cannot
    shift learned positions, so from then on every step recomputes the last block_size tokens.
    """
    check_sampling_args(max_new_tokens, temperature, top_k, top_p)
    if not prompt:
        if eot_id is None:
            raise ValueError("empty prompt and no <|endoftext|> id to start from")
        prompt = [eot_id]
    model.eval()
    device = next(model.parameters()).device
    block = model.config.block_size
    gen = torch.Generator(device="cpu")
    gen.manual_seed(0 if seed is None else seed)
    tokens = list(prompt)
    out: list[int] = []
    cache = model.new_cache(1) if use_cache else None
    pending = tokens[-block:]  # what the next forward pass must consume
    for _ in range(max_new_tokens):
        if cache is not None and cache.pos + len(pending) > block:
            cache, pending = None, tokens[-block:]  # context full: fall back to recomputation
        if cache is None:
            pending = tokens[-block:]
        idx = torch.tensor([pending], dtype=torch.long, device=device)
        logits, _ = model(idx, cache=cache, last_only=True)
        logits = logits[0, -1].float().cpu()
        if vocab_limit is not None and vocab_limit < logits.numel():
            logits[vocab_limit:] = float("-inf")
        if temperature == 0:
            nxt = int(torch.argmax(logits))
        else:
            probs = next_token_distribution(logits, temperature, top_k, top_p)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
        tokens.append(nxt)
        out.append(nxt)
        if eot_id is not None and nxt == eot_id:
            break
        pending = [nxt]
    return out


def sample_run(run_dir, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8,
               top_k: int | None = 200, top_p: float | None = None, seed: int = 1337,
               num_samples: int = 1, device: str = "cpu") -> list[str]:
    from . import checkpoint

    check_sampling_args(max_new_tokens, temperature, top_k, top_p)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    model, meta = checkpoint.load_model(run_dir, device)
    tok = checkpoint.load_tokenizer(run_dir)
    eot = meta.get("tokenizer", {}).get("eot_id")
    vocab = meta.get("tokenizer", {}).get("vocab_size") or tok.get_vocab_size()
    prompt_ids = tok.encode(prompt).ids if prompt else []
    texts = []
    for i in range(num_samples):
        new = generate(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, eot, seed + i,
                       vocab_limit=vocab)
        if eot is not None and new and new[-1] == eot:
            new = new[:-1]
        # decode prompt and continuation together: a byte-level token may finish a character
        texts.append(tok.decode(prompt_ids + new) if prompt_ids else tok.decode(new))
    return texts
