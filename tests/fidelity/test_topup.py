"""The top-up planner of scripts/measure_fidelity.py: new distinct plans first, then repeats (pooled plans first),
within a wall-time budget; a candidate with an existing schedule is never a new plan."""

from __future__ import annotations

import pytest

from specedge.fidelity.topup import (DEFAULT_OVERHEAD_S, NEW_PLAN_MARGIN, PlanRuns, choose, derive, grid_covers,
                                     run_overhead_s, scenario_plans)
from specedge.fidelity.schedule import schedule_sha256
from tests.fidelity.test_schedule import plan


def runs(label, p, n, span, pooled=False):
    return PlanRuns(schedule_sha256(p), label, p, tuple(f"{label}-{i}" for i in range(n)), span, pooled)


ONE = plan([[0, 1, 2, 3]], 1)
PLANS = [runs("dp-refined = sd-serial", ONE, 2, 47.5, pooled=True),
         runs("heuristic", plan([[0, 1], [2, 3]], 1), 1, 50.9),
         runs("2x2 l=2", plan([[0, 1], [2, 3]], 2), 3, 62.3),
         runs("no-batching", plan([[0], [1], [2], [3]], 1), 1, 154.7)]


def test_new_plans_skip_known_schedules_and_come_first():
    cands = [("max-batching", plan([[3, 2, 1, 0]], 1, "sd-serial", policy="max-batching"), 40.0),  # = ONE
             ("2x2 l=2 serial", derive(plan([[0, 1], [2, 3]], 2, policy="x"), mode="sd-serial"), 68.0),
             ("never", plan([[0, 1, 2], [3]], 1), 1.0)]
    steps, skipped = choose(PLANS, iter(cands), extra_plans=1, repeat_to=0, budget_s=None, overhead_s=70.0,
                            min_plans=6)
    assert [(s.kind, s.label) for s in steps] == [("new plan", "2x2 l=2 serial")] and not skipped
    assert "meta" not in steps[0].plan and steps[0].plan["mode"] == "sd-serial"
    assert steps[0].estimated_wall_s == pytest.approx(68.0 * NEW_PLAN_MARGIN + 70.0)
    assert steps[0].reason == "distinct plan 5 of 6"


def test_no_new_plan_when_the_pair_has_enough():
    steps, _ = choose(PLANS, iter([("x", plan([[0, 1, 2], [3]], 1), 1.0)]), extra_plans=3, repeat_to=0,
                      budget_s=None, overhead_s=0.0, min_plans=4)
    assert steps == []


def test_repeats_pooled_first_then_fewest_runs_within_budget():
    steps, skipped = choose(PLANS, iter([]), extra_plans=0, repeat_to=3, budget_s=250.0, overhead_s=70.0,
                            min_plans=6)
    assert [s.label for s in steps] == ["dp-refined = sd-serial", "heuristic"]  # 117.5 + 120.9 s
    assert steps[0].reason.startswith("run 3 of 3 (pooled")
    assert [s.label for s in skipped] == ["no-batching", "heuristic", "no-batching"]
    everything, none = choose(PLANS, iter([]), extra_plans=0, repeat_to=3, budget_s=None, overhead_s=0.0,
                              min_plans=6)
    assert not none and sorted(s.label for s in everything) == ["dp-refined = sd-serial", "heuristic",
                                                                "heuristic", "no-batching", "no-batching"]


def test_scenario_plans_pool_the_store_and_overhead_defaults(pooled_store):
    st, _, _ = pooled_store
    plans = scenario_plans(st, "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", 6)
    assert len(plans) == 4
    (b,) = [p for p in plans if p.pooled]
    assert len(b.run_ids) == 4 and b.label == "dp-refined = max-batching = plan 1×6 l=4 = sd-serial"
    assert run_overhead_s(st, "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", 6) == DEFAULT_OVERHEAD_S  # ids unstamped


def test_grid_cover():
    from types import SimpleNamespace

    grid = {"cached": {"batch_sizes": [1, 2, 4], "new_tokens": [2, 3, 4]}}
    st = SimpleNamespace(info=lambda _id: SimpleNamespace(metadata={"grid": grid}))
    assert grid_covers(st, ("d", "v"), plan([[0, 1], [2, 3]], 3)) is None
    assert "x = 8" in grid_covers(st, ("d", "v"), plan([[0, 1], [2, 3]], 7))
    assert "b = 6" in grid_covers(st, ("d", "v"), {**plan([[0, 1, 2, 3, 4, 5]], 1), "bandwidth_hz": [1.0] * 6})
    assert grid_covers(st, ("d", "v"), plan([[0, 1, 2, 3]], 1)) is None


from tests.fidelity.test_schedule import pooled_store  # noqa: E402,F401  (the module-scoped store fixture)
