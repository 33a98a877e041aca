"""Plans are identified by their schedule, not by the policy that made them: runs of one schedule are pooled as
repeats of one plan (rank fidelity, per-plan table, noise floor); different schedules are never pooled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specedge.fidelity.repeats import MIN_DISTINCT_PLANS, FidelityStudy, noise_floor_of
from specedge.fidelity.schedule import schedule_sha256
from specedge.traces.store import open_store
from specedge.serve.dataset import run_table
from tests.fidelity.test_synthetic import PLANS, base_scenario, synthetic_run, true_predictors

BW = [1.0e6, 2.0e6, 3.0e6, 4.0e6]


def plan(batches, l, mode="sd-pipeline", bw=BW, **meta):
    return {"batches": batches, "speculation_length": l, "bandwidth_hz": list(bw), "mode": mode,
            **({"meta": meta} if meta else {})}


# ------------------------------------------------------------------------------------------- the key
def test_same_schedule_same_hash():
    one = plan([[0, 1, 2, 3]], 1, policy="dp-refined", evaluations=51)
    assert schedule_sha256(one) == schedule_sha256(plan([[0, 1, 2, 3]], [1], "sd-serial", policy="sd-serial"))
    assert schedule_sha256(one) == schedule_sha256(plan([[3, 1, 0, 2]], 1))  # a batch is a set
    two = plan([[0, 1], [2, 3]], [2, 3])
    assert schedule_sha256(two) == schedule_sha256(plan([[1, 0], [3, 2]], [2, 3], policy="x"))
    assert schedule_sha256(plan([[0, 1, 2, 3]], 2, "ad")) == schedule_sha256(plan([[0, 1, 2, 3]], 5, "ad"))
    assert schedule_sha256(one) == schedule_sha256(plan([[0, 1, 2, 3]], 1, bw=[x * (1 + 1e-15) for x in BW]))


@pytest.mark.parametrize("other", [
    plan([[0, 1, 2, 3]], 2),                          # l
    plan([[0, 1, 2, 3]], 1, bw=[1e6, 2e6, 3e6, 5e6]),  # a bandwidth
    plan([[0, 1], [2, 3]], 1),                        # batches
    plan([[0, 1, 2, 3]], 1, "ad"),                    # AD against SD
])
def test_different_schedules_differ(other):
    assert schedule_sha256(plan([[0, 1, 2, 3]], 1)) != schedule_sha256(other)


def test_with_several_batches_order_l_and_mode_matter():
    two = plan([[0, 1], [2, 3]], [2, 3])
    assert schedule_sha256(plan([[0, 1], [2, 3]], 2)) != schedule_sha256(plan([[2, 3], [0, 1]], 2))  # job order
    assert schedule_sha256(two) != schedule_sha256(plan([[0, 1], [2, 3]], [3, 2]))  # l per batch
    assert schedule_sha256(two) != schedule_sha256(plan([[0, 1], [2, 3]], [2, 3], "sd-serial"))  # overlap


# --------------------------------------------------------------------------------- pooled repeats
def relabel(store, src: str, dst: str, *, mode: str | None = None, policy: str | None = None, scale=None):
    """Copy run ``src`` to ``dst`` as if another policy (and mode) had produced the same schedule."""
    info = store.info(src)
    meta = json.loads(json.dumps(info.metadata))
    if mode:
        meta["plan"]["mode"] = mode
    if policy:
        meta["plan"]["meta"] = {"policy": policy}
        meta["policy"] = policy
    meta["plan_sha256"] = f"{src}->{dst}"
    table = store.read(src)
    if scale is not None:
        from specedge.serve.dataset import split_records

        parts = split_records(table)
        for col in ("first_token_s", "completion_s"):
            parts["task"][col] = parts["task"][col] * scale
        meta["makespan_s"] = float(parts["task"]["completion_s"].max())
        table = run_table(parts, dst)
    store.write(table, dst, kind="run", metadata=meta)


@pytest.fixture(scope="module")
def pooled_store(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("pooled"))
    made = {n: synthetic_run(st, f"run-{n}", p) for n, p in PLANS.items()}
    # plan b (one batch of 6, l = 4) "made" by two policies, pipelined and serial: one schedule, 3 runs
    relabel(st, "run-b", "run-b-dp", policy="dp-refined", scale=1.2)
    relabel(st, "run-b", "run-b-serial", mode="sd-serial", policy="sd-serial", scale=0.9)
    relabel(st, "run-b", "run-b-maxbatch", policy="max-batching", scale=1.05)
    # the same batch with l = 3: another schedule, never pooled with b
    synthetic_run(st, "run-b-l3", {"batches": PLANS["b"]["batches"], "speculation_length": [3]})
    study = FidelityStudy(st, recorded=False, predictors=[true_predictors(base_scenario())], host_overhead="none")
    return st, study, made


def test_identical_schedules_are_pooled(pooled_store):
    st, study, made = pooled_store
    plans = study.plan_rows("true")
    assert len(plans) == 4  # a, b (4 runs, 3 policies + its plan file), b with l = 3, c
    b = plans[plans["run_ids"].map(lambda r: "run-b-dp" in r)].iloc[0]
    assert b["plan"] == "dp-refined = max-batching = plan 1×6 l=4 = sd-serial"
    assert sorted(b["run_ids"]) == ["run-b", "run-b-dp", "run-b-maxbatch", "run-b-serial"]
    assert b["repeats"] == 4 and b["quiet_repeats"] == 4
    span = float(made["b"]["predicted"]["completion_s"].max())
    # the pooled plan's measured makespan is the median of its runs' makespans (1, 1.2, 0.9, 1.05 × span)
    assert b["measured_makespan_s"] == pytest.approx(np.median([1.0, 1.2, 0.9, 1.05]) * span)
    assert b["predicted_makespan_s"] == pytest.approx(span)
    floor = noise_floor_of(st, "run-b-serial")
    assert floor["repeats"] == 4 and sorted(floor["run_ids"]) == sorted(b["run_ids"])
    assert floor["makespan_spread"] > 0.04


def test_different_schedules_are_not_pooled(pooled_store):
    _, study, made = pooled_store
    plans = study.plan_rows("true")
    l3 = plans[plans["run_ids"].map(lambda r: r == ["run-b-l3"])]
    assert len(l3) == 1 and l3.iloc[0]["plan"] == "plan 1×6 l=3" and l3.iloc[0]["repeats"] == 1
    a = plans[plans["run_ids"].map(lambda r: r == ["run-a"])]
    assert len(a) == 1 and a.iloc[0]["repeats"] == 1


def test_rank_counts_distinct_plans_and_flags_too_few(pooled_store):
    _, study, _ = pooled_store
    (entry,) = study.rank("true")
    assert entry["distinct_plans"] == 4 == len(entry["plans"]) and entry["too_few_plans"]
    assert 4 < MIN_DISTINCT_PLANS
    names = [p["policy"] for p in entry["plans"]]
    assert "dp-refined = max-batching = plan 1×6 l=4 = sd-serial" in names and len(set(names)) == 4
    assert {"policy", "run_ids", "predicted_makespan_s", "measured_makespan_s"} <= set(entry["plans"][0])


def test_a_serial_plan_file_is_labelled_with_its_mode():
    from specedge.fidelity.repeats import plan_label

    assert plan_label({"plan": plan([[0, 1], [2, 3]], 2, "sd-serial")}) == "plan 2×2 l=2 sd-serial"
    assert plan_label({"plan": plan([[0, 1], [2, 3]], 2)}) == "plan 2×2 l=2"


def test_contention_leave_plan_out_leaves_out_every_run_of_the_schedule(pooled_store):
    from specedge.fidelity.contention import holdout_runs

    st, _, _ = pooled_store
    meta = st.info("run-b-serial").metadata
    assert holdout_runs(st, "run-b-serial", meta, "plan") == ["run-a", "run-b-l3", "run-c"]
    assert "run-b-dp" in holdout_runs(st, "run-b-serial", meta, "run")


def test_cli_text_says_how_many_distinct_plans(tiny_run, capsys):
    from specedge.cli import main

    capsys.readouterr()
    assert main(["fidelity", "--rank", "--store", str(tiny_run["store"])]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "distinct plans 1" in out
    assert "Kendall τ n/a," in out  # one plan: nothing to rank
    assert f"only 1 distinct plans (at least {MIN_DISTINCT_PLANS} wanted)" in out


def test_cli_title_rounds_tau():
    from specedge.cli.serve import _tau_text

    assert _tau_text(0.9999999999999999) == "1.00"  # scipy's τ of a perfect order, as the title used to print it
    assert _tau_text(0.8666666666666667) == "0.87"
    assert _tau_text(-1.0) == "-1.00"
    assert _tau_text(None) == "n/a"
