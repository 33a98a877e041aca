"""Standard speculative sampling (Leviathan et al. 2023; Chen et al. 2023) as pure torch functions.

One verification round, for each of B sequences: the draft proposed k tokens d_1..d_k, drawn from q_1..q_k; the
target gave p_1..p_{k+1} (one more than drafted). Position i is accepted when u_i < min(1, p_i(d_i) / q_i(d_i)),
u_i ~ U[0, 1), and the round stops at the first rejection. At a rejection at position i the next token is drawn
from norm(max(0, p_i − q_i)); when all k pass, a bonus token is drawn from p_{k+1}. The committed tokens are then
distributed exactly as the target's own samples.

Greedy decoding (temperature 0) is the same algorithm on one-hot distributions: the draft proposes its argmax,
position i is accepted iff d_i is the target's argmax, and the corrected/bonus token is the target's argmax.

Because the test at position i uses only q_i, p_i, d_i and u_i, a round recorded with k drafted tokens and
``accepted`` = a replays exactly at any shorter length l ≤ k as min(a, l) (traces.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sampling distribution over the last axis: softmax(logits / T) for T > 0, one-hot argmax for T = 0."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if temperature == 0:
        return torch.zeros_like(logits).scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
    return torch.softmax(logits / temperature, dim=-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of ``probs`` (..., V) -> (...) int64. One-hot rows return their index exactly."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


@dataclass(frozen=True)
class RoundOutcome:
    """Result of verifying one round for B sequences.

    accepted: (B,) draft tokens accepted, 0..k (the corrected/bonus token is not counted);
    next_token: (B,) the token drawn after the accepted prefix (residual sample or bonus).
    """

    accepted: torch.Tensor
    next_token: torch.Tensor


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p − q)) over the last axis; rows where p ≤ q everywhere fall back to p (probability-zero event)."""
    r = torch.clamp(p - q, min=0.0)
    total = r.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, r / torch.where(total > 0, total, torch.ones_like(total)), p)


def verify(
    draft_tokens: torch.Tensor,
    q: torch.Tensor,
    p: torch.Tensor,
    generator: torch.Generator | None = None,
) -> RoundOutcome:
    """Speculative-sampling verification of one round.

    draft_tokens: (B, k) int64; q: (B, k, V) draft distributions the tokens were drawn from; p: (B, k + 1, V)
    target distributions at the same positions plus one. Random numbers: k uniforms per sequence, then one draw
    for the next token (in that order, from ``generator``).
    """
    b, k = draft_tokens.shape
    if q.shape[:2] != (b, k) or p.shape[:2] != (b, k + 1) or q.shape[-1] != p.shape[-1]:
        raise ValueError(f"shape mismatch: draft {tuple(draft_tokens.shape)}, q {tuple(q.shape)}, p {tuple(p.shape)}")
    idx = draft_tokens.unsqueeze(-1)
    p_d = p[:, :k].gather(-1, idx).squeeze(-1)
    q_d = q.gather(-1, idx).squeeze(-1)
    u = torch.rand((b, k), generator=generator, dtype=p.dtype)
    # u < min(1, p/q)  <=>  u * q < p  (q_d > 0 for a token the draft actually drew)
    ok = u * q_d < p_d
    first_reject = (~ok).int().argmax(dim=1) if k else torch.zeros(b, dtype=torch.long)  # k = 0: plain draw from p_1
    accepted = torch.where(ok.all(dim=1), k, first_reject).long()
    rows = torch.arange(b)
    p_at = p[rows, accepted]
    q_padded = torch.cat([q, torch.zeros_like(p[:, :1])], dim=1)  # the bonus position has q = 0
    dist = residual(p_at, q_padded[rows, accepted])
    return RoundOutcome(accepted=accepted, next_token=sample(dist, generator))


def acceptance_probability(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """P(accept) at one position = Σ_x min(p(x), q(x)) over the last axis."""
    return torch.minimum(p, q).sum(dim=-1)
