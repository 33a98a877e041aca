"""An independent reference for the paper's DP, written from the equations alone.

It imports nothing from :mod:`specedge.latency` or :mod:`specedge.policies`: it reads the scenario's inputs (the
task table, the parameters, the draft card, alpha) and prices each forward pass with the scenario's own compute
predictors (``sc.draft_compute.latency_s`` / ``sc.verify_compute.latency_s``, the model's input, not what the
optimizer computes). Everything the optimizer derives from those -- the task order, L, N, the contexts, the pass
list of every round, D_m, V_m, the surrogate c_m, the SBS memory check and the recurrence -- is re-derived here
from docs/model.md sections 4-5 and the paper:

    order      tasks sorted by input length, ties by output length, then index                       [P]
    L(l, a)    = (1 - a^(l+1)) / (1 - a)      (a = 1: l + 1)                                          [P]
    N          = ceil(O_max / L)  (AD: O_max), at least 1; O/L within 1e-9 of an integer counts as it  [P]/[A]
    C_n        = I_max + n L                  (KV context at the start of round n)                     [P]
    draft      round 0: T_d(b, I, 0) + sum_{j=0}^{l-2} T_d(b, 1, I + j);
               round n >= 1: sum_{j=0}^{l-1} T_d(b, 1, C_n + j)                                          [A]
    verify     round 0: T_v(b, I + l + 1, 0);  round n >= 1: T_v(b, l + 1, C_n)                         [A]
    AD         round 0: T_v(b, I, 0);  round n >= 1: T_v(b, 1, I + n);  no drafting                     [A]
    host       every job (one stage of one round) also pays a + s b + t b x, x = l (SD) or 1 (AD), with
               (a, s, t) the predictor's ``job_overhead`` when it carries one (0 in the paper's model)      [A]
    D_m, V_m   = the sums of those passes over n = 0..N-1
    c_m        = max(D_m, V_m) (sd-pipeline) | D_m + V_m (sd-serial) | V_m (ad)                        [A]
    memory     W_draft + 2 J h' beta b (I_max + O_max) <= M_SBS  (h' = h, or the GQA width if enabled)  [P]
    f[i]       = min_{j < i, batch (j, i) fits} f[j] + c(j, i),   f[0] = 0;  the best l is kept           [P]

Every pass is written out and priced (one predictor call over a batch's pass list per stage), so this is
O(l_max K^2) predictor calls over O(N l) passes each: correct and slow. tests/policies check
:func:`specedge.policies.dp.solve` against it (same plan, same cost) and bench/optimizer.py times both.
Ties: among equal costs the smallest last batch wins (j scanned downwards, strict improvement), the same tie
rule as the DP, so equal plans are expected, not only equal costs.
"""

from __future__ import annotations

import math

import numpy as np

MODES = ("sd-pipeline", "sd-serial", "ad")


def order_by_input(sc) -> list[int]:
    """Task indices sorted by (input tokens, output tokens, index)."""
    ins = [int(v) for v in sc.tasks["input_tokens"]]
    outs = [int(v) for v in sc.tasks["output_tokens"]]
    return sorted(range(len(ins)), key=lambda k: (ins[k], outs[k], k))


def tokens_per_round(l: int, alpha: float) -> float:
    """L(l, alpha): expected tokens a round commits."""
    if alpha >= 1.0:
        return l + 1.0
    return (1.0 - alpha ** (l + 1)) / (1.0 - alpha)


def rounds(o_max: float, l: int, alpha: float, mode: str) -> int:
    if mode == "ad":
        return max(int(math.ceil(o_max)), 1)
    return max(int(math.ceil(o_max / tokens_per_round(l, alpha) - 1e-9)), 1)


def _passes(pred, b: int, xs: np.ndarray, cs: np.ndarray) -> float:
    """Sum of the latencies of the listed passes (one predictor call over the list)."""
    if xs.size == 0:
        return 0.0
    return float(np.sum(np.broadcast_to(pred.latency_s(float(b), xs, cs), xs.shape)))


def _host_s(pred, b: int, x: float) -> float:
    """Per-job host overhead a + s b + t b x of a predictor (0 without one)."""
    ovh = getattr(pred, "job_overhead", None)
    if ovh is None:
        return 0.0
    return float(ovh.a_s) + float(ovh.per_seq_s) * b + float(ovh.per_token_s) * b * x


