"""Stage times of one round of a batch: what the SBS and the MBS spend, vectorised over many rounds.

The round structure [A, following docs/model.md section 4], for a batch padded to input length I whose KV cache holds C
tokens at the start of the round (C = I + the most tokens any live member has committed), b live members and
speculation length l:

- SD drafting, first round: one prefill pass (x = I, c = 0, it yields the first draft token), then l - 1 decode
  passes at c = I, I + 1, ..., I + l - 2;
- SD drafting, later rounds: l decode passes at c = C, C + 1, ..., C + l - 1;
- SD verification, first round: one pass over the prompt and the drafts, x = I + l + 1, c = 0;
  later rounds: x = l + 1 (the last committed token and the l drafts), c = C;
- AD (target alone): first round a prefill pass x = I, c = 0 (yields the first token); later rounds one decode
  pass x = 1, c = C.

Host overhead [A]: every stage job also pays the predictor's per-job host overhead (``pred.job_overhead``,
:mod:`specedge.latency.host_overhead`), t_host(b, x) = a + s b + t b x with x = l for SD draft and verify jobs and
x = 1 for AD jobs; it is 0 unless the scenario sets it (the paper's model has none).

Every function takes equal-shape arrays (one entry per round) and returns seconds. With an affine predictor the
sums over the draft passes are closed-form; any other predictor is evaluated on a (rounds x passes) grid.
"""

from __future__ import annotations

import numpy as np

from specedge.latency.compute import AffineCompute
from specedge.latency.host_overhead import job_overhead_s


def _f(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def decode_passes_s(pred, batch_size, first_context, num_passes) -> np.ndarray:
    """Sum over j = 0..n-1 of latency(b, 1, c0 + j): n sequential single-token passes from context c0."""
    b, c0, n = np.broadcast_arrays(_f(batch_size), _f(first_context), _f(num_passes))
    if isinstance(pred, AffineCompute):
        p, q = pred.coefficients(b, 1.0)
        return n * p + q * (n * c0 + 0.5 * n * (n - 1.0))
    out = np.zeros(b.shape)
    if b.size == 0:
        return out
    n_max = int(n.max()) if n.size else 0
    if n_max == 0:
        return out
    j = np.arange(n_max, dtype=np.float64)
    t = pred.latency_s(b[..., None], 1.0, c0[..., None] + j)
    return np.where(j < n[..., None], t, 0.0).sum(axis=-1)


def sd_draft_s(pred, batch_size, context_tokens, input_tokens, speculation_length, first) -> np.ndarray:
    """Drafting time of SD rounds (see the module docstring); ``first`` marks first rounds."""
    b, c, i, l, first = np.broadcast_arrays(_f(batch_size), _f(context_tokens), _f(input_tokens),
                                            _f(speculation_length), np.asarray(first, dtype=bool))
    decode = decode_passes_s(pred, b, np.where(first, i, c), l - first)
    prefill = np.zeros(b.shape)
    if first.any():
        prefill[first] = pred.latency_s(b[first], i[first], 0.0)
    return decode + prefill + job_overhead_s(pred, b, l)


def sd_verify_s(pred, batch_size, context_tokens, input_tokens, speculation_length, first) -> np.ndarray:
    """Verification time of SD rounds: x = l + 1 at c = C, or x = I + l + 1 at c = 0 in the first round."""
    b, c, i, l, first = np.broadcast_arrays(_f(batch_size), _f(context_tokens), _f(input_tokens),
                                            _f(speculation_length), np.asarray(first, dtype=bool))
    return (pred.latency_s(b, np.where(first, i + l + 1.0, l + 1.0), np.where(first, 0.0, c))
            + job_overhead_s(pred, b, l))


def ad_round_s(pred, batch_size, context_tokens, input_tokens, first) -> np.ndarray:
    """One AD pass: prefill (x = I, c = 0) in the first round, else x = 1 at c = C."""
    b, c, i, first = np.broadcast_arrays(_f(batch_size), _f(context_tokens), _f(input_tokens),
                                         np.asarray(first, dtype=bool))
    return pred.latency_s(b, np.where(first, i, 1.0), np.where(first, 0.0, c)) + job_overhead_s(pred, b, 1.0)
