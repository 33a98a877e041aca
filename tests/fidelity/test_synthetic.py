"""Fidelity arithmetic on synthetic runs whose answer is known.

A synthetic run is built from replay itself: its task times are what replay predicts for a plan with a known
compute predictor and a known host overhead, and its job records have passes of known length plus exactly that
overhead. So: the true predictor gives 0 error; the predictor without the overhead, given the overhead fitted back
from the job records, also gives 0; without any overhead it under-predicts. Noise floors and Kendall's τ are
checked against values worked out by hand.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from specedge.cli import main
from specedge.fidelity import PredictorPair, compare_run, memo
from specedge.fidelity.compare import observed_acceptance
from specedge.fidelity.repeats import FidelityStudy, noise_floor, noise_floor_of
from specedge.latency.compute import AffineCompute
from specedge.latency.host_overhead import JobOverhead, with_job_overhead
from specedge.plan import Plan
from specedge.replay import evaluate
from specedge.scenario import Scenario
from specedge.serve.dataset import run_table
from specedge.traces.store import open_store

PAIR = "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"
K = 6
SETS = dict(input_tokens_min=8, input_tokens_max=16, output_tokens_min=10, output_tokens_max=30,
            release="batch-uploads", bits_per_token=2000.0)
OVH = {"draft": JobOverhead(4e-4, 5e-5, 2e-5), "verify": JobOverhead(9e-4, 1e-4, 3e-5)}
PLANS = {
    "a": {"batches": [[0, 1, 2], [3, 4, 5]], "speculation_length": [3, 2]},
    "b": {"batches": [[0, 1, 2, 3, 4, 5]], "speculation_length": [4]},
    "c": {"batches": [[0], [1], [2], [3], [4], [5]], "speculation_length": [1, 2, 3, 1, 2, 3]},
}


def base_scenario():
    return Scenario.from_preset("paper", pair=PAIR, tasks=K, seed=0, **SETS)


def plain_predictors(sc) -> PredictorPair:
    return PredictorPair("plain", AffineCompute(sc.draft, 2e-9, 1e-3), AffineCompute(sc.target, 3e-9, 2e-3))


def true_predictors(sc) -> PredictorPair:
    p = plain_predictors(sc)
    return PredictorPair("true", with_job_overhead(p.draft, OVH["draft"]), with_job_overhead(p.verify, OVH["verify"]))


def round_rows(sc, plan: Plan, accepted_of_task) -> pd.DataFrame:
    """Every round of task k accepts min(l, accepted_of_task(k)) drafts; the last round is cut at the output."""
    rows = []
    for m, members in enumerate(plan.batches):
        l = int(plan.speculation_length[m])
        for k in members:
            left, n = int(sc.tasks["output_tokens"].iloc[k]), 0
            while left > 0:
                acc = min(l, accepted_of_task(k))
                rows.append({"task": k, "batch": m, "round": n, "drafted": l, "accepted": acc,
                             "tokens": min(acc + 1, left), "end_s": 0.0})
                left -= acc + 1
                n += 1
    return pd.DataFrame(rows)


def synthetic_run(store, run_id: str, plan_dict: dict, *, scale: float = 1.0, foreign: float = 0.01,
                  seed: int = 0) -> dict:
    """Write a run whose measured times are replay's with the true predictors (times ``scale``)."""
    sc0 = base_scenario()
    plan = Plan.from_dict({**plan_dict, "bandwidth_hz": list(sc0.uniform_bandwidth_hz()), "mode": "sd-pipeline"})
    rounds = round_rows(sc0, plan, lambda k: (k * 7 + seed) % 4)
    sc = dataclasses.replace(sc0, acceptance=observed_acceptance(rounds, K))
    truth = true_predictors(sc)
    res = evaluate(dataclasses.replace(sc, draft_compute=truth.draft, verify_compute=truth.verify), plan)
    t = res.tasks
    want_rounds = rounds.groupby("task")["round"].max().to_numpy() + 1
    assert np.array_equal(t["rounds"].to_numpy(), want_rounds)
    batch_of = {k: m for m, b in enumerate(plan.batches) for k in b}
    tasks = pd.DataFrame({"task": np.arange(K), "request_id": [f"r{k}" for k in range(K)],
                          "batch": [batch_of[k] for k in range(K)],
                          "speculation_length": [plan.speculation_length[batch_of[k]] for k in range(K)],
                          "input_tokens": sc.tasks["input_tokens"], "output_tokens": sc.tasks["output_tokens"],
                          "upload_s": t["upload_s"], "ready_s": t["ready_s"],
                          "first_token_s": t["first_token_s"] * scale, "completion_s": t["completion_s"] * scale,
                          "round": t["rounds"]})
    # jobs: live members per (batch, round); one pass of known length each, plus exactly the overhead
    jobs, passes = [], []
    rng = np.random.default_rng(seed)
    for m, members in enumerate(plan.batches):
        l = int(plan.speculation_length[m])
        for n in range(int(tasks.loc[list(members), "round"].max())):
            b = int((tasks.loc[list(members), "round"] > n).sum())
            for node in ("draft", "verify"):
                start = 100.0 * m + n
                compute = float(rng.uniform(1e-3, 4e-3))
                passes.append({"node": node, "phase": "decode", "batch": m, "round": n, "batch_size": b,
                               "new_tokens": 1, "context_tokens": 16, "start_s": start, "end_s": start + compute})
                jobs.append({"node": node, "batch": m, "round": n, "batch_size": b, "speculation_length": l,
                             "ready_s": start, "start_s": start,
                             "end_s": start + compute + float(OVH[node].job_s(b, l))})
    parts = {"task": tasks, "job": pd.DataFrame(jobs), "pass": pd.DataFrame(passes), "round": rounds}
    fw = {"before": {"max": foreign}, "during": {"max": foreign}}
    meta = {"source": "recorded", "note": "synthetic: built from replay (tests)", "pair": PAIR,
            "draft_model": sc.draft.name, "target_model": sc.target.name, "plan": plan.to_dict(),
            "plan_sha256": json.dumps(plan_dict, sort_keys=True), "seed": 0, "temperature": 0.0,
            "scenario": {"preset": "paper", "overrides": SETS, "seed": 0, "num_tasks": K,
                         "params": dataclasses.asdict(sc.params),
                         "distance_m": [float(x) for x in sc.tasks["distance_m"]]},
            "foreign_work": fw, "makespan_s": float(tasks["completion_s"].max())}
    store.write(run_table(parts, run_id), run_id, kind="run", metadata=meta)
    return {"parts": parts, "meta": meta, "predicted": t}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("synthetic-store"))
    synthetic_run(st, "run-a", PLANS["a"])
    return st


