"""The batched exact makespan equals the replay; the oracle is a lower bound; optimality gaps on a few instances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specedge import evaluate
from specedge.errors import PolicyError
from specedge.experiments import optimality_gaps
from specedge.policies import dp, get_policy
from specedge.policies.exact import ExactMakespan, plan_keys
from specedge.policies.oracle import partitions, search
from tests.policies.helpers import PAIRS, small


def test_partitions_by_hand():
    assert partitions(1) == [[(0, 1)]]
    assert sorted(partitions(3)) == sorted([[(0, 3)], [(0, 1), (1, 3)], [(0, 2), (2, 3)], [(0, 1), (1, 2), (2, 3)]])
    assert len(partitions(10)) == 2**9


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 9), seed=st.integers(0, 1000), mode=st.sampled_from(["sd-pipeline", "sd-serial", "ad"]),
       extras=st.sampled_from([{}, {"fronthaul_delay_s": 0.02}, {"release": "batch-uploads",
                                                                 "downlink_s_per_token": 0.003}]),
       data=st.data())
def test_exact_makespan_equals_replay(k, seed, mode, extras, data):
    sc = small(k, seed=seed, pair=PAIRS[seed % 3], **extras)
    order = dp.sorted_order(sc)
    bw = sc.uniform_bandwidth_hz() if seed % 2 else sc.optimal_bandwidth_hz()
    ev = ExactMakespan(sc, order, bw, mode)
    cands = []
    for _ in range(3):
        part = data.draw(st.sampled_from(partitions(k)))
        ls = data.draw(st.lists(st.integers(1, 10), min_size=len(part), max_size=len(part)))
        cands.append((part, ls))
    got = ev.makespans([plan_keys(p, ls) for p, ls in cands])
    for (part, ls), ms in zip(cands, got):
        want = evaluate(sc, dp.make_plan(sc, order, part, ls, bw, mode)).latency_s
        assert ms == pytest.approx(want, rel=1e-9)


def test_oracle_is_a_lower_bound_and_its_plan_replays_to_its_value():
    sc = small(7, seed=11, pair=PAIRS[0], output_max=600)
    res = search(sc, l_max=6)
    bounds, l, best = res.best
    assert res.makespan_s.shape == (6, 64) and best == res.makespan_s.min()
    plan = get_policy("oracle", l_max=6).plan(sc)
    assert evaluate(sc, plan).latency_s == pytest.approx(best, rel=1e-9)
    for name in ("paper-dp", "fixed-l", "no-batching", "max-batching", "heuristic-batching", "dp-refined"):
        p = get_policy(name).plan(sc)
        if len(set(p.speculation_length)) == 1 and p.speculation_length[0] <= 6:
            assert evaluate(sc, p).latency_s >= best * (1 - 1e-9), name
    with pytest.raises(PolicyError, match="K <= 12"):
        search(small(13))


def test_memory_infeasible_partitions_are_excluded():
    sc = small(6, seed=0, pair="tinyllama-1.1b/llama-13b", output_max=2048, input_max=512,
               sbs_memory_bytes=4.2e9)
    res = search(sc, l_max=2)
    assert np.isinf(res.makespan_s[:, 0]).all()  # everything in one batch does not fit
    assert np.isfinite(res.best[2])
    assert dp.partition_fits(sc, res.order, res.best[0], "sd-pipeline")


def test_optimality_gap_on_a_few_paper_instances():
    """The asv suite tracks 50 instances (bench/optimizer.py OptimalityGap); this keeps a fast check of 4."""
    frame = optimality_gaps(4, tasks=10, policies=("paper-dp", "dp-refined"), first_seed=100)
    best = frame[frame.policy == "dp-refined"].gap_pct
    paper = frame[frame.policy == "paper-dp"].gap_pct
    assert (paper >= -1e-7).all()  # a single-l plan over sorted contiguous batches cannot beat the oracle
    assert best.max() <= 3.0 and np.median(best) <= 0.5
    assert (best.to_numpy() <= paper.to_numpy() + 1e-9).all()


def test_oracle_searches_the_sorted_order_it_claims():
    """Sorted by input, ties by output then index (written here, not taken from dp.sorted_order): every entry of
    the oracle's table is the replay of that partition of that order."""
    import pandas as pd

    tasks = pd.DataFrame({"input_tokens": [50, 20, 50, 20, 35], "output_tokens": [100, 300, 40, 60, 200],
                          "distance_m": [100.0, 300.0, 200.0, 50.0, 400.0]})
    sc = small(5, pair=PAIRS[0]).with_tasks(tasks)
    claimed = [3, 1, 4, 2, 0]  # inputs 20, 20, 35, 50, 50; the two 20s by output 60 < 300, the 50s by 40 < 100
    res = search(sc, l_max=3)
    assert res.order.tolist() == claimed
    bw = sc.optimal_bandwidth_hz()
    for c, part in enumerate(res.partitions):
        for r, l in enumerate(res.l_values):
            batches = [[claimed[x] for x in range(j, i)] for j, i in part]
            plan = {"batches": batches, "speculation_length": int(l), "bandwidth_hz": bw.tolist(),
                    "mode": "sd-pipeline"}
            assert res.makespan_s[r, c] == pytest.approx(evaluate(sc, plan).latency_s, rel=1e-9), (part, l)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 8), seed=st.integers(0, 500), mode=st.sampled_from(["sd-pipeline", "sd-serial", "ad"]),
       data=st.data())
def test_lower_bound_never_exceeds_the_exact_makespan(k, seed, mode, data):
    sc = small(k, seed=seed, pair=PAIRS[seed % 3], fronthaul_delay_s=0.01 * (seed % 2))
    order = dp.sorted_order(sc)
    ev = ExactMakespan(sc, order, sc.optimal_bandwidth_hz(), mode)
    cands = [plan_keys(data.draw(st.sampled_from(partitions(k))), data.draw(st.integers(1, 10)))
             for _ in range(3)]
    lb, exact = ev.lower_bounds(cands), ev.makespans(cands)
    early = np.array([ev.early_lower_bound(c, rounds_limit=data.draw(st.integers(1, 8))) for c in cands])
    assert (lb <= exact * (1 + 1e-12)).all()
    assert (early <= lb * (1 + 1e-12)).all() and (early > 0).all()
    every_round = [ev.early_lower_bound(c, rounds_limit=10**6) for c in cands]
    np.testing.assert_allclose(every_round, lb, rtol=1e-12)  # over all rounds the two bounds coincide


@pytest.mark.parametrize("mode", ["sd-pipeline", "sd-serial", "ad"])
def test_one_batch_closed_form_equals_replay(mode):
    """Plans of one batch take the closed form (ExactMakespan._single); with fronthaul and downlink on."""
    sc = small(6, seed=7, pair=PAIRS[1], fronthaul_delay_s=0.02, release="batch-uploads", downlink_s_per_token=0.002)
    order = dp.sorted_order(sc)
    bw = sc.optimal_bandwidth_hz()
    ev = ExactMakespan(sc, order, bw, mode)
    plans = [plan_keys([(0, 6)], 3), plan_keys([(0, 6)], 7), plan_keys([(0, 2), (2, 6)], 3)]
    got = ev.makespans(plans)
    for keys, ms in zip(plans, got):
        part, ls = [(j, i) for j, i, _ in keys], [l for _, _, l in keys]
        assert ms == pytest.approx(evaluate(sc, dp.make_plan(sc, order, part, ls, bw, mode)).latency_s, rel=1e-9)
