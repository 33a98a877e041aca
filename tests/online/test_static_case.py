"""The static case out of the online engine: all arrivals at 0 + a plan + the paper's uplink = specedge.evaluate."""

import numpy as np
import pytest

from specedge import evaluate
from specedge.online import MatrixFeed, OnlineConfig, all_at_zero, simulate
from specedge.online.policies import PlanPolicy
from specedge.policies import get_policy
from specedge.replay.draws import AcceptanceDraws, replication_rng

RTOL = 1e-9


def _check(res, run):
    tasks = res.tasks
    for col, got in (("completion_s", run.completion_s), ("first_token_s", run.first_token_s),
                     ("upload_s", run.upload_end_s), ("rounds", run.rounds)):
        np.testing.assert_allclose(got, tasks[col].to_numpy(), rtol=RTOL, atol=0, err_msg=col)


@pytest.mark.parametrize("policy", ["paper-dp", "max-batching", "no-batching", "ad", "sd-serial", "static-batching"])
def test_expected_source_equals_evaluate(paper_sc, policy):
    plan = get_policy(policy).plan(paper_sc)
    res = evaluate(paper_sc, plan)
    run = simulate(paper_sc, all_at_zero(paper_sc.tasks), PlanPolicy(plan),
                   OnlineConfig(uplink_rule="equal-finish"))
    if policy in ("paper-dp", "max-batching"):
        # the paper's allocation: uploads by the online equal-finish rule are the plan's uploads
        np.testing.assert_allclose(run.upload_end_s, res.tasks["upload_s"].to_numpy(), rtol=RTOL)
        _check(res, run)
    else:  # plans with another allocation: the online engine gives each user the plan's band
        run = simulate(paper_sc, all_at_zero(paper_sc.tasks), PlanPolicy(plan, uplink="plan"))
        _check(res, run)


@pytest.mark.parametrize("source", ["iid"])
def test_sampled_source_equals_evaluate(paper_sc, source):
    sc = paper_sc.with_overrides(acceptance=source, alpha=0.7, fronthaul_delay_s=0.002, downlink_s_per_token=1e-4)
    plan = get_policy("paper-dp").plan(sc)
    res = evaluate(sc, plan, seed=5)
    draws = AcceptanceDraws(sc.acceptance, sc.num_tasks, replication_rng(5, 0), 10)
    g, _ = draws.get(int(sc.tasks["output_tokens"].max()))
    run = simulate(sc, all_at_zero(sc.tasks), PlanPolicy(plan), OnlineConfig(uplink_rule="equal-finish"),
                   feed=MatrixFeed(g.T))  # the replay's own draws, request k's column
    _check(res, run)


def test_release_per_batch(paper_sc):
    sc = paper_sc.with_overrides(release="batch-uploads")
    plan = get_policy("paper-dp").plan(sc)
    res = evaluate(sc, plan)
    run = simulate(sc, all_at_zero(sc.tasks), PlanPolicy(plan, uplink="plan"))
    _check(res, run)