def test_a_run_built_from_replay_has_zero_error(store):
    sc = base_scenario()
    table = compare_run("run-a", store=store, predictors=[true_predictors(sc)], host_overhead="none").table
    row = table.set_index("predictor").loc["true"]
    assert row["median_task_error"] < 1e-9 and row["p90_task_error"] < 1e-9 and row["makespan_error"] < 1e-9
    assert row["ks_statistic"] == 0.0 and row["ks_pvalue"] == pytest.approx(1.0)
    assert bool(row["rounds_match"])


def test_a_known_overhead_is_fitted_back_from_the_job_records(store):
    sc = base_scenario()
    res = compare_run("run-a", store=store, predictors=[plain_predictors(sc)], host_overhead="self")
    info = res.diagnostics["host_overhead"]
    assert info["source"] == "self"
    for node in ("draft", "verify"):
        got = (info[node]["a_s"], info[node]["per_seq_s"], info[node]["per_token_s"])
        assert got == pytest.approx((OVH[node].a_s, OVH[node].per_seq_s, OVH[node].per_token_s), rel=1e-6)
    row = res.table.set_index("predictor").loc["plain"]
    assert row["median_task_error"] < 1e-6 and row["makespan_error"] < 1e-6
    # without the overhead every job is too short: every task is predicted early
    none = compare_run("run-a", store=store, predictors=[plain_predictors(sc)], host_overhead="none")
    row = none.table.set_index("predictor").loc["plain"]
    assert row["mean_signed_task_error"] < -1e-3 and row["makespan_error"] > 1e-3


