"""Exact-makespan refinement of the DP plan: a portfolio of starts and a local search under the exact recursion.

The DP's surrogate (sum of per-batch bottleneck times) is not the pipeline's makespan: it ignores fill, drain
and the round dependency, so it often picks one big batch where two or three overlap better. This policy:

1. builds a pool of candidate plans: the paper DP's best partition for every l, the per-batch-l DP plan, the
   SD-without-pipeline DP's plan (pipelining the same plan is never slower; computed in the same DP pass), and
   the batchings of the baselines this policy can express (one batch per task, memory-greedy batches, equal
   halves), each at every l, or, with more than ``MANY_BATCHES`` batches, at the l its baseline picks (the
   least summed surrogate), which is exactly that baseline's plan;
2. times the pool exactly (:class:`~specedge.policies.exact.ExactMakespan`: the replay's makespan under
   deterministic acceptance L(l, alpha)); a plan with more than ``MANY_BATCHES`` batches only when its lower
   bound min ready + max(sum D, sum V) is below the best smaller plan (else it cannot win);
3. from the ``starts`` best distinct candidates runs a steepest-descent local search under the same exact
   makespan. Moves: shift a batch boundary by 1, 2, 4, ... tasks; merge two neighbouring batches; split a batch
   at 1/4, 1/3, 1/2, 2/3 or 3/4 of its length; l of one batch +-1 (``per_batch_l``) and l of every batch +-1. A
   neighbourhood is timed in one vectorised call; a move is taken when it shortens the makespan by more than
   ``tolerance`` (relative); the search stops at a local optimum or after ``max_iterations``.

Every candidate keeps the closed-form bandwidth, the input-length order and the SBS memory check. Because the
pool holds the baselines' plans, the result is never worse (exactly timed) than any baseline it can express.

Cost: one DP pass (per-l, per-batch-l and serial together; O(K W l), W the SBS memory cap), O(pool x batches x
rounds) for the exact pool, and per local-search iteration O(moves x batches x rounds), about O(M log K) moves
for M batches. At K = 10 the pool is what it was before the many-batch rules, so the plans are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.errors import PolicyError
from specedge.latency import memory
from specedge.plan import Plan
from specedge.policies.base import register_policy
from specedge.policies.baselines import greedy_max_partition, heuristic_partition
from specedge.policies.dp import batch_costs_s, bandwidth_hz, l_range, make_plan, solve, sorted_order
from specedge.policies.exact import ExactMakespan

_SPLITS = (0.25, 1 / 3, 0.5, 2 / 3, 0.75)
#: A move is taken when it shortens the exact makespan by more than this fraction [A]. 1e-5 (was 1e-6): on the
#: 50-instance gap set (K = 10) both give the same plans (worst gap 0.00 %, mean -0.142 %); at K = 10^4 1e-5 stops
#: after 11 instead of 24 iterations with the same final gain (0.007 %), half the search time.
TOLERANCE = 1e-5


class _Fits:
    """Cached SBS memory check of contiguous batches (j, i) over a task order."""

    def __init__(self, sc, order):
        self.sc = sc
        self.ins = sc.tasks["input_tokens"].to_numpy()[order]
        self.outs = sc.tasks["output_tokens"].to_numpy()[order]
        self.cache: dict[tuple[int, int], bool] = {}

    def __call__(self, j: int, i: int) -> bool:
        key = (j, i)
        if key not in self.cache:
            self.cache[key] = bool(memory.sbs_fits(self.sc, i - j, self.ins[j:i].max(), self.outs[j:i].max()))
        return self.cache[key]

    def plan_fits(self, cand) -> bool:
        """Every batch (j, i, l) of a candidate fits; unseen batches are checked in one vectorised call."""
        new = [(j, i) for j, i, _ in cand if (j, i) not in self.cache]
        if len(new) > 8:
            sizes = np.array([b - a for a, b in new])
            ok = memory.sbs_fits(self.sc, sizes, np.array([self.ins[a:b].max() for a, b in new]),
                                 np.array([self.outs[a:b].max() for a, b in new]))
            self.cache.update(zip(new, ok.tolist()))
        return all(self(j, i) for j, i, _ in cand)


def neighbours(cand: tuple, k: int, l_lo: int, l_hi: int, per_batch_l: bool) -> list[tuple]:
    """Moves from a candidate ((j, i, l), ...) (see the module docstring); may contain duplicates."""
    out = []
    m_n = len(cand)
    for m in range(m_n - 1):
        (j0, x, l0), (_, i1, l1) = cand[m], cand[m + 1]
        step = 1
        while step < max(x - j0, i1 - x):
            for y in (x - step, x + step):
                if j0 < y < i1:
                    out.append(cand[:m] + ((j0, y, l0), (y, i1, l1)) + cand[m + 2:])
            step *= 2
        for l in {l0, l1}:
            out.append(cand[:m] + ((j0, i1, l),) + cand[m + 2:])
    for m, (j, i, l) in enumerate(cand):
        n = i - j
        for y in sorted({j + int(round(n * s)) for s in _SPLITS}):
            if j < y < i:
                out.append(cand[:m] + ((j, y, l), (y, i, l)) + cand[m + 1:])
        if per_batch_l:
            for dl in (-1, 1):
                if l_lo <= l + dl <= l_hi:
                    out.append(cand[:m] + ((j, i, l + dl),) + cand[m + 1:])
    for dl in (-1, 1):
        if all(l_lo <= c[2] + dl <= l_hi for c in cand):
            out.append(tuple((j, i, l + dl) for j, i, l in cand))
    return out


@dataclass(frozen=True, eq=False)
class SearchResult:
    candidate: tuple
    makespan_s: float
    start_makespan_s: float
    iterations: int
    evaluations: int


def local_search(ev: ExactMakespan, starts: list[tuple], fits, *, l_lo: int, l_hi: int, per_batch_l: bool,
                 max_iterations: int, tolerance: float) -> SearchResult:
    """Steepest descent from each start; returns the best local optimum found."""
    k = ev.order.size
    start_ms = ev.makespans(starts)
    best, best_ms = None, np.inf
    iterations = 0
    seen: set = set(starts)
    for cand, ms in zip(starts, start_ms.tolist()):
        for _ in range(max_iterations):
            moves = [c for c in dict.fromkeys(neighbours(cand, k, l_lo, l_hi, per_batch_l))
                     if c not in seen and all(fits(j, i) for j, i, _ in c)]
            if not moves:
                break
            seen.update(moves)
            times = ev.makespans(moves)
            iterations += 1
            r = int(np.argmin(times))
            if not times[r] < ms * (1.0 - tolerance):
                break
            cand, ms = moves[r], float(times[r])
        if ms < best_ms:
            best, best_ms = cand, ms
    return SearchResult(best, best_ms, float(start_ms.min()), iterations, ev.evaluations)


#: A baseline batching with more batches than this enters the pool at its own l only (the l its policy picks by
#: the surrogate), not at every l: timing a plan exactly costs O(batches x rounds).
MANY_BATCHES = 64


def candidate_pool(sc, order, l_values, *, mode: str = "sd-pipeline", baselines: bool = True,
                   alpha=None, outputs=None) -> list[tuple]:
    """The DP's plans (per l, per-batch l) and, with ``baselines``, the SD-without-pipeline DP's plan and the
    expressible baselines' batchings (every l, or only their own l when they have > MANY_BATCHES batches)."""
    sol = solve(sc, l_values=l_values, mode=mode, per_l=True, per_batch_l=True, order=order, alpha=alpha,
                outputs=outputs, extra_modes=("sd-serial",) if baselines else ())
    pool = [tuple((j, i, int(l)) for j, i in bounds) for l, bounds in zip(sol.l_values, sol.bounds_by_l)]
    bounds, ls = sol.per_batch
    pool.append(tuple((j, i, int(l)) for (j, i), l in zip(bounds, ls)))
    if baselines:
        cost, by_l = sol.extra["sd-serial"]
        r = int(np.argmin(cost))
        pool.append(tuple((j, i, int(sol.l_values[r])) for j, i in by_l[r]))  # pipelined <= serial, same plan
        k = order.size
        ins = sc.tasks["input_tokens"].to_numpy()[order]
        outs = sc.tasks["output_tokens"].to_numpy()[order]
        for part in (greedy_max_partition(sc, order), heuristic_partition(sc, order, 2),
                     [(t, t + 1) for t in range(k)]):
            ls_part = sol.l_values
            if len(part) > MANY_BATCHES:  # the baseline's own l: least summed surrogate (fixed_batching_plan)
                j = np.array([a for a, _ in part])
                i = np.array([b for _, b in part])
                c = batch_costs_s(sc, i - j, np.maximum.reduceat(ins, j), np.maximum.reduceat(outs, j),
                                  sol.l_values, mode, alpha=alpha).sum(axis=1)
                ls_part = sol.l_values[[int(np.argmin(c))]]
            pool.extend(tuple((j, i, int(l)) for j, i in part) for l in ls_part)
    return list(dict.fromkeys(pool))


