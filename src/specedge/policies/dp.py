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

**What it solves, exactly.** Over the tasks in one fixed order (sorted by input, ties by output, then index),
every partition into contiguous batches that each pass the SBS memory check, and one l per plan (or, with
``per_batch_l``, one l per batch): the minimum of sum_m c_m. That optimum is exact for the surrogate; the
checks are an independent reference written from these equations (bench/reference_dp.py: same plan, same cost)
and one batch worked by hand (tests/policies/test_cost_by_hand.py).

**Where it is wrong** [A]. (1) The surrogate is not the makespan (fill, drain, round dependency; see above).
(2) The planning assumption keeps all b members to O_max, padded to I_max, and commits the expected L(l, alpha)
per round, where the replay lets members leave and draws acceptance. (3) Only contiguous batches of the
input-sorted order are searched; a batch of non-neighbours can be better when outputs vary a lot. (4) The
bandwidth is fixed first (closed form), not optimised jointly. :mod:`specedge.policies.refine` repairs (1)-(2) on
the exact makespan; the oracle measures what is left on small instances.

**Speed.** States i = 0..K, transitions j < i, all l at once. Set-up (O(K log K + K W)): the memory check is
monotone in the batch (b, I_max and O_max only grow), so the feasible lengths ending at each e are a prefix
1..tmax[e], found by a binary search for all e at once with O(1) range maxima of the outputs (a sparse table);
W = max tmax is the SBS memory cap (about 1,000 tasks for LLaMA-68M on the paper's SBS, 3,500 for the 7.1M
SmolLM2 draft). With an affine compute predictor D and V are affine in the batch size b for fixed (I_max, O_max, l)
(host overhead included: a + s b + t b x), and O_max of the batches ending at e takes only as many values as the
suffix maxima of the outputs within W (about ln W), so the stage times are evaluated (with
:func:`specedge.latency.planning.batch_stage_times_s`) at b = 1 and b = 2 for those few (end, O_max) pairs only
and extended linearly in b inside the compiled recurrence (:mod:`specedge.policies.dp_kernel`), which walks the
suffix maxima of each end as it scans the lengths: O(K W l) work, O(K l + pairs x l) memory, nothing K x W.
``extra_modes`` runs the per-l DP of other modes (the refinement's serial plan) in the same pass over the same D
and V. Other predictors evaluate every (l, t) directly, one end at a time (numpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from specedge.errors import PolicyError
from specedge.latency import memory, network, planning
from specedge.latency.compute import AffineCompute
from specedge.plan import MODES, Plan
from specedge.policies import dp_kernel
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
    picks l inside each batch (None unless asked), with its cost ``per_batch_cost_s``; ``extra``: the per-l DPs
    of ``extra_modes`` (mode -> (cost_by_l_s, bounds_by_l)).
    """

    order: np.ndarray
    l_values: np.ndarray
    mode: str
    cost_by_l_s: np.ndarray
    bounds_by_l: list = field(repr=False)
    per_batch: tuple | None = field(default=None, repr=False)
    per_batch_cost_s: float = float("nan")
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.cost_by_l_s))

    @property
    def best_l(self) -> int:
        return int(self.l_values[self.best_index])

    @property
    def best_bounds(self) -> list:
        return self.bounds_by_l[self.best_index]


def _range_max_table(values: np.ndarray) -> list[np.ndarray]:
    """Sparse table: ``table[p][i]`` = max(values[i : i + 2^p]) (O(K log K), for O(1) range maxima)."""
    table = [values]
    span = 1
    while 2 * span <= values.size:
        prev = table[-1]
        table.append(np.maximum(prev[:-span], prev[span:]))
        span *= 2
    return table


def _range_max(table, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo:hi]) for arrays of ranges with hi > lo."""
    p = np.floor(np.log2(hi - lo)).astype(np.int64)
    out = np.empty(lo.shape)
    for q in np.unique(p).tolist():
        sel = p == q
        out[sel] = np.maximum(table[q][lo[sel]], table[q][hi[sel] - (1 << q)])
    return out


def _feasible_lengths(sc, inputs, outputs_mem, mode: str, max_batch: int | None) -> np.ndarray:
    """tmax[e]: how many batch lengths ending at e (inclusive) are allowed: memory fits for lengths 1..tmax[e].

    The memory need grows with the batch (b, I_max = inputs[e] for sorted inputs, O_max), so the feasible
    lengths are a prefix; a binary search over the length for all e at once with O(1) range maxima of the
    outputs (:func:`_range_max_table`) finds it in O(K log K), without any K x K array.
    """
    k = inputs.size
    hi = np.arange(1, k + 1)
    if max_batch is not None:
        hi = np.minimum(hi, int(max_batch))
    if mode == "ad":
        return hi
    table = _range_max_table(np.asarray(outputs_mem, dtype=np.float64))
    ends = np.arange(k)
    lo = np.zeros(k, dtype=np.int64)  # the largest length known to fit (0: none yet)
    while (lo < hi).any():
        act = np.flatnonzero(lo < hi)
        mid = (lo[act] + hi[act] + 1) // 2
        e = ends[act]
        ok = memory.sbs_fits(sc, mid, inputs[e], _range_max(table, e - mid + 1, e + 1))
        lo[act] = np.where(ok, mid, lo[act])
        hi[act] = np.where(ok, hi[act], mid - 1)
    if (lo < 1).any():
        e = int(np.flatnonzero(lo < 1)[0])
        raise PolicyError(f"no feasible plan: a batch of the single task with I={int(inputs[e])} does not fit the "
                          f"SBS memory (sbs_memory_bytes={sc.params.sbs_memory_bytes:g})")
    return lo


def _linear_in_batch(sc) -> bool:
    return isinstance(sc.draft_compute, AffineCompute) and isinstance(sc.verify_compute, AffineCompute)


def solve(sc, *, l_values: Sequence[int] = tuple(range(1, 11)), mode: str = "sd-pipeline", alpha=None,
          per_l: bool = True, per_batch_l: bool = False, max_batch: int | None = None, order=None,
          outputs=None, extra_modes: Sequence[str] = ()) -> DPSolution:
    """Run the DP (see the module docstring).

    ``alpha``: one value, or one per l (trace-aware planning); default ``sc.alpha``. ``per_l``: the paper's DP,
    one partition per l; ``per_batch_l``: also the DP whose transition picks the best l of each batch.
    ``max_batch``: an extra cap on the batch size. ``order``: the task order (default sorted by input);
    ``outputs``: planning output lengths per task (default the tasks' ``output_tokens``; memory always uses the
    real ones). ``extra_modes``: other SD modes whose per-l DP runs in the same pass over the same D and V
    (``DPSolution.extra[mode] = (cost_by_l_s, bounds_by_l)``), e.g. the serial plan the refinement starts from.
    """
    _check_mode(mode)
    extra_modes = tuple(_check_mode(m) for m in extra_modes)
    if mode == "ad" and extra_modes:
        raise PolicyError("extra_modes needs an SD mode (AD has no drafting)")
    lv = np.asarray(list(l_values), dtype=np.int64)
    if mode == "ad":
        lv = lv[:1]
    if lv.size == 0 or (lv < 1).any():
        raise PolicyError(f"speculation lengths must be >= 1, got {list(l_values)}")
    order = sorted_order(sc) if order is None else np.asarray(order, dtype=np.int64)
    inputs = sc.tasks["input_tokens"].to_numpy()[order].astype(np.float64)
    real_out = sc.tasks["output_tokens"].to_numpy()[order].astype(np.float64)
    plan_out = real_out if outputs is None else np.asarray(outputs, dtype=np.float64)[order]
    k = order.size
    a_l = np.broadcast_to(np.asarray(sc.alpha if alpha is None else alpha, dtype=np.float64), lv.shape)
    if mode == "ad":
        a_l = a_l[:1]
    if not (np.diff(inputs) >= 0).all():
        raise PolicyError("the DP needs tasks ordered by input length (a contiguous batch is padded to its last)")
    tmax = _feasible_lengths(sc, inputs, real_out, mode, max_batch).astype(np.int64)
    # O_max of a batch is taken in float32 (exact for token counts), as the set-up always has
    out32 = plan_out.astype(np.float32)
    modes = ((mode,) if per_l else ()) + extra_modes
    run = _affine_pass if _linear_in_batch(sc) else _generic_pass
    f, arg, g, garg = run(sc, inputs, out32, tmax, lv, a_l, "ad" if mode == "ad" else "sd", modes,
                          mode if per_batch_l else None)
    by_mode = {m: (f[q, k, :].copy(), [_backtrack(arg[q, :, r], k) for r in range(lv.size)])
               for q, m in reversed(list(enumerate(modes)))}  # the first of equal modes wins, as before
    per_batch = None
    if per_batch_l:
        bounds, ls, i = [], [], k
        while i > 0:
            t = int(garg[0, i])
            bounds.append((i - 1 - t, i))
            ls.append(int(lv[garg[1, i]]))
            i = i - 1 - t
        per_batch = (bounds[::-1], ls[::-1])
    cost_by_l, bounds_by_l = (f[0, k, :].copy(), by_mode[mode][1]) if per_l else (np.full(lv.size, np.inf), [])
    return DPSolution(order=order, l_values=lv, mode=mode, cost_by_l_s=cost_by_l, bounds_by_l=bounds_by_l,
                      per_batch=per_batch, per_batch_cost_s=float(g[k]) if per_batch_l else float("nan"),
                      extra={m: by_mode[m] for m in extra_modes})


def _affine_pass(sc, inputs, out32, tmax, lv, a_l, smode, modes, batch_mode):
    """The compiled recurrence (:mod:`specedge.policies.dp_kernel`) over stage times evaluated at b = 1 and 2 for
    the distinct (end, O_max) pairs only (D and V are affine in b for fixed I_max, O_max and l)."""
    start, pair_end, pair_omax = dp_kernel.suffix_max_pairs(out32, int(tmax.max()))
    d, v, _ = planning.batch_stage_times_s(sc, np.array([1.0, 2.0])[:, None, None], inputs[pair_end][None, None, :],
                                           pair_omax.astype(np.float64)[None, None, :], lv[None, :, None],
                                           alpha=a_l[None, :, None], mode=smode)
    d1, dd, v1, dv = (np.ascontiguousarray(x.T) for x in (d[0], d[1] - d[0], v[0], v[1] - v[0]))
    run = modes if batch_mode is None or batch_mode in modes else modes + (batch_mode,)  # it scans its mode's costs
    codes = np.array([dp_kernel.MODE_CODES[m] for m in run], dtype=np.int64)
    batch_code = -1 if batch_mode is None else dp_kernel.MODE_CODES[batch_mode]
    f, arg, g, garg = dp_kernel.affine_dp(out32, tmax, start, d1, dd, v1, dv, codes, batch_code)
    return f[: len(modes)], arg[: len(modes)], g, garg


def _generic_pass(sc, inputs, out32, tmax, lv, a_l, smode, modes, batch_mode):
    """Other predictors: every (l, length) of one end at a time, priced directly (numpy), the same recurrence."""
    k, nl = out32.size, lv.size
    f = np.full((len(modes), k + 1, nl), np.inf)
    f[:, 0, :] = 0.0
    arg = np.zeros((len(modes), k + 1, nl), dtype=np.int64)
    g = np.full(k + 1, np.inf)
    g[0] = 0.0
    garg = np.zeros((2, k + 1), dtype=np.int64)
    cols = np.arange(nl)
    for e in range(k):
        t_n = int(tmax[e])
        lo = e + 1 - t_n
        o_max = np.maximum.accumulate(out32[lo : e + 1][::-1])[None, None, :]
        d, v, _ = planning.batch_stage_times_s(sc, np.arange(1.0, t_n + 1.0)[None, :], inputs[e], o_max,
                                               lv[:, None, None], alpha=a_l[:, None, None], mode=smode)
        d, v = (np.broadcast_to(x, (nl, 1, t_n))[:, 0, :].T for x in (d, v))  # (t, l)
        for q, m in enumerate(modes):
            tot = f[q, lo : e + 1][::-1] + combine(m, d, v)
            best = np.argmin(tot, axis=0)
            f[q, e + 1] = tot[best, cols]
            arg[q, e + 1] = best
        if batch_mode is not None:
            cost = combine(batch_mode, d, v)
            l_best = np.argmin(cost, axis=1)
            tot = g[lo : e + 1][::-1] + cost[np.arange(t_n), l_best]
            t_best = int(np.argmin(tot))
            g[e + 1], garg[0, e + 1], garg[1, e + 1] = tot[t_best], t_best, l_best[t_best]
    return f, arg, g, garg


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
