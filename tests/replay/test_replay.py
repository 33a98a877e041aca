"""Replay: hand-worked timelines, acceptance semantics, Monte Carlo, controllers, invariants and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge import Plan, Scenario, evaluate
from specedge.errors import PlanError, PolicyError
from specedge.latency.planning import expected_tokens_per_round
from specedge.replay import BatchState, assignment

from .helpers import aggregate_frame, small_scenario, sorted_plan, trace_frame


class PerPass:
    """A pass costs ``seconds * b`` whatever its tokens: keeps hand-worked timelines short."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.model = None

    def latency_s(self, b, x, c):
        return self.seconds * np.broadcast_arrays(np.asarray(b, float), np.asarray(x, float),
                                                  np.asarray(c, float))[0]


def hand_scenario(outputs=(6, 3, 6, 6), acceptance="expected", alpha=1.0, **kw) -> Scenario:
    tasks = pd.DataFrame({"input_tokens": [1] * len(outputs), "output_tokens": list(outputs),
                          "spectral_efficiency": [1.0] * len(outputs)})
    sc = Scenario.from_preset("paper", tasks=tasks, alpha=alpha, acceptance=acceptance, bits_per_token=1.0, **kw)
    return dataclasses.replace(sc, draft_compute=PerPass(1.0), verify_compute=PerPass(2.0))


HAND_PLAN = {"batches": [[0, 1], [2, 3]], "speculation_length": 2, "bandwidth_hz": [1.0] * 4}


def test_two_batches_two_rounds_by_hand():
    # alpha = 1, l = 2: 3 tokens per round. Task 1 (O=3) finishes after round 0; the others need 2 rounds.
    # Uploads take 1 s (1 bit at 1 Hz x 1 bit/s/Hz). Draft = (prefill + 1 decode) passes x b, verify = 2 b:
    # (r0,b0): b=2, td=4, tv=4 -> draft 1..5, verify 5..9
    # (r0,b1): b=2, td=4, tv=4 -> draft 5..9, verify 9..13
    # (r1,b0): b=1 (task 1 left), td=2, tv=2 -> draft 9..11, verify 13..15
    # (r1,b1): b=2, td=4, tv=4 -> draft max(11,13)..17, verify 17..21
    res = evaluate(hand_scenario(), HAND_PLAN)
    t = res.tasks
    np.testing.assert_allclose(t.upload_s, 1.0)
    np.testing.assert_allclose(t.first_token_s, [9, 9, 13, 13])
    np.testing.assert_allclose(t.completion_s, [15, 9, 21, 21])
    np.testing.assert_array_equal(t.rounds, [2, 1, 2, 2])
    assert res.latency_s == 21.0 and res.summary["makespan_s"] == 21.0
    np.testing.assert_allclose(res.jobs.verify_end_s, [9, 13, 15, 21])
    np.testing.assert_array_equal(res.jobs.batch_size, [2, 2, 1, 2])
    # serial: 1..5..9 | 9..13..17 | 17..19..21 | 21..25..29
    ser = evaluate(hand_scenario(), {**HAND_PLAN, "mode": "sd-serial"})
    np.testing.assert_allclose(ser.tasks.completion_s, [21, 9, 29, 29])
    # the planned timeline assumes every member runs to O_max: batch 0 also keeps b = 2 in round 1
    assert res.summary["planned_makespan_s"] == 21.0
    np.testing.assert_allclose(res.tasks.planned_completion_s, [17, 17, 21, 21])


def test_ad_by_hand():
    # AD: one verify pass (2 s x b) per token; outputs 2 and 1 in one batch: passes at b=2, then b=1
    res = evaluate(hand_scenario(outputs=(2, 1)), {"batches": [[0, 1]], "speculation_length": 1,
                                                   "bandwidth_hz": [1.0, 1.0], "mode": "ad"})
    np.testing.assert_allclose(res.tasks.completion_s, [1 + 4 + 2, 1 + 4])
    np.testing.assert_array_equal(res.tasks.rounds, [2, 1])


