"""Fidelity arithmetic for online runs on a synthetic run built from the online simulator itself.

The run's request times are what the online engine predicts for a workload with a known compute predictor and
known per-request accepted counts; its round rows carry those counts. So the true predictor must come back with
0 error, and a wrong one must not.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import PredictorPair
from specedge.fidelity.online_run import accepted_matrix, compare_online_run, latest_static_run
from specedge.latency.compute import AffineCompute
from specedge.latency.host_overhead import JobOverhead, with_job_overhead
from specedge.online import MatrixFeed, OnlineConfig, simulate
from specedge.online.policies import FCFS
from specedge.online.workload import synthetic
from specedge.scenario import Scenario
from specedge.serve.dataset import run_table
from specedge.traces.store import open_store

PAIR = "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"
SETS = dict(input_tokens_min=8, input_tokens_max=16, output_tokens_min=10, output_tokens_max=30,
            release="batch-uploads", bits_per_token=2000.0)
N, L, BMAX = 14, 3, 4


def predictors(sc, slow: float = 1.0) -> PredictorPair:
    d = with_job_overhead(AffineCompute(sc.draft, 2e-9, 1e-3), JobOverhead(4e-4, 5e-5, 2e-5))
    v = with_job_overhead(AffineCompute(sc.target, 3e-9 * slow, 2e-3 * slow), JobOverhead(9e-4, 1e-4, 3e-5))
    return PredictorPair("true" if slow == 1.0 else "slow", d, v)


def online_meta(sc, w, fw: float = 0.01) -> dict:
    return {"source": "recorded", "note": "synthetic: built from the online simulator (tests)", "pair": PAIR,
            "draft_model": sc.draft.name, "target_model": sc.target.name, "seed": 0, "temperature": 0.0,
            "online": {"policy": "fcfs", "speculation_length": L, "arrival_s": [float(x) for x in w.arrival_s],
                       "config": {"num_slots": 2, "max_batch_size": BMAX, "uplink_rule": "equal-share"}},
            "scenario": {"preset": "paper", "overrides": SETS, "seed": 0, "num_tasks": N,
                         "params": dataclasses.asdict(sc.params), "distance_m": [float(x) for x in w.distance_m]},
            "foreign_work": {"before": {"max": fw}, "during": {"max": fw}}}


def synthetic_online_run(store, run_id: str, rate: float = 200.0):
    sc = Scenario.from_preset("paper", pair=PAIR, tasks=1, seed=0, **SETS)
    w = synthetic(sc.params, arrivals="poisson", rate_rps=rate, num_requests=N, seed=3)
    g = np.random.default_rng(7).integers(0, L + 1, (N, int(w.output_tokens.max())))
    meta = online_meta(sc, w)
    truth = predictors(sc)
    # the engine called directly with its own settings (not through the fidelity code under test)
    config = OnlineConfig(num_slots=2, max_batch_size=BMAX, uplink_rule="equal-share")
    res = simulate(dataclasses.replace(sc, draft_compute=truth.draft, verify_compute=truth.verify), w,
                   FCFS(speculation_length=L), config, feed=MatrixFeed(g))
    rows = []
    for k in range(N):
        left = int(w.output_tokens[k])
        for r in range(int(res.rounds[k])):
            acc = int(g[k, r])
            rows.append({"task": k, "batch": int(res.slot[k]), "round": r, "drafted": L, "accepted": acc,
                         "tokens": min(acc + 1, left), "end_s": 0.0})
            left -= acc + 1
        assert left <= 0
    tasks = pd.DataFrame({"task": np.arange(N), "request_id": [f"r{k}" for k in range(N)], "batch": res.slot,
                          "speculation_length": L, "input_tokens": w.input_tokens, "output_tokens": w.output_tokens,
                          "upload_s": res.upload_end_s, "ready_s": res.upload_end_s, "start_s": res.start_s,
                          "first_token_s": res.first_token_s, "completion_s": res.completion_s,
                          "round": res.rounds})
    job = pd.DataFrame([{"node": n, "batch": 0, "round": 0, "batch_size": 1, "speculation_length": L,
                         "ready_s": 0.0, "start_s": 0.0, "end_s": 2e-3} for n in ("draft", "verify")])
    passes = pd.DataFrame([{"node": n, "phase": "decode", "batch": 0, "round": 0, "batch_size": 1, "new_tokens": 1,
                            "context_tokens": 16, "start_s": 0.0, "end_s": 1e-3} for n in ("draft", "verify")])
    parts = {"task": tasks, "job": job, "pass": passes, "round": pd.DataFrame(rows)}
    store.write(run_table(parts, run_id), run_id, kind="run", metadata=meta)
    return sc, res


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("online-synthetic"))
    st.sc, st.res = synthetic_online_run(st, "run-online-a")
    return st


def test_the_run_has_batches_that_change(store):
    res = store.res
    assert res.member_rounds / res.jobs > 2.0  # continuous batching happened (else the test proves little)
    assert np.unique(res.slot).size == 2


def test_a_run_built_from_the_online_simulator_has_zero_error(store):
    result = compare_online_run("run-online-a", store=store, predictors=[predictors(store.sc)], host_overhead="none")
    row = result.table.set_index("predictor").loc["true"]
    for key in ("median_task_error", "p90_task_error", "makespan_error", "median_ttft_error"):
        assert row[key] < 1e-9, key
    assert row["ks_statistic"] == 0.0 and bool(row["rounds_match"])
    out = result.to_dict()
    assert out["online"] is True and out["noisy"] is False and out["foreign_work"] == pytest.approx(0.01)
    assert set(out["predictors"]["true"]) >= {"median_task_error", "makespan_error", "ks_pvalue"}


def test_a_wrong_predictor_is_seen(store):
    result = compare_online_run("run-online-a", store=store, predictors=[predictors(store.sc, slow=1.5)],
                                host_overhead="none")
    row = result.table.set_index("predictor").loc["slow"]
    assert row["median_task_error"] > 0.05 and row["makespan_error"] > 0.05 and row["mean_signed_task_error"] > 0


def test_the_accepted_counts_go_to_each_request_in_its_own_round_order():
    rounds = pd.DataFrame({"task": [1, 0, 1, 0, 1], "round": [7, 3, 5, 4, 6], "accepted": [2, 1, 0, 3, 1]})
    g = accepted_matrix(rounds, 2)
    assert g.tolist() == [[1, 3, 0], [0, 1, 2]]
    with pytest.raises(Exception, match="cover 2 requests"):
        accepted_matrix(rounds, 3)


def test_plan_based_consumers_skip_online_runs(store, tmp_path):
    from specedge.errors import DatasetNotFoundError
    from specedge.fidelity.repeats import run_index

    assert run_index(store).empty  # the store holds the online run only
    with pytest.raises(DatasetNotFoundError):
        latest_static_run(store)


def test_stage_times_recursion_by_hand():
    """Slot 0: task 0 (upload 0.1) in jobs 0 and 1; slot 1: task 1 (upload 0.5) in job 0; draft jobs take 1 s,
    verify jobs 2 s (slot 1's 0.5 s). With f = 0.5: (0,0) drafts 0.1-1.1, verifies 1.6-3.6; (1,0) drafts 1.1-2.1,
    verifies 3.6-4.1; (0,1) waits for 3.6 + 0.5, drafts 4.1-5.1, verifies 5.6-7.6. With f = 0: 0.1-1.1, 1.1-3.1;
    1.1-2.1, 3.1-3.6; 3.1-4.1, 4.1-6.1."""
    from specedge.fidelity.online_run import stage_time_times

    order = [(0, 0, 0.1), (1, 0, 1.1), (0, 1, 3.1)]  # (slot, job, draft start in the run: the order they ran)
    job = pd.DataFrame([{"node": node, "batch": m, "round": n, "start_s": s, "end_s": s + (1.0 if node == "draft"
                                                                                              else 2.0 - 1.5 * m)}
                        for m, n, s in order for node in ("draft", "verify")])
    rounds = pd.DataFrame({"task": [0, 1, 0], "batch": [0, 1, 0], "round": [0, 0, 1]})
    tasks = pd.DataFrame({"task": [0, 1], "upload_s": [0.1, 0.5]})
    first, done = stage_time_times({"job": job, "round": rounds}, tasks, 0.5)
    np.testing.assert_allclose(first, [3.6, 4.1])
    np.testing.assert_allclose(done, [7.6, 4.1])
    first, done = stage_time_times({"job": job, "round": rounds}, tasks, 0.0)
    np.testing.assert_allclose(first, [3.1, 3.6])
    np.testing.assert_allclose(done, [6.1, 3.6])
    assert stage_time_times({"job": job[job["round"] == 0], "round": rounds}, tasks) is None  # a job missing