def stage_times(sc, b: int, i_max: float, o_max: float, l: int, *, mode: str = "sd-pipeline",
                alpha: float | None = None) -> tuple[float, float]:
    """(D, V): total drafting and verification time of one batch under the planning assumption.

    The pass lists are written out (every pass of every round, as numpy arrays) and summed.
    """
    a = sc.alpha if alpha is None else alpha
    n = rounds(o_max, l, a, mode)
    i_max = float(i_max)
    later = np.arange(1, n, dtype=np.float64)  # rounds 1..N-1
    if mode == "ad":
        xs = np.r_[i_max, np.ones(n - 1)]
        cs = np.r_[0.0, i_max + later]
        return 0.0, _passes(sc.verify_compute, b, xs, cs) + n * _host_s(sc.verify_compute, b, 1.0)
    ctx = i_max + later * tokens_per_round(l, a)  # C_n
    passes = np.arange(l, dtype=np.float64)
    # draft: round 0 = prefill (x = I, c = 0) + l - 1 decodes at c = I + j; round n = l decodes at c = C_n + j
    dx = np.r_[i_max, np.ones(l - 1), np.ones(later.size * l)]
    dc = np.r_[0.0, i_max + passes[: l - 1], (ctx[:, None] + passes[None, :]).ravel()]
    # verify: round 0 = prompt + drafts (x = I + l + 1, c = 0); round n = x = l + 1 at c = C_n
    vx = np.r_[i_max + l + 1.0, np.full(later.size, l + 1.0)]
    vc = np.r_[0.0, ctx]
    return (_passes(sc.draft_compute, b, dx, dc) + n * _host_s(sc.draft_compute, b, float(l)),
            _passes(sc.verify_compute, b, vx, vc) + n * _host_s(sc.verify_compute, b, float(l)))


def batch_cost(sc, b: int, i_max: float, o_max: float, l: int, mode: str = "sd-pipeline",
               alpha: float | None = None) -> float:
    """The surrogate c of one batch."""
    d, v = stage_times(sc, b, i_max, o_max, l, mode=mode, alpha=alpha)
    if mode == "sd-pipeline":
        return max(d, v)
    if mode == "sd-serial":
        return d + v
    if mode == "ad":
        return v
    raise ValueError(f"unknown mode {mode!r}")


def fits_memory(sc, b: int, i_max: float, o_max: float) -> bool:
    """The SBS memory check of one batch (see the module docstring)."""
    p, card = sc.params, sc.draft
    width = card.hidden_size * card.num_kv_heads // card.num_attention_heads if p.kv_cache_uses_gqa \
        else card.hidden_size
    per_token = 2.0 * card.num_layers * width * p.kv_bytes_per_value
    return card.num_params * card.bytes_per_param + per_token * b * (i_max + o_max) <= p.sbs_memory_bytes


def partition_cost(sc, order, bounds, l: int, mode: str = "sd-pipeline") -> float:
    """Sum of c_m over a contiguous partition [(j, i), ...] of ``order`` (inf if a batch does not fit)."""
    ins = [int(sc.tasks["input_tokens"].iloc[k]) for k in order]
    outs = [int(sc.tasks["output_tokens"].iloc[k]) for k in order]
    total = 0.0
    for j, i in bounds:
        i_max, o_max = max(ins[j:i]), max(outs[j:i])
        if mode != "ad" and not fits_memory(sc, i - j, i_max, o_max):
            return math.inf
        total += batch_cost(sc, i - j, i_max, o_max, l, mode)
    return total


def reference_solve(sc, l_values=range(1, 11), mode: str = "sd-pipeline"):
    """Returns (bounds [(j, i), ...] over the sorted order, best l, surrogate cost without the upload)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    order = order_by_input(sc)
    ins = [int(sc.tasks["input_tokens"].iloc[k]) for k in order]
    outs = [int(sc.tasks["output_tokens"].iloc[k]) for k in order]
    k = len(order)
    best = (None, None, math.inf)
    for l in (list(l_values)[:1] if mode == "ad" else l_values):
        f = [0.0] + [math.inf] * k
        arg = [0] * (k + 1)
        for i in range(1, k + 1):
            o_max = 0
            for j in range(i - 1, -1, -1):  # batches (j, i), growing
                o_max = max(o_max, outs[j])
                i_max = ins[i - 1]  # sorted: the last member has the longest input
                if mode != "ad" and not fits_memory(sc, i - j, i_max, o_max):
                    break  # the memory need only grows with the batch
                cost = f[j] + batch_cost(sc, i - j, i_max, o_max, int(l), mode)
                if cost < f[i]:
                    f[i], arg[i] = cost, j
        if f[k] < best[2]:
            bounds, i = [], k
            while i > 0:
                bounds.append((arg[i], i))
                i = arg[i]
            best = (bounds[::-1], int(l), f[k])
    return best
