"""Every scheme the paper compares against (docs/model.md sections 5 and 6), each a registered policy.

Unless a baseline says otherwise it uses the closed-form bandwidth, serves in pipelined SD mode and, for a batching
it fixes, picks l in 1..l_max by the paper's per-batch surrogate (:func:`specedge.policies.dp.batch_costs_s`), so
that each one differs from the paper's optimizer in the one thing it names.

- ``ad``: AD serving [P]: the target alone on the MBS, one token per pass, the paper optimizer's batching (the
  DP with the AD surrogate V when the draft cannot run on the SBS at all).
- ``sd-serial``: SD without pipeline [P]: a batch's drafting and verification never overlap another batch's; the
  DP plans for it (surrogate D + V, exact under the planning assumption).
- ``no-batching``: every task its own batch (M = K) [P].
- ``fixed-l``: the paper's DP with l fixed (default 7) [P].
- ``static-batching`` [A, our definition]: batches of a fixed size (default 8) in arrival order (task index),
  without sorting by input length, the way a server with a fixed ``max_batch_size`` fills batches; the size
  shrinks to the largest that makes every batch fit the SBS memory.
- ``max-batching`` [P]: tasks sorted by input, each batch as large as the SBS memory allows (greedy).
- ``heuristic-batching`` [A, our definition]: tasks sorted by input, cut into ``num_batches`` (default 2, the
  fewest that let the two pipeline stages overlap) batches of equal size; more batches if memory demands.
- ``uniform-bandwidth``: the paper's optimizer with b_k = B / K instead of the closed form [P].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.errors import PolicyError
from specedge.latency import memory
from specedge.plan import Plan
from specedge.policies.base import register_policy
from specedge.policies.dp import (
    PaperDP,
    _check_mode,
    bandwidth_hz,
    batch_costs_s,
    l_range,
    make_plan,
    solve,
    sorted_order,
    upload_makespan_s,
)


def _lengths(sc, order, bounds):
    ins = sc.tasks["input_tokens"].to_numpy()[order]
    outs = sc.tasks["output_tokens"].to_numpy()[order]
    j = np.array([a for a, _ in bounds], dtype=np.int64)
    i = np.array([b for _, b in bounds], dtype=np.int64)
    if j.size and j[0] == 0 and i[-1] == ins.size and (j[1:] == i[:-1]).all() and (i > j).all():
        return i - j, np.maximum.reduceat(ins, j), np.maximum.reduceat(outs, j)  # a partition: one pass
    imax = np.array([ins[a:b].max() for a, b in bounds])
    omax = np.array([outs[a:b].max() for a, b in bounds])
    return i - j, imax, omax


def fixed_batching_plan(sc, order, bounds, *, l_values, mode: str = "sd-pipeline", bandwidth: str = "optimal",
                        name: str, **meta) -> Plan:
    """A plan for a given batching: the l in ``l_values`` with the least surrogate cost."""
    sizes, imax, omax = _lengths(sc, order, bounds)
    cost = batch_costs_s(sc, sizes, imax, omax, l_values, mode).sum(axis=1)
    best = int(np.argmin(cost))
    bw = bandwidth_hz(sc, bandwidth)
    l = int(np.asarray(l_values)[best]) if mode != "ad" else 1
    return make_plan(sc, order, bounds, l, bw, mode, policy=name,
                     surrogate_s=upload_makespan_s(sc, bw) + float(cost[best]), **meta)


def greedy_max_partition(sc, order) -> list[tuple[int, int]]:
    """Contiguous batches over ``order``, each as large as the SBS memory allows."""
    ins = sc.tasks["input_tokens"].to_numpy()[order]
    outs = sc.tasks["output_tokens"].to_numpy()[order]
    k = order.size
    bounds, j = [], 0
    while j < k:
        size = np.arange(1, k - j + 1)
        fits = memory.sbs_fits(sc, size, np.maximum.accumulate(ins[j:]), np.maximum.accumulate(outs[j:]))
        n = int(np.argmin(fits)) if not fits.all() else k - j
        n = max(n, 1)  # a single task that does not fit is reported by the replay's memory check
        bounds.append((j, j + n))
        j += n
    return bounds


def equal_partition(k: int, num_batches: int) -> list[tuple[int, int]]:
    """``num_batches`` contiguous batches of sizes differing by at most one."""
    edges = np.linspace(0, k, min(num_batches, k) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def fits_all(sc, order, bounds) -> bool:
    sizes, imax, omax = _lengths(sc, order, bounds)
    return bool(memory.sbs_fits(sc, sizes, imax, omax).all())


def heuristic_partition(sc, order, num_batches: int = 2) -> list[tuple[int, int]]:
    """Equal-size batches over ``order``: ``num_batches``, or the fewest above it that fit the SBS memory."""
    k = order.size
    for m in range(max(1, int(num_batches)), k + 1):
        bounds = equal_partition(k, m)
        if fits_all(sc, order, bounds):
            return bounds
    return equal_partition(k, k)


def static_partition(sc, batch_size: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Arrival order, fixed batch size (shrunk until every batch fits)."""
    order = np.arange(sc.num_tasks)
    k = order.size
    for size in range(min(int(batch_size), k), 0, -1):
        bounds = [(j, min(j + size, k)) for j in range(0, k, size)]
        if fits_all(sc, order, bounds):
            return order, bounds
    return order, [(j, j + 1) for j in range(k)]


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise PolicyError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


