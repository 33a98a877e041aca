"""Trace-aware planning (survival curve, per-task tau) and the adaptive-l controller (replayed round by round)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specedge import evaluate
from specedge.errors import PolicyError
from specedge.latency.acceptance import expected_tokens_per_round
from specedge.policies import get_policy, optimize, replay
from specedge.policies.adaptive import GoodputController
from specedge.policies.trace_aware import effective_alpha, survival, task_outputs, tokens_per_round
from tests.policies.helpers import small


def _trace(alphas=(0.9, 0.5), rounds=400, drafted=8, seed=0) -> pd.DataFrame:
    """Requests of alternating acceptance, each long enough for a whole task (synthetic)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(8):
        a = alphas[r % len(alphas)]
        g = np.floor(np.log1p(-rng.random(rounds)) / np.log(a)).astype(int)
        rows.append(pd.DataFrame({"request_id": f"q{r}", "turn": 0, "round": np.arange(rounds), "drafted": drafted,
                                  "accepted": np.minimum(g, drafted)}))
    return pd.concat(rows, ignore_index=True)


def test_tokens_per_round_by_hand():
    sc = small(4, alpha=0.7)
    np.testing.assert_allclose(tokens_per_round(sc.acceptance_stats, [1, 3, 7]),
                               expected_tokens_per_round(np.array([1, 3, 7]), 0.7))
    np.testing.assert_allclose(effective_alpha(sc.acceptance_stats, [2, 5]), 0.7, atol=1e-9)
    # a trace where position 1 is always accepted and position 2 never: S = (1, 0, 0, ...)
    frame = pd.DataFrame({"request_id": "a", "turn": 0, "round": np.arange(10), "drafted": 4, "accepted": 1})
    sc = small(4, acceptance=frame)
    np.testing.assert_allclose(survival(sc.acceptance_stats, 4), [1, 0, 0, 0])
    np.testing.assert_allclose(tokens_per_round(sc.acceptance_stats, [1, 2, 4]), [2, 2, 2])


def test_trace_aware_equals_refined_on_expected_acceptance():
    sc = small(8, seed=3)
    a = optimize(sc, "trace-aware")
    b = optimize(sc, "dp-refined")
    assert a.batches == b.batches and a.speculation_length == b.speculation_length


def test_trace_aware_per_task_reads_each_tasks_request():
    sc = small(12, seed=1, acceptance=_trace(), output_max=1500)
    out = task_outputs(sc, seed=0)
    tau = sc.acceptance_stats.per_unit_tau
    from specedge.replay import assignment

    units = assignment(sc, seed=0)
    expect = sc.tasks["output_tokens"].to_numpy() * sc.acceptance_stats.tau / tau[units]
    np.testing.assert_allclose(out, expect)
    plan = optimize(sc, "trace-aware", per_task=True)
    assert plan.meta["per_task"] is True
    assert evaluate(sc, plan).latency_s > 0
    assert optimize(sc, "trace-aware", refined=False).meta["policy"] == "trace-aware"
    assert task_outputs(small(4), seed=0) is None  # no recorded requests behind an expected source


def test_adaptive_controller_is_replayed_round_by_round():
    sc = small(10, seed=2, output_max=400)
    pol = get_policy("adaptive-l")
    plan = pol.plan(sc)
    ctl = pol.controller(sc, plan)
    res = evaluate(sc, plan, controller=ctl)
    assert len(ctl.chosen) == res.jobs.shape[0]  # asked before every round of every batch
    # anchored + acceptance exactly as planned: the controller keeps the plan's l, so nothing changes
    assert set(ctl.chosen) <= set(plan.speculation_length)
    assert res.latency_s == pytest.approx(evaluate(sc, plan).latency_s, rel=1e-12)
    # the policy-level replay goes through the controller too
    assert replay(sc, pol, plan).latency_s == pytest.approx(res.latency_s, rel=1e-12)


def test_adaptive_estimates_alpha_and_reacts_to_the_trace():
    sc = small(10, seed=5, acceptance=_trace(alphas=(0.95,)), output_max=800)
    free = GoodputController(sc, anchored=False, prior_rounds=0.0)
    plan = optimize(sc, "paper-dp")
    evaluate(sc, plan, controller=free)
    low = small(10, seed=5, acceptance=_trace(alphas=(0.3,)), output_max=800)
    free_low = GoodputController(low, anchored=False, prior_rounds=0.0)
    evaluate(low, optimize(low, "paper-dp"), controller=free_low)
    assert np.mean(free.chosen) > np.mean(free_low.chosen)  # longer drafts when more is accepted

    class _State:
        batch, round = 0, 3
        accepted = [np.array([2.0, np.nan]), np.array([1.0, 3.0])]
        speculation_lengths = [4, 4]

    ctl = GoodputController(small(2, alpha=0.5), prior_rounds=0.0)
    a = ctl.estimate_alpha(_State())  # 3 member-rounds at l = 4 committed 2+1 + 1+1 + 3+1 = 9 tokens
    assert float(expected_tokens_per_round(4, a)) * 3 == pytest.approx(9.0, abs=0.02)
    with pytest.raises(PolicyError, match="objective"):
        GoodputController(sc, objective="fastest")
