"""Adaptive speculation length: l chosen before every round from the acceptance seen so far (goodput-driven).

After SmartSpec (Liu et al. 2024): before each round of a batch, estimate alpha from the batch's history and pick
the l that maximises goodput, the expected tokens a round commits per second of the round:

    l* = argmax_l  L(l, alpha_hat) / T(l),   T(l) = t_draft(l) + t_verify(l)   (``objective="round"``)
                                              T(l) = max(t_draft(l), t_verify(l)) (``objective="bottleneck"``)

with the stage times of :mod:`specedge.latency.rounds` at the batch's current live size and padded context.
``alpha_hat`` solves the moment equation sum_rounds n_r L(l_r, alpha) = observed tokens (accepted + 1 per live
member and round, which is unbiased for truncated i.i.d. acceptance), with ``prior_rounds`` pseudo-rounds at the
scenario's alpha so that the first rounds are not planned from nothing [A].

The policy's plan is the exact-makespan refined plan: its batches and bandwidth, and its per-batch l as the
anchor (``anchored=True``, see :class:`GoodputController`): the controller shifts l from the planned one by
the shift of the goodput-optimal l between the planning alpha and alpha_hat. The controller runs in the replay's
round-by-round path (:func:`specedge.replay.evaluate` with ``controller=``), which :func:`specedge.policies.replay`
and ``specedge optimize`` use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.errors import PolicyError
from specedge.latency import rounds
from specedge.latency.acceptance import expected_tokens_per_round
from specedge.plan import Plan
from specedge.policies.base import register_policy
from specedge.policies.dp import l_range
from specedge.policies.refine import refine

_ALPHA_GRID = np.linspace(0.0, 0.999, 1000)


class GoodputController:
    """``choose_l(state)`` for :func:`specedge.replay.evaluate` (see the module docstring).

    ``planned_l``: the plan's l per batch. With ``anchored`` the controller moves l away from the planned l by
    as much as the goodput-optimal l moves between the planning alpha and alpha_hat, so that it keeps the
    plan's choice (made under the exact pipeline makespan) when the acceptance is as planned and adapts when it
    is not; otherwise it takes the goodput-optimal l itself.
    """

    def __init__(self, sc, *, l_max: int = 10, prior_rounds: float = 4.0, objective: str = "round",
                 planned_l=None, anchored: bool = True, window_rounds: float = 0.0):
        if objective not in ("round", "bottleneck"):
            raise PolicyError(f"objective must be 'round' or 'bottleneck', got {objective!r}")
        if not prior_rounds >= 0:
            raise PolicyError(f"prior_rounds must be >= 0, got {prior_rounds}")
        self.sc = sc
        self.lv = l_range(l_max).astype(np.float64)
        self.prior_rounds = float(prior_rounds)
        if not window_rounds >= 0:
            raise PolicyError(f"window_rounds must be >= 0, got {window_rounds}")
        self.discount = 1.0 - 1.0 / window_rounds if window_rounds > 1 else 1.0
        self.alpha0 = float(sc.alpha)
        self.objective = objective
        self.planned_l = None if planned_l is None else [int(x) for x in planned_l]
        self.anchored = bool(anchored) and self.planned_l is not None
        self.inputs = sc.tasks["input_tokens"].to_numpy()
        # L(l, alpha) on a grid: rows l = 1..l_max, columns alpha
        self._grid_l = expected_tokens_per_round(self.lv[:, None], _ALPHA_GRID[None, :])
        self._history: dict[int, list] = {}  # batch -> [rounds seen, round counts per l, observed tokens]
        self.chosen: list[int] = []

    def estimate_alpha(self, state) -> float:
        """alpha_hat from the batch's history and the prior (moment equation, solved on a grid)."""
        h = self._history.get(state.batch)
        if h is None or h[0] > len(state.accepted):
            counts = np.zeros(self.lv.size)
            counts[0] = self.prior_rounds
            h = self._history[state.batch] = [0, counts,
                                              self.prior_rounds * float(expected_tokens_per_round(1.0, self.alpha0))]
        for acc, l in zip(state.accepted[h[0]:], state.speculation_lengths[h[0]:]):
            live = np.isfinite(acc)
            n = int(live.sum())
            if self.discount < 1.0:
                h[1] *= self.discount
                h[2] *= self.discount
            if n:
                h[1][int(l) - 1] += n
                h[2] += float(acc[live].sum()) + n
        h[0] = len(state.accepted)
        predicted = h[1] @ self._grid_l  # expected tokens at each grid alpha (increasing in alpha)
        if h[2] <= predicted[0]:
            return float(_ALPHA_GRID[0])
        return float(np.interp(h[2], predicted, _ALPHA_GRID))

    def _best_l(self, alpha: float, td, tv) -> int:
        t = td + tv if self.objective == "round" else np.maximum(td, tv)
        return int(self.lv[int(np.argmax(expected_tokens_per_round(self.lv, alpha) / t))])

    def choose_l(self, state) -> int:
        alpha = self.estimate_alpha(state)
        live = state.live
        b = float(live.sum())
        imax = float(self.inputs[state.tasks].max())
        first = state.round == 0
        ctx = imax + (float(state.committed[live].max()) if live.any() and not first else 0.0)
        td = rounds.sd_draft_s(self.sc.draft_compute, b, ctx, imax, self.lv, first)
        tv = rounds.sd_verify_s(self.sc.verify_compute, b, ctx, imax, self.lv, first)
        l = self._best_l(alpha, td, tv)
        if self.anchored:
            shift = l - self._best_l(self.alpha0, td, tv)
            l = int(np.clip(self.planned_l[state.batch] + shift, self.lv[0], self.lv[-1]))
        self.chosen.append(l)
        return l


@register_policy("adaptive-l")
@dataclass(frozen=True)
class AdaptiveL:
    """The refined plan, with l re-chosen before every round by :class:`GoodputController`."""

    l_max: int = 10
    prior_rounds: float = 4.0
    objective: str = "round"
    anchored: bool = True
    window_rounds: float = 0.0

    def plan(self, sc) -> Plan:
        plan = refine(sc, l_max=self.l_max, name="adaptive-l")
        return Plan(plan.batches, plan.speculation_length, plan.bandwidth_hz, plan.mode,
                    {**plan.meta, "policy": "adaptive-l", "controller": "goodput", "objective": self.objective,
                     "prior_rounds": self.prior_rounds, "anchored": self.anchored})

    def controller(self, sc, plan) -> GoodputController:
        return GoodputController(sc, l_max=self.l_max, prior_rounds=self.prior_rounds, objective=self.objective,
                                 planned_l=plan.speculation_length, anchored=self.anchored,
                                 window_rounds=self.window_rounds)