def test_trace_truncation_and_flagged_extrapolation():
    frame = pd.DataFrame({"request_id": ["a", "a", "b", "b"], "round": [0, 1, 0, 1], "drafted": [4, 4, 4, 4],
                          "accepted": [3, 0, 1, 4]})
    sc = hand_scenario(outputs=(5, 5), acceptance=frame)
    units = assignment(sc, seed=0)
    plan = {"batches": [[0], [1]], "speculation_length": [2, 2], "bandwidth_hz": [1.0, 1.0]}
    res = evaluate(sc, plan, seed=0)
    # l = 2: unit a commits min(3,2)+1=3 then min(0,2)+1=1; unit b commits 2 then 3
    per_unit = {0: (3, 1), 1: (2, 3)}
    for task in (0, 1):
        first, second = per_unit[int(units[task])]
        assert res.tasks.rounds[task] == (2 if first + second >= 5 else 3)
    assert not res.extrapolated and res.summary["extrapolated_rounds"] == 0
    # l = 6 > recorded 4: only the fully accepted round (b, round 1) is extrapolated
    res6 = evaluate(sc, {**plan, "speculation_length": [6, 6]}, seed=0)
    task_on_b = int(np.flatnonzero(units == 1)[0])
    assert res6.tasks.extrapolated_rounds[task_on_b] == (1 if res6.tasks.rounds[task_on_b] >= 2 else 0)
    assert res6.tasks.extrapolated_rounds[1 - task_on_b] == 0
    # unit a at l = 6: 3 accepted (rejection seen at 4) -> 4 tokens, then 1: exact at any l
    task_on_a = 1 - task_on_b
    assert res6.tasks.rounds[task_on_a] == 2


def test_iid_tokens_per_round_match_L_within_the_monte_carlo_interval():
    for alpha, l in ((0.8, 7), (0.5, 3)):
        sc = small_scenario(40, seed=3, acceptance="iid", alpha=alpha, output_max=400)
        res = evaluate(sc, sorted_plan(sc, 4, l=l), replications=12, seed=11)
        s = res.summary
        assert abs(s["tokens_per_round"] - float(expected_tokens_per_round(l, alpha))) <= 2 * s["tokens_per_round_ci95"]
        assert s["makespan_s_ci95"] > 0


def test_expected_source_rounds_are_ceil_O_over_L():
    sc = small_scenario(10, seed=1, alpha=0.8)
    res = evaluate(sc, sorted_plan(sc, 2, l=5), replications=3)
    per_round = float(expected_tokens_per_round(5, 0.8))
    np.testing.assert_array_equal(res.tasks.rounds, np.ceil(sc.tasks.output_tokens / per_round).astype(int))
    assert res.summary["makespan_s_ci95"] == 0.0
    assert res.summary["planned_error"] <= 1e-12  # replay never exceeds the O_max plan


def test_aggregate_source_replays_its_histogram():
    sc = small_scenario(30, seed=4, acceptance=aggregate_frame(), output_max=400)
    res = evaluate(sc, sorted_plan(sc, 3, l=5), replications=6, seed=2)
    counts = aggregate_frame()["count"].to_numpy()
    tau = 1 + (np.arange(6) * counts).sum() / counts.sum()
    assert abs(res.summary["tokens_per_round"] - tau) <= 3 * res.summary["tokens_per_round_ci95"]
    assert sc.acceptance_stats.tau == pytest.approx(tau)
    assert not evaluate(sc, sorted_plan(sc, 3, l=5)).extrapolated
    assert evaluate(sc, sorted_plan(sc, 3, l=8)).extrapolated


class Constant:
    def __init__(self, l):
        self.l = l

    def choose_l(self, state: BatchState) -> int:
        return self.l


class Adaptive:
    """Speculate further after a round where every live member accepted everything."""

    def __init__(self):
        self.seen: list[tuple[int, int, bool]] = []

    def choose_l(self, state: BatchState) -> int:
        self.seen.append((state.batch, state.round, bool(state.live.all())))
        if not state.accepted:
            return 3
        last, l_prev = state.accepted[-1], state.speculation_lengths[-1]
        live_last = last[~np.isnan(last)]
        return min(8, l_prev + 1) if (live_last == l_prev).all() else max(1, l_prev - 1)


def test_controller_path_matches_fixed_and_scheduled_replay():
    sc = small_scenario(16, seed=5, acceptance=trace_frame(drafted=8))
    plan = sorted_plan(sc, 3, l=4)
    fixed = evaluate(sc, plan, seed=3)
    ctl = evaluate(sc, plan, seed=3, controller=Constant(4))
    np.testing.assert_array_equal(ctl.tasks.completion_s, fixed.tasks.completion_s)
    adaptive = Adaptive()
    adapt = evaluate(sc, plan, seed=3, controller=adaptive)
    schedule = [adapt.jobs.speculation_length[adapt.jobs.batch == m].to_numpy() for m in range(3)]
    assert len({int(x) for s in schedule for x in s}) > 1  # it did adapt
    replayed = evaluate(sc, plan, seed=3, schedule=schedule)
    np.testing.assert_array_equal(replayed.tasks.completion_s, adapt.tasks.completion_s)
    np.testing.assert_array_equal(replayed.tasks.rounds, adapt.tasks.rounds)
    assert adaptive.seen[0] == (0, 0, True) and adaptive.seen[1][:2] == (0, 1)
    assert len(adaptive.seen) == len(adapt.jobs)  # asked once per (batch, round)
    with pytest.raises(PolicyError, match="controller chose l=0 in batch 0, round 0"):
        evaluate(sc, plan, controller=Constant(0))
    with pytest.raises(PolicyError, match="expected an int in 1..10"):
        evaluate(sc, plan, controller=Constant(11))


