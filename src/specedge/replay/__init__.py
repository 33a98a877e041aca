"""Trace-driven replay: a plan and a scenario in, per-task timings and aggregates out.

>>> from specedge import Scenario, evaluate
>>> sc = Scenario.from_preset("paper", tasks=4, seed=0)
>>> plan = {"batches": [[0, 1], [2, 3]], "speculation_length": 7, "bandwidth_hz": [5e6] * 4,
...         "mode": "sd-pipeline"}
>>> evaluate(sc, plan).latency_s > 0
True

Modes: ``sd-pipeline`` (drafting of one batch overlaps verification of another), ``sd-serial`` (no overlap) and
``ad`` (the target alone, one token per pass). Acceptance comes from the scenario's source: expected (deterministic
L(l, alpha) tokens per round), iid (sampled), a trace (each task replays a recorded request, truncation
min(accepted, l), flagged extrapolation beyond the recorded draft length) or an aggregate histogram.
"""

from __future__ import annotations

import numpy as np

from specedge.errors import PlanError
from specedge.plan import Plan
from specedge.replay.controller import BatchState, Controller, schedule_from_controller
from specedge.replay.core import PreparedPlan, Run, prepare, simulate
from specedge.replay.draws import AcceptanceDraws, replication_rng
from specedge.replay.result import ReplayResult, ci95_half_width

__all__ = ["BatchState", "Controller", "ReplayResult", "assignment", "ci95_half_width", "evaluate", "prepare",
           "simulate"]

#: Default largest l a controller may choose (the paper sweeps l in 1..10).
DEFAULT_MAX_SPECULATION_LENGTH = 10


def _max_l(prep: PreparedPlan, schedule, controller, max_speculation_length) -> int:
    if controller is not None:
        return int(max_speculation_length or DEFAULT_MAX_SPECULATION_LENGTH)
    if schedule is not None:
        return int(max(int(np.max(s)) if len(s) else 1 for s in schedule))
    return int(prep.l_batch.max())


def assignment(sc, *, seed: int = 0, replication: int = 0) -> np.ndarray | None:
    """Which trace unit each task replays in replication ``replication`` of ``evaluate(..., seed=seed)``.

    Index into ``sc.acceptance_stats.per_unit_tau`` for each task's recorded tokens per round; None for sources
    without an assignment.
    """
    if sc.acceptance.kind != "trace":
        return None
    return sc.acceptance.assign(sc.num_tasks, replication_rng(seed, replication))


def evaluate(sc, plan: Plan | dict, replications: int = 1, seed: int = 0, *, controller: Controller | None = None,
             schedule=None, max_speculation_length: int | None = None) -> ReplayResult:
    """Replay ``plan`` on scenario ``sc``; Monte Carlo over ``replications`` (seeded by ``seed``).

    ``schedule``: per batch, a sequence of speculation lengths by round (the last repeats), replacing the plan's
    fixed l. ``controller``: an object with ``choose_l(BatchState) -> int`` asked before each round of each batch
    (l in 1..``max_speculation_length``, default 10). The deterministic ``expected`` source gives identical
    replications.
    """
    if replications < 1:
        raise PlanError(f"replications must be >= 1, got {replications}")
    if controller is not None and schedule is not None:
        raise PlanError("pass a controller or a schedule, not both")
    prep = prepare(sc, plan)
    if schedule is not None and len(schedule) != prep.sizes.size:
        raise PlanError(f"schedule has {len(schedule)} entries for {prep.sizes.size} batches")
    max_l = _max_l(prep, schedule, controller, max_speculation_length)
    sampled = prep.mode != "ad" and sc.acceptance.kind != "expected"
    runs: list[Run] = []
    count = replications if (sampled or controller is not None) else 1
    for r in range(count):
        draws = AcceptanceDraws(sc.acceptance, sc.num_tasks, replication_rng(seed, r), max_l) if sampled else None
        sched = schedule
        if controller is not None:
            sched = schedule_from_controller(sc, prep, draws, controller, max_l)
        runs.append(simulate(sc, prep, draws, sched))
    if count < replications:  # deterministic: every replication is the same run
        runs = runs * replications
    name = "ad (no drafting)" if prep.mode == "ad" else sc.acceptance.stats.name
    return ReplayResult(scenario=sc, prepared=prep, runs=tuple(runs), acceptance=name)
