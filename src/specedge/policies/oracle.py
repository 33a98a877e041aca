"""The oracle: exhaustive search under the exact recursion, for small K.

Every contiguous partition of the tasks sorted by input length (2^(K-1) of them) x every l in 1..l_max, with the
closed-form bandwidth, each timed exactly (:class:`~specedge.policies.exact.ExactMakespan`: the replay's makespan
under deterministic acceptance, all candidates in one vectorised recursion). Its optimum is the reference that
optimality gaps are measured against: the best plan with one l, contiguous sorted batches and the paper's
bandwidth. A policy with a speculation length per batch can beat it (a negative gap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.errors import PolicyError
from specedge.latency import memory
from specedge.plan import Plan
from specedge.policies.base import register_policy
from specedge.policies.dp import _check_mode, bandwidth_hz, l_range, make_plan, sorted_order
from specedge.policies.exact import ExactMakespan

#: Largest K the oracle accepts (2^(K-1) partitions x l_max candidates).
MAX_TASKS = 12


def partitions(k: int) -> list[list[tuple[int, int]]]:
    """All 2^(k-1) partitions of 0..k-1 into contiguous batches, as [(j, i), ...]."""
    out = []
    for mask in range(1 << (k - 1)):
        cuts = [c + 1 for c in range(k - 1) if mask >> c & 1]
        edges = [0, *cuts, k]
        out.append(list(zip(edges[:-1], edges[1:])))
    return out


@dataclass(frozen=True, eq=False)
class OracleResult:
    """Every candidate's exact makespan: ``makespan_s[l_index, partition_index]`` (inf when memory fails)."""

    order: np.ndarray
    l_values: np.ndarray
    partitions: list
    makespan_s: np.ndarray

    @property
    def best(self) -> tuple[list, int, float]:
        r, c = np.unravel_index(int(np.argmin(self.makespan_s)), self.makespan_s.shape)
        return self.partitions[c], int(self.l_values[r]), float(self.makespan_s[r, c])


def search(sc, *, l_max: int = 10, bandwidth: str = "optimal", mode: str = "sd-pipeline") -> OracleResult:
    """Time every candidate (see the module docstring)."""
    k = sc.num_tasks
    if k > MAX_TASKS:
        raise PolicyError(f"the oracle is exhaustive and takes K <= {MAX_TASKS} tasks, got K = {k}")
    _check_mode(mode)
    order = sorted_order(sc)
    bw = bandwidth_hz(sc, bandwidth)
    lv = l_range(l_max) if mode != "ad" else np.array([1])
    parts = partitions(k)
    ok = np.ones(len(parts), dtype=bool)
    if mode != "ad":
        ins = sc.tasks["input_tokens"].to_numpy()[order]
        outs = sc.tasks["output_tokens"].to_numpy()[order]
        j, i = np.triu_indices(k + 1, 1)
        fits = dict(zip(zip(j.tolist(), i.tolist()), memory.sbs_fits(
            sc, i - j, np.array([ins[a:b].max() for a, b in zip(j, i)]),
            np.array([outs[a:b].max() for a, b in zip(j, i)])).tolist()))
        ok = np.array([all(fits[s] for s in p) for p in parts])
        if not ok.any():
            raise PolicyError("no feasible plan: no partition of the tasks fits the SBS memory")
    ev = ExactMakespan(sc, order, bw, mode)
    feasible = [p for p, good in zip(parts, ok) if good]
    out = np.full((lv.size, len(parts)), np.inf)
    keys = [[(j, i, int(l)) for j, i in p] for l in lv for p in feasible]
    ms = ev.makespans(keys).reshape(lv.size, len(feasible))
    out[:, ok] = ms
    return OracleResult(order=order, l_values=lv, partitions=parts, makespan_s=out)


@register_policy("oracle")
@dataclass(frozen=True)
class Oracle:
    """Exhaustive search over contiguous partitions of the sorted tasks x l in 1..l_max (K <= 12)."""

    l_max: int = 10
    bandwidth: str = "optimal"
    mode: str = "sd-pipeline"

    def plan(self, sc) -> Plan:
        res = search(sc, l_max=self.l_max, bandwidth=self.bandwidth, mode=self.mode)
        bounds, l, ms = res.best
        return make_plan(sc, res.order, bounds, l, bandwidth_hz(sc, self.bandwidth), self.mode, policy="oracle",
                         exact_makespan_s=ms, candidates=int(np.isfinite(res.makespan_s).sum()))