def test_bad_plans_fail_clearly():
    sc = small_scenario(6)
    good = sorted_plan(sc, 2)
    with pytest.raises(PlanError, match="task 5 appears in more than one batch|1 task\\(s\\) are in no batch"):
        evaluate(sc, {**good, "batches": [[0, 1, 2], [3, 4]]})
    with pytest.raises(PlanError, match="appears in more than one batch"):
        evaluate(sc, {**good, "batches": [[0, 1, 2], [2, 3, 4, 5]]})
    with pytest.raises(PlanError, match="speculation_length of batch 0 is 0"):
        evaluate(sc, {**good, "speculation_length": 0})
    with pytest.raises(PlanError, match="bandwidth_hz has 5 entries for 6 tasks"):
        evaluate(sc, {**good, "bandwidth_hz": [1e6] * 5})
    with pytest.raises(PlanError, match="replications must be >= 1"):
        evaluate(sc, good, replications=0)
    with pytest.raises(PlanError, match="schedule has 1 entries for 2 batches"):
        evaluate(sc, good, schedule=[[3]])
    tiny = Scenario.from_preset("paper", pair="tinyllama-1.1b/llama-7b", tasks=40, seed=0)
    with pytest.raises(PlanError, match=r"batch 0 \(40 tasks, I_max=\d+, O_max=\d+\) needs .* GB of SBS memory"):
        evaluate(tiny, {"batches": [list(range(40))], "speculation_length": 4,
                        "bandwidth_hz": tiny.uniform_bandwidth_hz().tolist()})
    # AD runs on the MBS, which has no memory limit
    assert evaluate(tiny, {"batches": [list(range(40))], "speculation_length": 4, "mode": "ad",
                           "bandwidth_hz": tiny.uniform_bandwidth_hz().tolist()}).latency_s > 0


def test_plan_object_and_dict_agree():
    sc = small_scenario(8)
    plan = sorted_plan(sc, 2)
    assert evaluate(sc, Plan.from_dict(plan)).latency_s == evaluate(sc, plan).latency_s


def test_more_bandwidth_and_the_optimal_allocation_help():
    sc = small_scenario(20, seed=7)
    uni = evaluate(sc, sorted_plan(sc, 4)).summary
    opt = evaluate(sc, sorted_plan(sc, 4, bandwidth="optimal")).summary
    assert opt["upload_makespan_s"] <= uni["upload_makespan_s"] and opt["makespan_s"] <= uni["makespan_s"]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 5), st.integers(1, 8), st.sampled_from(["expected", "iid", "trace"]))
def test_pipelined_never_slower_than_serial(seed, batches, l, acceptance):
    source = trace_frame() if acceptance == "trace" else acceptance
    sc = small_scenario(10, seed=seed % 1000, acceptance=source, output_max=120)
    plan = sorted_plan(sc, batches, l=l)
    pipe = evaluate(sc, plan, seed=seed)
    ser = evaluate(sc, {**plan, "mode": "sd-serial"}, seed=seed)
    assert pipe.latency_s <= ser.latency_s + 1e-9
    assert np.all(pipe.tasks.completion_s <= ser.tasks.completion_s + 1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 9), st.integers(1, 200),
       st.sampled_from(["sd-pipeline", "sd-serial", "ad"]), st.sampled_from(["expected", "iid", "trace"]))
def test_latency_is_non_decreasing_in_output_lengths(seed, task, extra, mode, acceptance):
    source = trace_frame() if acceptance == "trace" else acceptance
    sc = small_scenario(10, seed=seed % 1000, acceptance=source, output_max=120)
    plan = sorted_plan(sc, 3, l=4, mode=mode)
    longer_tasks = sc.tasks.copy()
    longer_tasks.loc[task, "output_tokens"] += extra
    longer = sc.with_tasks(longer_tasks)
    base = evaluate(sc, plan, seed=seed)
    more = evaluate(longer, plan, seed=seed)
    assert more.latency_s >= base.latency_s - 1e-9
    assert np.all(more.tasks.completion_s >= base.tasks.completion_s - 1e-9)
