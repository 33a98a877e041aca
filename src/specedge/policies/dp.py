"""The paper's optimizer: closed-form bandwidth, tasks sorted by input length, a DP over contiguous batches.

The problem splits [P]: the bandwidth only moves the upload term, so it takes the closed form (every upload ends
together, :func:`specedge.latency.network.equal_finish_allocation`); for each l in 1..l_max a dynamic programme
over the tasks sorted by input length picks the batches; the best l is kept.

**The per-batch surrogate cost** [A: the paper's DP needs costs that add up; it does not say which]. Under the
planning assumption (:mod:`specedge.latency.planning`: a batch keeps its b members for N = ceil(O_max / L(l, alpha))
rounds, padded to I_max) batch m has total drafting time D_m and total verification time V_m. The DP minimises

    T_up + sum_m c_m,   c_m = max(D_m, V_m)          (pipelined SD: the busier stage's time for the batch)
                        c_m = D_m + V_m               (SD without pipeline, exact under the planning assumption)
                        c_m = V_m                     (AD serving: the target alone)

subject to the SBS memory check of every batch (:func:`specedge.latency.memory.sbs_fits`). ``max(D_m, V_m)``
ignores the pipeline's fill and drain and the round dependency (a batch cannot draft round n + 1 before round n
is verified), which is why one large batch looks cheaper to it than it is; :mod:`specedge.policies.refine`
repairs the plan under the exact recursion and :mod:`specedge.policies.oracle` measures the gap.

**Speed.** States i = 0..K, transitions j < i, all l at once: one numpy step per i over the (l, j) grid. With an
affine compute predictor D and V are affine in the batch size b for fixed (I_max, O_max, l), and O_max of the
batches ending at i takes only as many values as the suffix maxima of the outputs (about ln K), so the stage
times are evaluated (with :func:`specedge.latency.planning.batch_stage_times_s`) at b = 1 and b = 2 for those
few (end, O_max) pairs only and extended linearly in b. Other predictors evaluate every (l, j) directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from specedge.errors import PolicyError
from specedge.latency import memory, network, planning
from specedge.latency.compute import AffineCompute
from specedge.plan import MODES, Plan
from specedge.policies.base import register_policy

#: Surrogate cost of a batch from its total drafting and verification times, per serving mode.
SURROGATES = {
    "sd-pipeline": "max(D, V)",
    "sd-serial": "D + V",
    "ad": "V",
}


def combine(mode: str, draft_s, verify_s):
    """The per-batch surrogate cost c_m from D_m and V_m (see the module docstring)."""
    if mode == "sd-pipeline":
        return np.maximum(draft_s, verify_s)
    if mode == "sd-serial":
        return draft_s + verify_s
    if mode == "ad":
        return verify_s
    raise PolicyError(f"unknown serving mode {mode!r}; expected one of {', '.join(MODES)}")


# -------------------------------------------------------------------------------------------- shared helpers
def sorted_order(sc) -> np.ndarray:
    """Task indices sorted by input length (ties by output length, then index) [P: the paper sorts by input]."""
    t = sc.tasks
    return np.lexsort((np.arange(sc.num_tasks), t["output_tokens"].to_numpy(), t["input_tokens"].to_numpy()))


def bandwidth_hz(sc, kind: str = "optimal") -> np.ndarray:
    """Per-task uplink bandwidth: ``optimal`` (the closed form [P]) or ``uniform`` (B / K, the baseline [P])."""
    if kind == "optimal":
        return sc.optimal_bandwidth_hz()
    if kind == "uniform":
        return sc.uniform_bandwidth_hz()
    raise PolicyError(f"bandwidth must be 'optimal' or 'uniform', got {kind!r}")


def upload_makespan_s(sc, bw) -> float:
    """T_up = the slowest upload under allocation ``bw``."""
    return float(network.upload_times_s(sc.tasks["payload_bits"].to_numpy(),
                                        sc.tasks["spectral_efficiency"].to_numpy(), bw).max())


def l_range(l_max: int) -> np.ndarray:
    if isinstance(l_max, bool) or not isinstance(l_max, (int, np.integer)) or l_max < 1:
        raise PolicyError(f"l_max must be an integer >= 1, got {l_max!r}")
    return np.arange(1, int(l_max) + 1)


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise PolicyError(f"unknown serving mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def make_plan(sc, order, bounds, speculation_length, bw, mode: str, **meta) -> Plan:
    """A plan from contiguous ``bounds`` [(j, i), ...] over the task ``order``; one l per batch (or one int)."""
    ls = speculation_length
    if np.ndim(ls) == 0:
        ls = [int(ls)] * len(bounds)
    batches = tuple(tuple(int(x) for x in order[j:i]) for j, i in bounds)
    return Plan(batches=batches, speculation_length=tuple(int(x) for x in ls), bandwidth_hz=tuple(np.asarray(bw)),
                mode=mode, meta=meta)


def batch_costs_s(sc, sizes, input_max, output_max, l_values, mode: str, *, alpha=None) -> np.ndarray:
    """Surrogate cost of given batches at every l: an (l, batches) array (memory not checked here)."""
    l = np.asarray(l_values, dtype=np.float64)[:, None]
    a = sc.alpha if alpha is None else np.asarray(alpha, dtype=np.float64).reshape(-1, 1)
    d, v, _ = planning.batch_stage_times_s(sc, np.asarray(sizes)[None, :], np.asarray(input_max)[None, :],
                                           np.asarray(output_max)[None, :], l, alpha=a,
                                           mode="ad" if mode == "ad" else "sd")
    return combine(mode, d, v)


def partition_fits(sc, order, bounds, mode: str) -> bool:
    """Does every batch of a contiguous partition fit the SBS memory (always true in AD mode)?"""
    if mode == "ad":
        return True
    ins = sc.tasks["input_tokens"].to_numpy()[order]
    outs = sc.tasks["output_tokens"].to_numpy()[order]
    j = np.array([b[0] for b in bounds])
    i = np.array([b[1] for b in bounds])
    return bool(memory.sbs_fits(sc, i - j, np.maximum.reduceat(ins, j), np.maximum.reduceat(outs, j)).all())


# -------------------------------------------------------------------------------------------------- the DP
@dataclass(frozen=True, eq=False)
class DPSolution:
    """What :func:`solve` returns.

    ``bounds_by_l[k]``: the best partition [(j, i), ...] of the sorted tasks at l = ``l_values[k]``, with surrogate
    ``cost_by_l_s[k]`` (sum of c_m, upload excluded); ``per_batch``: the partition and per-batch l of the DP that
    picks l inside each batch (None unless asked), with its cost ``per_batch_cost_s``.
    """

    order: np.ndarray
    l_values: np.ndarray
    mode: str
    cost_by_l_s: np.ndarray
    bounds_by_l: list = field(repr=False)
    per_batch: tuple | None = field(default=None, repr=False)
    per_batch_cost_s: float = float("nan")

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.cost_by_l_s))

    @property
    def best_l(self) -> int:
        return int(self.l_values[self.best_index])

    @property
    def best_bounds(self) -> list:
        return self.bounds_by_l[self.best_index]


def _suffix_max_pairs(outputs: np.ndarray):
    """For every batch end e (inclusive) and length t + 1: O_max = max(outputs[e - t .. e]) and the id of the
    distinct (e, O_max) pair it belongs to. Returns (cm (K, K), pid (K, K), pair_end (P,), pair_omax (P,))."""
    k = outputs.size
    e = np.arange(k)[:, None]
    idx = e - np.arange(k)[None, :]
    a = np.where(idx >= 0, outputs[np.maximum(idx, 0)], -np.inf)
    cm = np.maximum.accumulate(a, axis=1)
    flag = np.empty(cm.shape, dtype=bool)
    flag[:, 0] = True
    flag[:, 1:] = cm[:, 1:] > cm[:, :-1]
    pid = np.cumsum(flag, axis=1, dtype=np.int64) - 1
    counts = flag.sum(axis=1)
    pid += np.r_[0, np.cumsum(counts)[:-1]][:, None]
    rows, cols = np.nonzero(flag)
    return cm, pid, rows, cm[rows, cols]


def _feasible_lengths(sc, inputs, outputs_mem, cm_mem, mode: str, max_batch: int | None) -> np.ndarray:
    """tmax[e]: how many batch lengths ending at e are allowed (memory fits for lengths 1..tmax[e])."""
    k = inputs.size
    tmax = np.arange(1, k + 1)
    if max_batch is not None:
        tmax = np.minimum(tmax, int(max_batch))
    if mode != "ad":
        b = np.arange(1, k + 1)[None, :]
        fits = memory.sbs_fits(sc, b, inputs[:, None], np.where(np.isfinite(cm_mem), cm_mem, 0.0))
        fits &= np.isfinite(cm_mem)
        first_bad = np.where(fits.all(axis=1), k, np.argmin(fits, axis=1))
        tmax = np.minimum(tmax, first_bad)
    if (tmax < 1).any():
        e = int(np.flatnonzero(tmax < 1)[0])
        raise PolicyError(f"no feasible plan: a batch of the single task with I={int(inputs[e])} does not fit the "
                          f"SBS memory (sbs_memory_bytes={sc.params.sbs_memory_bytes:g})")
    return tmax


def _linear_in_batch(sc) -> bool:
    return isinstance(sc.draft_compute, AffineCompute) and isinstance(sc.verify_compute, AffineCompute)


def solve(sc, *, l_values: Sequence[int] = tuple(range(1, 11)), mode: str = "sd-pipeline", alpha=None,
          per_l: bool = True, per_batch_l: bool = False, max_batch: int | None = None, order=None,
          outputs=None) -> DPSolution:
    """Run the DP (see the module docstring).

    ``alpha``: one value, or one per l (trace-aware planning); default ``sc.alpha``. ``per_l``: the paper's DP,
    one partition per l; ``per_batch_l``: also the DP whose transition picks the best l of each batch.
    ``max_batch``: an extra cap on the batch size. ``order``: the task order (default sorted by input);
    ``outputs``: planning output lengths per task (default the tasks' ``output_tokens``; memory always uses the
    real ones).
    """
    _check_mode(mode)
    lv = np.asarray(list(l_values), dtype=np.int64)
    if mode == "ad":
        lv = lv[:1]
    if lv.size == 0 or (lv < 1).any():
        raise PolicyError(f"speculation lengths must be >= 1, got {list(l_values)}")
    order = sorted_order(sc) if order is None else np.asarray(order, dtype=np.int64)
    inputs = sc.tasks["input_tokens"].to_numpy()[order].astype(np.float64)
    real_out = sc.tasks["output_tokens"].to_numpy()[order].astype(np.float64)
    plan_out = real_out if outputs is None else np.asarray(outputs, dtype=np.float64)[order]
    # inputs are sorted for the default order; a general order needs the running max of inputs
    k = order.size
    a_l = np.broadcast_to(np.asarray(sc.alpha if alpha is None else alpha, dtype=np.float64), lv.shape)
    if mode == "ad":
        a_l = a_l[:1]
    cm, pid, pair_end, pair_omax = _suffix_max_pairs(plan_out)
    cm_mem = cm if outputs is None else _suffix_max_pairs(real_out)[0]
    sorted_inputs = bool((np.diff(inputs) >= 0).all())
    if sorted_inputs:
        imax_pair = inputs[pair_end]
    else:
        raise PolicyError("the DP needs tasks ordered by input length (a contiguous batch is padded to its last)")
    tmax = _feasible_lengths(sc, inputs, real_out, cm_mem, mode, max_batch)
    smode = "ad" if mode == "ad" else "sd"
    linear = _linear_in_batch(sc)
    if linear:
        b12 = np.array([1.0, 2.0])[:, None, None]
        d, v, _ = planning.batch_stage_times_s(sc, b12, imax_pair[None, None, :], pair_omax[None, None, :],
                                               lv[None, :, None], alpha=a_l[None, :, None], mode=smode)
        d1, dd, v1, dv = d[0], d[1] - d[0], v[0], v[1] - v[0]
    nl = lv.size
    f = np.full((nl, k + 1), np.inf) if per_l else None
    arg = np.zeros((nl, k + 1), dtype=np.int64) if per_l else None
    g = np.full(k + 1, np.inf) if per_batch_l else None
    garg = np.zeros((2, k + 1), dtype=np.int64) if per_batch_l else None
    if per_l:
        f[:, 0] = 0.0
    if per_batch_l:
        g[0] = 0.0
    bm1 = np.arange(k, dtype=np.float64)
    rows = np.arange(nl)
    for e in range(k):
        t_n = int(tmax[e])
        if linear:
            ids = pid[e, :t_n]
            x = bm1[:t_n]
            cost = combine(mode, d1[:, ids] + x * dd[:, ids], v1[:, ids] + x * dv[:, ids])
        else:
            dg, vg, _ = planning.batch_stage_times_s(sc, bm1[None, :t_n] + 1.0, inputs[e], cm[e, None, :t_n],
                                                     lv[:, None], alpha=a_l[:, None], mode=smode)
            cost = combine(mode, dg, vg)
        lo = e + 1 - t_n
        if per_l:
            tot = f[:, lo : e + 1][:, ::-1] + cost
            best = np.argmin(tot, axis=1)
            f[:, e + 1] = tot[rows, best]
            arg[:, e + 1] = best
        if per_batch_l:
            lbest = np.argmin(cost, axis=0)
            cmin = cost[lbest, np.arange(t_n)]
            tot1 = g[lo : e + 1][::-1] + cmin
            best1 = int(np.argmin(tot1))
            g[e + 1] = tot1[best1]
            garg[0, e + 1] = best1
            garg[1, e + 1] = lbest[best1]
    bounds_by_l = []
    if per_l:
        for r in range(nl):
            bounds_by_l.append(_backtrack(arg[r], k))
    per_batch = None
    if per_batch_l:
        bounds, ls, i = [], [], k
        while i > 0:
            t = int(garg[0, i])
            bounds.append((i - 1 - t, i))
            ls.append(int(lv[garg[1, i]]))
            i = i - 1 - t
        per_batch = (bounds[::-1], ls[::-1])
    return DPSolution(order=order, l_values=lv, mode=mode,
                      cost_by_l_s=f[:, k].copy() if per_l else np.full(nl, np.inf), bounds_by_l=bounds_by_l,
                      per_batch=per_batch, per_batch_cost_s=float(g[k]) if per_batch_l else float("nan"))


def _backtrack(arg_row: np.ndarray, k: int) -> list:
    bounds, i = [], k
    while i > 0:
        j = i - 1 - int(arg_row[i])
        bounds.append((j, i))
        i = j
    return bounds[::-1]


# -------------------------------------------------------------------------------------------------- policies
def _solution_plan(sc, sol: DPSolution, bw, name: str, *, per_batch: bool = False) -> Plan:
    t_up = upload_makespan_s(sc, bw)
    if per_batch:
        bounds, ls = sol.per_batch
        return make_plan(sc, sol.order, bounds, ls, bw, sol.mode, policy=name,
                         surrogate_s=t_up + sol.per_batch_cost_s, surrogate=SURROGATES[sol.mode])
    return make_plan(sc, sol.order, sol.best_bounds, sol.best_l, bw, sol.mode, policy=name,
                     surrogate_s=t_up + float(sol.cost_by_l_s[sol.best_index]), surrogate=SURROGATES[sol.mode])


@register_policy("paper-dp")
@dataclass(frozen=True)
class PaperDP:
    """The paper's optimizer: closed-form bandwidth, sort by input, a DP per l in 1..l_max, keep the best l.

    ``bandwidth``: "optimal" or "uniform"; ``mode``: the serving mode the DP plans for (its surrogate follows it).
    """

    l_max: int = 10
    bandwidth: str = "optimal"
    mode: str = "sd-pipeline"

    def plan(self, sc) -> Plan:
        bw = bandwidth_hz(sc, self.bandwidth)
        sol = solve(sc, l_values=l_range(self.l_max), mode=_check_mode(self.mode))
        return _solution_plan(sc, sol, bw, getattr(self, "policy_name", "paper-dp"))


@register_policy("dp-per-batch-l")
@dataclass(frozen=True)
class PerBatchLDP:
    """The DP with a speculation length per batch: each transition (j, i) takes min over l of c(j, i, l)."""

    l_max: int = 10
    bandwidth: str = "optimal"
    mode: str = "sd-pipeline"

    def plan(self, sc) -> Plan:
        bw = bandwidth_hz(sc, self.bandwidth)
        sol = solve(sc, l_values=l_range(self.l_max), mode=_check_mode(self.mode), per_l=False, per_batch_l=True)
        return _solution_plan(sc, sol, bw, "dp-per-batch-l", per_batch=True)
