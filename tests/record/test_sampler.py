"""The speculative sampler reproduces the target's distribution and accepts at Σ min(p, q) per position."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import numpy as np
import torch
from scipy import stats

from specedge.record.prompts import Prompt
from specedge.record.recorder import LMDrafter, record_acceptance, speculative_generate
from specedge.record.sampler import RoundOutcome, acceptance_probability, probabilities, residual, sample, verify

P = torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04], dtype=torch.float64)
Q = torch.tensor([0.10, 0.15, 0.05, 0.40, 0.20, 0.10], dtype=torch.float64)
K = 3
N = 60_000
ALPHA = 1e-3  # chi-square / binomial significance level; seeds are fixed, so each check is deterministic


def _round(verify_fn, n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = Q.expand(n, K, -1)
    p = P.expand(n, K + 1, -1)
    drafts = sample(q, g)
    return drafts, verify_fn(drafts, q, p, g)


def _first_token(drafts, out: RoundOutcome) -> np.ndarray:
    return torch.where(out.accepted >= 1, drafts[:, 0], out.next_token).numpy()


def _chi2_pvalue(tokens: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(tokens, minlength=probs.size)
    return stats.chisquare(counts, probs * counts.sum()).pvalue


def _verify_without_residual(draft_tokens, q, p, generator=None):
    """A deliberately wrong sampler: on rejection it draws from p instead of norm(max(0, p - q))."""
    b, k = draft_tokens.shape
    idx = draft_tokens.unsqueeze(-1)
    ratio = p[:, :k].gather(-1, idx).squeeze(-1) / q.gather(-1, idx).squeeze(-1)
    ok = torch.rand((b, k), generator=generator, dtype=p.dtype) < ratio.clamp(max=1)
    accepted = torch.where(ok.all(1), k, (~ok).int().argmax(1)).long()
    return RoundOutcome(accepted, sample(p[torch.arange(b), accepted], generator))


def test_first_committed_token_follows_the_target():
    drafts, out = _round(verify)
    assert _chi2_pvalue(_first_token(drafts, out), P.numpy()) > ALPHA


def test_a_sampler_without_residual_resampling_fails_the_check():
    drafts, out = _round(_verify_without_residual)
    assert _chi2_pvalue(_first_token(drafts, out), P.numpy()) < ALPHA


def test_acceptance_per_position_is_sum_of_min():
    beta = float(acceptance_probability(P, Q))
    assert beta == pytest.approx(0.50)
    _, out = _round(verify, seed=1)
    acc = out.accepted.numpy()
    assert 0 <= acc.min() and acc.max() <= K
    for i in range(1, K + 1):  # i.i.d. positions: survival S(i) = beta**i, conditional alpha_i = beta
        survivors, at_risk = int((acc >= i).sum()), int((acc >= i - 1).sum())
        assert stats.binomtest(survivors, at_risk, beta).pvalue > ALPHA


def test_residual_and_bonus():
    r = residual(P, Q)
    assert torch.allclose(r.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert (r[Q >= P] == 0).all()
    # all accepted -> the bonus is drawn from p_{k+1} itself
    g = torch.Generator().manual_seed(3)
    same = P.expand(20_000, K, -1)
    out = verify(sample(same, g), same, P.expand(20_000, K + 1, -1), g)
    assert (out.accepted == K).all()
    assert _chi2_pvalue(out.next_token.numpy(), P.numpy()) > ALPHA


def test_greedy_is_the_one_hot_limit():
    logits_p = torch.log(P).expand(1, K + 1, -1)
    logits_q = torch.log(Q).expand(1, K, -1)
    p, q = probabilities(logits_p, 0.0), probabilities(logits_q, 0.0)
    drafts = sample(q)
    assert (drafts == 3).all()  # argmax of Q
    out = verify(drafts, q, p)
    assert int(out.accepted) == 0 and int(out.next_token) == 0  # rejected, corrected to argmax of P
    agree = verify(torch.zeros(1, K, dtype=torch.long), p[:, :K], p)
    assert int(agree.accepted) == K and int(agree.next_token) == 0


# --- end to end through the recorder's loop: fake LMs that return fixed Markov tables ---------------------


class MarkovLM:
    """A fake causal LM: next-token distribution = table[previous token]; the 'cache' is the token list."""

    eos_token_id = None

    def __init__(self, table: torch.Tensor, name: str) -> None:
        self.table, self.name, self.vocab_size = table, name, table.shape[0]

    def new_cache(self):
        return []

    def forward(self, tokens, cache):
        cache.extend(tokens[0].tolist())
        return torch.log(self.table[tokens])

    def cache_length(self, cache):
        return len(cache)

    def crop(self, cache, length):
        del cache[length:]

    def encode(self, text):
        return [ord(c) - ord("a") for c in text]

    def decode(self, ids):
        return "".join(chr(ord("a") + i) for i in ids)

    def describe(self):
        return {"name": self.name, "parameters": 0, "weights_sha256": "-", "tokenizer": "letters"}


def _tables():
    rng = np.random.default_rng(7)
    target = torch.tensor(rng.dirichlet(np.ones(4) * 0.7, size=4))
    draft = torch.tensor(rng.dirichlet(np.ones(4) * 0.7, size=4))
    return target, draft


def test_recorder_loop_output_follows_the_target_markov_chain():
    tp, tq = _tables()
    target, draft = MarkovLM(tp, "target"), LMDrafter(MarkovLM(tq, "draft"))
    counts = np.zeros((4, 4))
    for i in range(1200):
        g = torch.Generator().manual_seed(i)
        out = speculative_generate(target, draft, [2], gamma=2, temperature=1.0, max_new_tokens=2, generator=g)
        counts[out[0], out[1]] += 1
    expected = (tp[2][:, None] * tp).numpy() * counts.sum()  # P(t1, t2 | prompt 'c')
    assert stats.chisquare(counts.ravel(), expected.ravel()).pvalue > ALPHA


def test_recorded_first_position_acceptance_matches_sum_of_min():
    tp, tq = _tables()
    target, draft = MarkovLM(tp, "target"), LMDrafter(MarkovLM(tq, "draft"))
    prompts = [Prompt(str(i), "c") for i in range(1000)]
    rec = record_acceptance(target, draft, prompts, dataset_id="toy", gamma=2, temperature=1.0, max_new_tokens=1)
    first = rec.frame[rec.frame["round"] == 0]
    beta = float(acceptance_probability(tp[2], tq[2]))
    assert stats.binomtest(int((first["accepted"] >= 1).sum()), len(first), beta).pvalue > ALPHA