def test_the_pair_overhead_comes_from_the_other_quiet_runs_only(tmp_path):
    st = open_store(tmp_path / "s")
    synthetic_run(st, "run-x", PLANS["a"])
    synthetic_run(st, "run-y", PLANS["b"], seed=1)
    synthetic_run(st, "run-noisy", PLANS["c"], foreign=0.3)
    sc = base_scenario()
    res = compare_run("run-x", store=st, predictors=[plain_predictors(sc)], host_overhead="pair")
    assert res.diagnostics["host_overhead"]["runs"] == ["run-y"]
    verify = res.diagnostics["host_overhead"]["verify"]
    # run-y has one l (4): b·l is 4·b, so t cannot be told from s and folds into it: s' = s + 4 t
    assert verify["dropped"] == ["per_token_s"] and verify["per_token_s"] == 0.0
    assert verify["a_s"] == pytest.approx(OVH["verify"].a_s, rel=1e-6)
    assert verify["per_seq_s"] == pytest.approx(OVH["verify"].per_seq_s + 4 * OVH["verify"].per_token_s, rel=1e-6)
    assert res.table.set_index("predictor").loc["plain", "makespan_error"] < 5e-3  # run-x has l = 3, 2
    assert not res.noisy and res.run["foreign_work"] == pytest.approx(0.01)
    noisy = compare_run("run-noisy", store=st, predictors=[plain_predictors(sc)])
    assert noisy.noisy and noisy.run["foreign_work"] == pytest.approx(0.3)


def test_noise_floor_by_hand():
    base = np.array([[1.0, 2.0, 4.0]])
    floor = noise_floor(np.vstack([base, 1.1 * base, 0.9 * base]))
    # mean over repeats = base; deviations 0, 0.1, 0.1 of every task -> median 0.1; makespans 4, 4.4, 3.6
    assert floor["repeats"] == 3
    assert floor["task_spread"] == pytest.approx(0.1)
    assert floor["makespan_spread"] == pytest.approx(0.1)
    assert floor["makespan_cv"] == pytest.approx(np.std([4.0, 4.4, 3.6], ddof=1) / 4.0)
    assert np.isnan(noise_floor(base)["task_spread"])  # one repeat has no spread


def test_repeats_rank_and_noisy_runs(tmp_path):
    st = open_store(tmp_path / "s")
    made = {name: synthetic_run(st, f"run-{name}-0", plan) for name, plan in PLANS.items()}
    # repeats of plan a measured 10% slower and 10% faster: a noise floor of 0.1 (by hand, as above)
    synthetic_run(st, "run-a-1", PLANS["a"], scale=1.1)
    synthetic_run(st, "run-a-2", PLANS["a"], scale=0.9)
    synthetic_run(st, "run-a-noisy", PLANS["a"], scale=3.0, foreign=0.5)
    sc = base_scenario()
    study = FidelityStudy(st, recorded=False, predictors=[true_predictors(sc)], host_overhead="none")
    plans = study.plan_rows("true").set_index("plan_sha256")
    a = plans.loc[json.dumps(PLANS["a"], sort_keys=True)]
    assert a["repeats"] == 4 and a["quiet_repeats"] == 3 and not a["floor_from_noisy"]
    assert a["task_spread"] == pytest.approx(0.1) and a["makespan_spread"] == pytest.approx(0.1)
    assert "run-a-noisy" not in a["run_ids"]  # left out of the headline median
    assert a["makespan_error"] == pytest.approx(0.1 / 1.1, rel=1e-6)  # median of |1 - 1/s| over s = 1, 1.1, 0.9
    floor = noise_floor_of(st, "run-a-1")  # what `specedge fidelity RUN --json` reports as noise_floor
    assert floor["task_spread"] == pytest.approx(0.1) and sorted(floor["run_ids"]) == ["run-a-0", "run-a-1", "run-a-2"]
    assert not floor["from_noisy_runs"]
    (entry,) = study.rank("true")
    assert {p["policy"] for p in entry["plans"]} == {"plan 2×3 l=2,3", "plan 1×6 l=4", "plan 6×1 l=1,2,3"}
    measured = [made[n]["predicted"]["completion_s"].max() for n in PLANS]
    assert entry["kendall_tau"] == pytest.approx(1.0) and entry["same_best"]
    assert sorted(p["measured_makespan_s"] for p in entry["plans"]) == pytest.approx(sorted(measured))
    assert set(entry) >= {"pair", "scenario", "plans", "kendall_tau", "same_best"}


