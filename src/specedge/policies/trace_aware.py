"""Trace-aware planning: the acceptance statistics of the trace instead of one global alpha.

The paper plans with L(l, alpha) = (1 - alpha^(l+1)) / (1 - alpha) tokens per round, one alpha for every position
and every task. A recorded trace says more (:class:`specedge.latency.acceptance.AcceptanceStats`):

- **per position**: the conditional acceptance alpha_i of draft position i (``alpha_i``; beyond the recorded
  draft length, ``alpha_tail``). The expected tokens of a round at length l is then
  1 + E[min(G, l)] = 1 + sum_{i<=l} S(i), S(i) = prod_{j<=i} alpha_j (:func:`tokens_per_round`), which for real
  drafts (acceptance falling with position) is below what one fitted alpha predicts at long l and above at
  short l. Planning uses, for each l, the alpha that gives exactly those tokens (``alpha_eff(l)``);
- **per task** (``per_task=True``): which recorded request each task replays (the replay's assignment for
  ``seed``; in a deployment, a request's category) and that request's mean tokens per round tau_k. A task's
  planning output length becomes O_k * tau / tau_k [A: the task's relative speed is the same at every l], so
  fast-accepting tasks need fewer rounds and the batching can group tasks by the rounds they need.

The DP, the candidate pool and the exact-makespan refinement of :mod:`.refine` then run with this acceptance
model. With an ``expected`` or ``iid`` source both reduce to the paper's L(l, alpha).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.latency.acceptance import fit_iid_alpha
from specedge.plan import Plan
from specedge.policies.base import register_policy
from specedge.policies.dp import bandwidth_hz, l_range, make_plan, solve, upload_makespan_s
from specedge.policies.refine import refine


def survival(stats, max_l: int) -> np.ndarray:
    """S(i) = P(G >= i), i = 1..max_l, from alpha_i (nan positions and positions beyond use alpha_tail)."""
    tail = stats.alpha_tail if stats.alpha_tail is not None else stats.alpha
    cond = np.full(max_l, float(tail if stats.alpha_i else stats.alpha))
    known = np.asarray(stats.alpha_i[:max_l], dtype=np.float64)
    cond[: known.size] = np.where(np.isfinite(known), known, tail)
    return np.cumprod(cond)


def tokens_per_round(stats, l_values) -> np.ndarray:
    """1 + E[min(G, l)] = 1 + sum_{i <= l} S(i) for each l."""
    lv = np.asarray(l_values, dtype=np.int64)
    s = np.r_[0.0, np.cumsum(survival(stats, int(lv.max())))]
    return 1.0 + s[lv]


def effective_alpha(stats, l_values) -> np.ndarray:
    """alpha_eff(l): the i.i.d. alpha whose L(l, alpha) equals :func:`tokens_per_round` at l."""
    return np.array([fit_iid_alpha(float(t), int(l)) for t, l in
                     zip(tokens_per_round(stats, l_values), np.asarray(l_values))])


def task_outputs(sc, seed: int = 0) -> np.ndarray | None:
    """Planning output length per task from each task's recorded request (None for sources without one)."""
    from specedge.replay import assignment

    units = assignment(sc, seed=seed)
    stats = sc.acceptance_stats
    if units is None or stats.per_unit_tau is None or not stats.tau:
        return None
    speed = np.asarray(stats.per_unit_tau, dtype=np.float64)[units] / float(stats.tau)
    return sc.tasks["output_tokens"].to_numpy(np.float64) / np.maximum(speed, 1e-6)


@register_policy("trace-aware")
@dataclass(frozen=True)
class TraceAwareDP:
    """Plans with the trace's per-position (and, with ``per_task``, per-task) acceptance; see the module doc.

    ``refined``: run the exact-makespan refinement (else the per-batch-l DP alone). ``seed``: the replay seed
    whose task-to-request assignment ``per_task`` planning reads.
    """

    l_max: int = 10
    per_task: bool = False
    refined: bool = True
    seed: int = 0

    def plan(self, sc) -> Plan:
        lv = l_range(self.l_max)
        stats = sc.acceptance_stats
        tokens = tokens_per_round(stats, lv)
        alpha_l = effective_alpha(stats, lv)
        outputs = task_outputs(sc, self.seed) if self.per_task else None
        meta = {"tokens_per_round": [round(float(t), 6) for t in tokens], "per_task": outputs is not None}
        if self.refined:
            table = dict(zip(lv.tolist(), tokens.tolist()))
            plan = refine(sc, l_max=self.l_max, alpha=alpha_l, tokens_per_round=table.__getitem__,
                          outputs=outputs, name="trace-aware")
            return Plan(plan.batches, plan.speculation_length, plan.bandwidth_hz, plan.mode, {**plan.meta, **meta})
        sol = solve(sc, l_values=lv, alpha=alpha_l, per_l=False, per_batch_l=True, outputs=outputs)
        bw = bandwidth_hz(sc, "optimal")
        bounds, ls = sol.per_batch
        return make_plan(sc, sol.order, bounds, ls, bw, "sd-pipeline", policy="trace-aware",
                         surrogate_s=upload_makespan_s(sc, bw) + sol.per_batch_cost_s, **meta)
