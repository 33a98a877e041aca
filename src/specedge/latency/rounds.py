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
from numba import njit

from specedge.latency.compute import AffineCompute
from specedge.latency.flops import flops_coefficients
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


def _affine_constants(pred: AffineCompute) -> tuple[float, ...]:
    """The scalars :meth:`AffineCompute.latency_s` and :meth:`~AffineCompute.coefficients` (x = 1) combine, each
    computed by the same Python expressions as there: (c1, c2, 4 J h, 2 h, ffn_factor h2, a(x=1), k(x=1))."""
    card = pred.model
    h = float(card.hidden_size)
    a1, k1 = flops_coefficients(card, 1.0, ffn_factor=pred.ffn_factor)
    return (float(pred.c1_s_per_flop), float(pred.c2_s), 4.0 * card.num_layers * h, 2.0 * h,
            float(pred.ffn_factor * card.ffn_size), float(a1), float(k1))


def _no_overhead(pred) -> bool:
    ovh = pred.job_overhead
    return ovh is None or ovh.is_zero


@njit(cache=True)
def _sd_jobs_affine(b_in, c_in, i_in, l_in, first, dc, vc):
    """:func:`sd_draft_s` and :func:`sd_verify_s` of affine predictors without host overhead, job by job: the
    same IEEE operations in the same order as the numpy expressions (no reassociation, no fused multiply-add),
    so the results are bit-identical, without ~40 small-array temporaries per call."""
    n_jobs = b_in.size
    td = np.empty(n_jobs)
    tv = np.empty(n_jobs)
    for j in range(n_jobs):
        b = float(b_in[j])
        c = float(c_in[j])
        i = float(i_in[j])
        l = float(l_in[j])
        f = first[j]
        # drafting: decode passes (closed form), plus the prefill pass in a first round
        c0 = i if f else c
        n = l - (1.0 if f else 0.0)
        p = dc[0] * b * dc[5] + dc[1]
        q = dc[0] * b * dc[6]
        t = n * p + q * (n * c0 + 0.5 * n * (n - 1.0))
        pre = 0.0
        if f:
            pre = dc[0] * b * (dc[2] * i * (dc[3] + 0.0 + i + dc[4])) + dc[1]
        td[j] = t + pre + 0.0
        # verification: x = I + l + 1 at c = 0 in a first round, else x = l + 1 at c = C
        x = i + l + 1.0 if f else l + 1.0
        cv = 0.0 if f else c
        tv[j] = vc[0] * b * (vc[2] * x * (vc[3] + cv + x + vc[4])) + vc[1] + 0.0
    return td, tv


def sd_jobs_s(draft, verify, batch_size, context_tokens, input_tokens, speculation_length, first):
    """(:func:`sd_draft_s`, :func:`sd_verify_s`) of the same jobs; a compiled loop when both predictors are
    affine without host overhead and the inputs are 1-d arrays of one length (the replay's case), else the two
    functions."""
    arrays = (batch_size, context_tokens, input_tokens, speculation_length, first)
    if (type(draft) is AffineCompute and type(verify) is AffineCompute
            and _no_overhead(draft) and _no_overhead(verify)
            and all(type(a) is np.ndarray and a.ndim == 1 and a.size == arrays[0].size for a in arrays)
            and first.dtype == np.bool_):
        return _sd_jobs_affine(batch_size, context_tokens, input_tokens, speculation_length, first,
                               _affine_constants(draft), _affine_constants(verify))
    return (sd_draft_s(draft, batch_size, context_tokens, input_tokens, speculation_length, first),
            sd_verify_s(verify, batch_size, context_tokens, input_tokens, speculation_length, first))
