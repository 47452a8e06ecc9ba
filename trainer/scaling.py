"""Kaplan et al. (2020), "Scaling Laws for Neural Language Models", arXiv:2001.08361.

Loss in nats per token, as published (eq. 1.1, 1.2; Table 2 for L(N, D)).  N counts non-embedding
parameters, D counts training tokens.  The fits are for WebText2 with the GPT-2 BPE (50257 tokens)
and a 1024-token context; with another tokenizer or corpus the numbers are a reference point, not a
prediction of this run's loss (nats per token depend on how much text a token holds).
"""
from __future__ import annotations

# eq. 1.1: L(N) = (N_c / N) ** alpha_N   -- converged models, data not a bottleneck
ALPHA_N = 0.076
N_C = 8.8e13
# eq. 1.2: L(D) = (D_c / D) ** alpha_D   -- large models trained with early stopping on D tokens
ALPHA_D = 0.095
D_C = 5.4e13
# Table 2 / eq. 1.5: L(N, D) = [(N_c / N) ** (alpha_N / alpha_D) + D_c / D] ** alpha_D
ND_ALPHA_N = 0.076
ND_ALPHA_D = 0.103
ND_N_C = 6.4e13
ND_D_C = 1.8e13


def loss_from_params(n_non_embedding: float) -> float:
    """L(N), nats/token."""
    if n_non_embedding <= 0:
        raise ValueError("N must be positive")
    return (N_C / n_non_embedding) ** ALPHA_N


def loss_from_tokens(tokens: float) -> float:
    """L(D), nats/token."""
    if tokens <= 0:
        raise ValueError("D must be positive")
    return (D_C / tokens) ** ALPHA_D


def loss_from_params_and_tokens(n_non_embedding: float, tokens: float) -> float:
    """L(N, D), nats/token."""
    if n_non_embedding <= 0 or tokens <= 0:
        raise ValueError("N and D must be positive")
    return ((ND_N_C / n_non_embedding) ** (ND_ALPHA_N / ND_ALPHA_D) + ND_D_C / tokens) ** ND_ALPHA_D


def predictions(n_non_embedding: int, tokens: int) -> dict:
    out = {"kaplan_L_N": loss_from_params(n_non_embedding)}
    if tokens > 0:
        out["kaplan_L_D"] = loss_from_tokens(tokens)
        out["kaplan_L_ND"] = loss_from_params_and_tokens(n_non_embedding, tokens)
    return out