def pool_makespans(ev: ExactMakespan, pool: list[tuple]) -> np.ndarray:
    """Exact makespans of the pool; a plan with more than MANY_BATCHES batches is timed only when its lower bounds
    (first :meth:`ExactMakespan.early_lower_bound`, over the first rounds only, then
    :meth:`ExactMakespan.lower_bounds`) are below the best plan with fewer batches, else it gets +inf (it cannot
    be the best)."""
    many = np.array([len(c) > MANY_BATCHES for c in pool], dtype=bool)
    times = np.full(len(pool), np.inf)
    if (~many).any():
        times[~many] = ev.makespans([c for c, m in zip(pool, many) if not m])
    if many.any():
        big = np.flatnonzero(many)
        big = big[np.array([ev.early_lower_bound(pool[r]) < times.min() for r in big], dtype=bool)]
        lb = ev.lower_bounds([pool[r] for r in big]) if big.size else np.zeros(0)
        keep = big[lb < times.min()]
        if keep.size:
            times[keep] = ev.makespans([pool[r] for r in keep])
    return times


def refine(sc, *, l_max: int = 10, bandwidth: str = "optimal", per_batch_l: bool = True, starts: int = 3,
           max_iterations: int = 100, tolerance: float = TOLERANCE, baselines: bool = True, alpha=None,
           tokens_per_round=None, outputs=None, name: str = "dp-refined") -> Plan:
    """The refined plan (see the module docstring); ``alpha``/``tokens_per_round``/``outputs`` let trace-aware
    planning reuse it with its own acceptance model."""
    lv = l_range(l_max)
    if not isinstance(starts, (int, np.integer)) or starts < 1:
        raise PolicyError(f"starts must be an integer >= 1, got {starts!r}")
    order = sorted_order(sc)
    bw = bandwidth_hz(sc, bandwidth)
    fits = _Fits(sc, order)
    pool = [c for c in candidate_pool(sc, order, lv, baselines=baselines, alpha=alpha, outputs=outputs)
            if fits.plan_fits(c)]
    if not per_batch_l:
        pool = [c for c in pool if len({x[2] for x in c}) == 1]
    ev = ExactMakespan(sc, order, bw, "sd-pipeline", tokens_per_round=tokens_per_round, outputs=outputs)
    times = pool_makespans(ev, pool)
    ranked = [pool[r] for r in np.argsort(times, kind="stable")[: int(starts)]]
    res = local_search(ev, ranked, fits, l_lo=int(lv[0]), l_hi=int(lv[-1]), per_batch_l=per_batch_l,
                       max_iterations=int(max_iterations), tolerance=float(tolerance))
    bounds = [(j, i) for j, i, _ in res.candidate]
    ls = [l for _, _, l in res.candidate]
    return make_plan(sc, order, bounds, ls, bw, "sd-pipeline", policy=name, exact_makespan_s=res.makespan_s,
                     pool_best_s=float(times.min()), pool_size=len(pool), iterations=res.iterations,
                     evaluations=res.evaluations)


@register_policy("dp-refined")
@dataclass(frozen=True)
class RefinedDP:
    """The DP plan repaired under the exact makespan (see the module docstring)."""

    l_max: int = 10
    bandwidth: str = "optimal"
    per_batch_l: bool = True
    starts: int = 3
    max_iterations: int = 100
    tolerance: float = TOLERANCE

    def plan(self, sc) -> Plan:
        return refine(sc, l_max=self.l_max, bandwidth=self.bandwidth, per_batch_l=self.per_batch_l,
                      starts=self.starts, max_iterations=self.max_iterations, tolerance=self.tolerance)
