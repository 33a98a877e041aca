"""Per-batch costs under the paper's planning assumption, vectorised over candidate batches (for optimizers).

Planning assumption [P]: a batch of b tasks padded to input I_max runs until every member has produced O_max
tokens; each round commits L(l, alpha) tokens (``expected_tokens_per_round``), so it takes N = ceil(O_max / L)
rounds, keeps b members throughout, and its KV context at round n is C_n = I_max + n L. Round structure: see
:mod:`specedge.latency.rounds`. In AD mode a round is one target pass committing one token (N = O_max).

All functions broadcast their array arguments (candidate batches); no Python loop over rounds: closed-form sums
when the predictor is affine, a (candidates x rounds) grid otherwise. Every job also pays the predictors'
per-job host overhead (:mod:`specedge.latency.host_overhead`, 0 in the paper's model) [A].
"""

from __future__ import annotations

import numpy as np

from specedge.latency import rounds as _rounds
from specedge.latency.acceptance import expected_tokens_per_round as _L
from specedge.latency.compute import AffineCompute
from specedge.latency.host_overhead import job_overhead_s


def expected_tokens_per_round(l, alpha) -> np.ndarray:
    """L(l, alpha) = (1 - alpha^(l+1)) / (1 - alpha) (alpha = 1 -> l + 1) [P]."""
    return _L(l, alpha)


def planned_rounds(output_max_tokens, speculation_length, alpha, *, mode: str = "sd") -> np.ndarray:
    """N = ceil(O_max / L(l, alpha)) (AD: O_max); at least 1."""
    o = np.asarray(output_max_tokens, dtype=np.float64)
    if mode == "ad":
        return np.maximum(np.ceil(o), 1).astype(np.int64)
    per_round = _L(speculation_length, alpha)
    return np.maximum(np.ceil(o / per_round - 1e-9), 1).astype(np.int64)


def _alpha(sc, alpha):
    return sc.alpha if alpha is None else alpha


def batch_round_times_s(sc, batch_size, input_max_tokens, output_max_tokens, speculation_length, *,
                        alpha=None, mode: str = "sd"):
    """Per-round (draft_s, verify_s) of ONE batch under the planning assumption (scalars in, arrays of N out).

    ``mode``: "sd" (both stages) or "ad" (draft_s is zeros, verify_s the target's passes).
    """
    a = _alpha(sc, alpha)
    n = int(planned_rounds(output_max_tokens, speculation_length, a, mode=mode))
    rnd = np.arange(n, dtype=np.float64)
    first = rnd == 0
    if mode == "ad":
        ctx = float(input_max_tokens) + rnd
        verify = _rounds.ad_round_s(sc.verify_compute, batch_size, ctx, input_max_tokens, first)
        return np.zeros(n), verify
    per_round = float(_L(speculation_length, a))
    ctx = float(input_max_tokens) + rnd * per_round
    draft = _rounds.sd_draft_s(sc.draft_compute, batch_size, ctx, input_max_tokens, speculation_length, first)
    verify = _rounds.sd_verify_s(sc.verify_compute, batch_size, ctx, input_max_tokens, speculation_length, first)
    return draft, verify


def _affine_sum(pred: AffineCompute, b, x, c_first, c_step, count):
    """Sum over k = 0..count-1 of latency(b, x, c_first + k c_step) for an affine predictor."""
    p, q = pred.coefficients(b, x)
    return count * p + q * (count * c_first + c_step * 0.5 * count * (count - 1.0))


def batch_stage_times_s(sc, batch_size, input_max_tokens, output_max_tokens, speculation_length, *,
                        alpha=None, mode: str = "sd"):
    """(draft_s, verify_s, rounds): total drafting time, total verification time and number of rounds of a batch.

    Vectorised over candidates: every argument broadcasts. ``mode="ad"`` gives zero drafting and the target's
    one-token passes.
    """
    a = _alpha(sc, alpha)
    b, i, o, l = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                       (batch_size, input_max_tokens, output_max_tokens, speculation_length)))
    n = planned_rounds(o, l, a, mode=mode).astype(np.float64)
    later = n - 1.0
    if mode == "ad":
        first = _rounds.ad_round_s(sc.verify_compute, b, i, i, True)
        if isinstance(sc.verify_compute, AffineCompute):
            rest = _affine_sum(sc.verify_compute, b, 1.0, i + 1.0, 1.0, later)
        else:
            rest = _grid_sum(lambda rr: sc.verify_compute.latency_s(b[..., None], 1.0, i[..., None] + rr), later)
        rest = rest + later * job_overhead_s(sc.verify_compute, b, 1.0)  # host overhead of the later jobs [A]
        return np.zeros(b.shape), first + rest, n.astype(np.int64)
    L = _L(l, a)
    draft_first = _rounds.sd_draft_s(sc.draft_compute, b, i, i, l, True)
    verify_first = _rounds.sd_verify_s(sc.verify_compute, b, i, i, l, True)
    dpred, vpred = sc.draft_compute, sc.verify_compute
    if isinstance(dpred, AffineCompute):
        # rounds n = 1..N-1, passes j = 0..l-1 at c = I + n L + j
        p, q = dpred.coefficients(b, 1.0)
        sum_c = later * i + L * 0.5 * later * n  # sum_{n=1}^{N-1} (I + n L)
        draft_rest = later * l * p + q * (l * sum_c + later * 0.5 * l * (l - 1.0))
        draft_rest = draft_rest + later * job_overhead_s(dpred, b, l)  # host overhead of the later jobs [A]
    else:
        draft_rest = _grid_sum(
            lambda rr: _rounds.sd_draft_s(dpred, b[..., None], i[..., None] + rr * L[..., None], i[..., None],
                                          l[..., None], False), later)
    if isinstance(vpred, AffineCompute):
        verify_rest = _affine_sum(vpred, b, l + 1.0, i + L, L, later) + later * job_overhead_s(vpred, b, l)
    else:
        verify_rest = _grid_sum(
            lambda rr: _rounds.sd_verify_s(vpred, b[..., None], i[..., None] + rr * L[..., None], i[..., None],
                                           l[..., None], False), later)
    return draft_first + draft_rest, verify_first + verify_rest, n.astype(np.int64)


def _grid_sum(per_round, later: np.ndarray) -> np.ndarray:
    """Sum per_round(r) over r = 1..later (broadcast over a trailing rounds axis, masked)."""
    n_max = int(later.max()) if later.size else 0
    if n_max <= 0:
        return np.zeros(later.shape)
    rr = np.arange(1, n_max + 1, dtype=np.float64)
    values = per_round(rr)
    return np.where(rr <= later[..., None], values, 0.0).sum(axis=-1)
