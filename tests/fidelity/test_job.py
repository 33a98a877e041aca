"""measured-job: a job-shaped grid plus its measured wake-up term, on a run built from replay with a known per-job
overhead (host + wake). The grid is exact at the plain predictor's shapes, so the only unknown is the term."""

from __future__ import annotations

import pytest

from specedge.fidelity import PredictorPair, compare_run
from specedge.latency.compute import MeasuredCompute
from specedge.latency.host_overhead import JobOverhead, with_job_overhead
from specedge.traces.store import open_store
from tests.fidelity.test_blend import grid_frame
from tests.fidelity.test_synthetic import OVH, PLANS, base_scenario, plain_predictors, synthetic_run

#: the wake-up part of the synthetic runs' true overhead (OVH): the rest is host overhead
WAKE = {"draft": (1e-4, 2e-5), "verify": (3e-4, 4e-5)}
HOST = {n: JobOverhead(OVH[n].a_s - WAKE[n][0], OVH[n].per_seq_s - WAKE[n][1], OVH[n].per_token_s) for n in OVH}


def write_job_grids(st, wake: bool = True) -> dict:
    sc = base_scenario()
    plain = plain_predictors(sc)
    frames = {}
    for node, model in (("draft", sc.draft.name), ("verify", sc.target.name)):
        frame = grid_frame(getattr(plain, node), model, 1.0).assign(dataset=f"compute-{model}-job")
        meta = {"source": "recorded", "note": "synthetic (tests)", "model": model, "measure_mode": "co-run",
                "grid_mode": "job"}
        if wake:
            meta["wake_up"] = {"version": 1, "samples": [], "fit": {"a_s": WAKE[node][0],
                                                                    "per_seq_s": WAKE[node][1]}}
        st.write(frame, f"compute-{model}-job", kind="compute", metadata=meta)
        frames[node] = frame
    return frames


@pytest.fixture(scope="module")
def job_store(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("job-store"))
    synthetic_run(st, "run-a", PLANS["a"])
    return st, write_job_grids(st)


def test_measured_job_is_the_grid_plus_host_plus_wake(job_store):
    st, frames = job_store
    sc = base_scenario()
    plain = plain_predictors(sc)
    res = compare_run("run-a", store=st, host_overhead=dict(HOST), contention=None,
                      predictors=[PredictorPair("plain", plain.draft, plain.verify)])
    info = res.diagnostics["job_grid"]
    assert info["source"] == "job grids"
    assert info["wake_up"]["draft"] == {"a_s": WAKE["draft"][0], "per_seq_s": WAKE["draft"][1]}
    row = res.table.set_index("predictor")
    # reference: the same grids with the *whole* true overhead summed by hand (not through fidelity.job)
    ref = {n: with_job_overhead(MeasuredCompute.from_trace(m, frames[n], allow_extrapolation=True),
                                JobOverhead(HOST[n].a_s + WAKE[n][0], HOST[n].per_seq_s + WAKE[n][1],
                                            HOST[n].per_token_s))
           for n, m in (("draft", sc.draft), ("verify", sc.target))}
    want = compare_run("run-a", store=st, host_overhead="none", contention=None, job_grid=False,
                       predictors=[PredictorPair("ref", ref["draft"], ref["verify"])]).table.set_index("predictor")
    assert row.loc["measured-job", "predicted_makespan_s"] == pytest.approx(want.loc["ref", "predicted_makespan_s"],
                                                                            rel=1e-12)
    # and the run (built from the true overhead) is predicted: the grid is exact except for prefill interpolation
    assert row.loc["measured-job", "makespan_error"] < 0.01
    assert row.loc["measured-job", "median_task_error"] < 0.01


def test_without_the_wake_term_every_task_is_early(tmp_path):
    st = open_store(tmp_path / "s")
    synthetic_run(st, "run-a", PLANS["a"])
    write_job_grids(st, wake=False)
    plain = plain_predictors(base_scenario())
    res = compare_run("run-a", store=st, host_overhead=dict(HOST), contention=None,
                      predictors=[PredictorPair("plain", plain.draft, plain.verify)])
    row = res.table.set_index("predictor").loc["measured-job"]
    assert row["mean_signed_task_error"] < 0
    assert res.diagnostics["job_grid"]["wake_up"] == {"draft": None, "verify": None}


def test_no_job_grid_no_measured_job(tmp_path):
    st = open_store(tmp_path / "s")
    synthetic_run(st, "run-a", PLANS["a"])
    plain = plain_predictors(base_scenario())
    res = compare_run("run-a", store=st, host_overhead="none", contention=None,
                      predictors=[PredictorPair("plain", plain.draft, plain.verify)])
    assert "measured-job" not in set(res.table["predictor"])
    assert "no job-shaped compute grid" in res.diagnostics["job_grid"]["reason"]


def test_a_run_naming_job_shaped_traces_gets_the_wake_term_on_its_base_predictors(job_store):
    st, _ = job_store
    sc = base_scenario()
    meta = st.info("run-a").metadata
    from specedge.fidelity.compare import run_predictors
    from specedge.serve.dataset import split_records

    parts = split_records(st.read("run-a"))
    ids = (f"compute-{sc.draft.name}-job", f"compute-{sc.target.name}-job")
    preds, traces, *_ = run_predictors(st, "run-a", meta, sc, parts, None, ids, dict(HOST))
    measured = next(p for p in preds if p.name == "measured")
    for node in ("draft", "verify"):
        ovh = getattr(measured, node).job_overhead
        assert float(ovh.job_s(3, 2)) == pytest.approx(float(OVH[node].job_s(3, 2)))