def test_kendall_tau_of_a_reversed_order(tmp_path):
    st = open_store(tmp_path / "s")
    spans = {n: synthetic_run(st, f"probe-{n}", p)["predicted"]["completion_s"].max() for n, p in PLANS.items()}
    st2 = open_store(tmp_path / "s2")
    order = sorted(spans, key=spans.get)  # fastest first
    # scale the measured times so that the fastest predicted plan is measured slowest, and so on (τ = −1)
    target = {n: spans[order[-1 - i]] * (1.0 + 0.01 * i) for i, n in enumerate(order)}
    for n, p in PLANS.items():
        synthetic_run(st2, f"run-{n}", p, scale=target[n] / spans[n])
    (entry,) = FidelityStudy(st2, recorded=False, predictors=[true_predictors(base_scenario())],
                             host_overhead="none").rank("true")
    assert entry["kendall_tau"] == pytest.approx(-1.0) and not entry["same_best"]


def test_a_study_computed_elsewhere_is_taken_as_it_is(tmp_path):
    """What the report does: study_results in a worker, FidelityStudy(precomputed=...) in the main process."""
    from specedge.fidelity.repeats import study_results

    st = open_store(tmp_path / "s")
    for name, plan in PLANS.items():
        synthetic_run(st, f"run-{name}-0", plan)
    synthetic_run(st, "run-a-1", PLANS["a"], scale=1.1)
    kw = dict(recorded=False, predictors=[true_predictors(base_scenario())], host_overhead="none")
    results, recorded, completions = study_results(tmp_path / "s", **kw)  # a path: what a worker process gets
    here = FidelityStudy(st, **kw)
    memo.clear()
    taken = FidelityStudy(st, precomputed=(results, recorded, completions))
    import specedge.fidelity.repeats as repeats

    def no_read(*a, **k):
        raise AssertionError("the noise floors read a run the worker had read")

    with pytest.MonkeyPatch.context() as mp:  # the completions came with the results: no run is read again
        mp.setattr(repeats, "split_records", no_read, raising=False)
        mp.setattr("specedge.serve.dataset.split_records", no_read)
        pd.testing.assert_frame_equal(taken.plan_rows("true"), here.plan_rows("true"))
    assert taken.rank("true") == here.rank("true")
    memo.clear()
    two = FidelityStudy(st, precomputed=(results, recorded))  # without completions: read here, same floors
    pd.testing.assert_frame_equal(two.plan_rows("true"), here.plan_rows("true"))
    assert set(completions) == set(results) and completions["run-a-1"].flags.writeable is False
    with pytest.raises(ValueError, match="lack run"):
        FidelityStudy(st, precomputed=({k: v for k, v in results.items() if k != "run-a-1"}, recorded))


def test_cli_contract_on_the_tiny_run(tiny_run, capsys):
    from tests.serve.tiny import RUN_ID

    store = str(tiny_run["store"])
    capsys.readouterr()
    assert main(["fidelity", RUN_ID, "--json", "--store", store]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["noisy"], bool)
    assert data["foreign_work"] is None or 0 <= data["foreign_work"] <= 1
    for name in ("affine", "roofline", "measured"):
        p = data["predictors"][name]
        assert {"median_task_error", "p90_task_error", "makespan_error", "ks_statistic", "ks_pvalue"} <= set(p)
    assert main(["fidelity", "--rank", "--json", "--store", store]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert set(entry) >= {"pair", "scenario", "plans", "kendall_tau", "same_best"}
    (plan,) = entry["plans"]
    assert set(plan) >= {"policy", "run_ids", "predicted_makespan_s", "measured_makespan_s"}
    assert plan["run_ids"] == [RUN_ID] and entry["kendall_tau"] is None  # one plan: nothing to rank
    # what replay's choice of best costs (ranknoise.best_choice), added beside the keys above: one plan is its own
    # best, with no runner-up and nothing to resolve
    assert entry["predicted_best"] == entry["measured_best"] == plan["policy"] and entry["regret"] == 0.0
    assert entry["best_gap"] is None and entry["best_resolved"] is None and entry["regret_resolved"] is None
    assert entry["same_best"] is True and {"repeat_tau", "kendall_tau_resolved", "resolved_pairs"} <= set(entry)
    assert main(["fidelity", RUN_ID, "--rank", "--store", store]) == 2
    assert main(["fidelity", RUN_ID, "--host-overhead", "some", "--store", store]) == 2