@register_policy("ad")
@dataclass(frozen=True)
class ADServing:
    """AD serving: the paper optimizer's batches, served by the target alone (one token per pass)."""

    l_max: int = 10

    def plan(self, sc) -> Plan:
        try:
            base = PaperDP(l_max=self.l_max).plan(sc)
            batching = "paper-dp"
        except PolicyError:  # SD cannot run (the draft does not fit the SBS): batch for AD itself
            base = PaperDP(mode="ad").plan(sc)
            batching = "dp (ad surrogate)"
        return Plan(batches=base.batches, speculation_length=(1,) * len(base.batches),
                    bandwidth_hz=base.bandwidth_hz, mode="ad", meta={"policy": "ad", "batching": batching})


@register_policy("sd-serial")
@dataclass(frozen=True)
class SDSerial:
    """SD without pipeline: the DP with the serial surrogate D + V, served in ``sd-serial`` mode."""

    l_max: int = 10

    def plan(self, sc) -> Plan:
        plan = PaperDP(l_max=self.l_max, mode="sd-serial").plan(sc)
        return Plan(plan.batches, plan.speculation_length, plan.bandwidth_hz, plan.mode,
                    {**plan.meta, "policy": "sd-serial"})


@register_policy("no-batching")
@dataclass(frozen=True)
class NoBatching:
    """Every task its own batch; l by the surrogate."""

    l_max: int = 10

    def plan(self, sc) -> Plan:
        order = sorted_order(sc)
        return fixed_batching_plan(sc, order, [(k, k + 1) for k in range(order.size)], l_values=l_range(self.l_max),
                                   name="no-batching")


@register_policy("fixed-l")
@dataclass(frozen=True)
class FixedL:
    """The paper's DP with the speculation length fixed at ``l``."""

    l: int = 7

    def plan(self, sc) -> Plan:
        l = _positive("l", self.l)
        sol = solve(sc, l_values=[l])
        bw = bandwidth_hz(sc, "optimal")
        return make_plan(sc, sol.order, sol.best_bounds, l, bw, "sd-pipeline", policy="fixed-l",
                         surrogate_s=upload_makespan_s(sc, bw) + float(sol.cost_by_l_s[0]))


@register_policy("static-batching")
@dataclass(frozen=True)
class StaticBatching:
    """Fixed-size batches in arrival order (see the module docstring)."""

    batch_size: int = 8
    l_max: int = 10

    def plan(self, sc) -> Plan:
        order, bounds = static_partition(sc, _positive("batch_size", self.batch_size))
        return fixed_batching_plan(sc, order, bounds, l_values=l_range(self.l_max), name="static-batching")


@register_policy("max-batching")
@dataclass(frozen=True)
class MaxBatching:
    """Sorted by input, each batch as large as the SBS memory allows."""

    l_max: int = 10

    def plan(self, sc) -> Plan:
        order = sorted_order(sc)
        return fixed_batching_plan(sc, order, greedy_max_partition(sc, order), l_values=l_range(self.l_max),
                                   name="max-batching")


@register_policy("heuristic-batching")
@dataclass(frozen=True)
class HeuristicBatching:
    """Sorted by input, ``num_batches`` equal batches (more if memory demands)."""

    num_batches: int = 2
    l_max: int = 10

    def plan(self, sc) -> Plan:
        order = sorted_order(sc)
        bounds = heuristic_partition(sc, order, _positive("num_batches", self.num_batches))
        return fixed_batching_plan(sc, order, bounds, l_values=l_range(self.l_max), name="heuristic-batching")


@register_policy("uniform-bandwidth")
@dataclass(frozen=True)
class UniformBandwidth:
    """The paper's optimizer with uniform bandwidth b_k = B / K."""

    l_max: int = 10
    mode: str = "sd-pipeline"

    def plan(self, sc) -> Plan:
        plan = PaperDP(l_max=self.l_max, bandwidth="uniform", mode=_check_mode(self.mode)).plan(sc)
        return Plan(plan.batches, plan.speculation_length, plan.bandwidth_hz, plan.mode,
                    {**plan.meta, "policy": "uniform-bandwidth"})
