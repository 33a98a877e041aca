"""The contention-aware pass calibration (specedge.fidelity.contention) on records whose answer is known.

Synthetic runs are written from replay (tests.fidelity.test_synthetic) with pass records laid out by hand: every
(batch, round) has one draft pass and one verify pass; the verify job is placed so that it covers a chosen share
u of the draft pass (so u is known without the code under test), and the draft pass lasts g·(1 + k·u) where g is
the base predictor's latency at its shape. The fit must give k back; with k = 0 the calibrated predictor is the
base one, so a run built from replay is predicted with zero error.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import PredictorPair, compare_run
from specedge.fidelity.contention import (CalibratedCompute, PassCalibration, busy_overlap, fit_pass_calibration,
                                          holdout_runs)
from specedge.serve.dataset import run_table
from specedge.traces.store import open_store
from tests.fidelity.test_synthetic import OVH, PLANS, base_scenario, plain_predictors, synthetic_run, true_predictors

CTX = 16.0


def laid_out_run(store, run_id: str, plan: dict, *, k: float, seed: int = 0) -> dict:
    """A synthetic run (task times from replay, true predictors) whose passes follow t = g (1 + k u) on the draft
    node, with u set by where the verify job starts, and t = g on the verify node."""
    scratch = open_store(store.root / f"scratch-{run_id}")
    made = synthetic_run(scratch, run_id, plan, seed=seed)
    parts, meta = made["parts"], made["meta"]
    base = plain_predictors(base_scenario())
    rng = np.random.default_rng(seed + 7)
    jobs, passes, truth = [], [], []
    for row in parts["job"][parts["job"]["node"] == "draft"].itertuples():
        b, l, s = int(row.batch_size), int(row.speculation_length), float(row.start_s)
        u = float(rng.uniform(0.0, 1.0))
        t_d = float(base.draft.latency_s(b, 1.0, CTX)) * (1.0 + k * u)
        t_v = float(base.verify.latency_s(b, l + 1.0, CTX))
        v_start = s + (1.0 - u) * t_d
        assert t_v > t_d  # the verify job outlasts the draft pass, so it covers exactly u of it
        common = {"batch": row.batch, "round": row.round, "batch_size": b}
        passes += [{"node": "draft", "phase": "decode", **common, "new_tokens": 1, "context_tokens": CTX,
                    "start_s": s, "end_s": s + t_d},
                   {"node": "verify", "phase": "verify", **common, "new_tokens": l + 1, "context_tokens": CTX,
                    "start_s": v_start, "end_s": v_start + t_v}]
        jobs += [{"node": "draft", **common, "speculation_length": l, "ready_s": s, "start_s": s,
                  "end_s": s + t_d + float(OVH["draft"].job_s(b, l))},
                 {"node": "verify", **common, "speculation_length": l, "ready_s": v_start, "start_s": v_start,
                  "end_s": v_start + t_v + float(OVH["verify"].job_s(b, l))}]
        truth.append(u)
    parts = {**parts, "job": pd.DataFrame(jobs), "pass": pd.DataFrame(passes)}
    store.write(run_table(parts, run_id), run_id, kind="run", metadata=meta)
    return {"parts": parts, "u": np.array(truth)}


def test_busy_overlap_by_hand():
    # other node busy on [1, 2] and [3, 5]
    got = busy_overlap([0.0, 1.5, 2.0, 4.0, 0.0], [1.0, 2.5, 3.0, 6.0, 6.0], [3.0, 1.0], [5.0, 2.0])
    assert got == pytest.approx([0.0, 0.5, 0.0, 0.5, 3.0 / 6.0])
    assert busy_overlap([0.0], [1.0], [], []).tolist() == [0.0]


def test_fit_recovers_a_known_calibration_and_drops_k_without_u_variation():
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-3, 1e-2, 400)
    u = rng.uniform(0.0, 1.0, 400)
    frame = pd.DataFrame({"node": "verify", "cls": "verify", "g_s": g, "u": u, "t_s": 1.1 * g + 5e-4 + 0.3 * u * g})
    cal = fit_pass_calibration(frame, "verify")["verify"]
    assert (cal.a, cal.d_s, cal.k) == pytest.approx((1.1, 5e-4, 0.3), rel=1e-6)
    flat = frame.assign(u=0.4, t_s=1.1 * g + 5e-4)
    cal = fit_pass_calibration(flat, "verify")["verify"]
    assert cal.dropped == ("k",) and cal.k == 0.0 and (cal.a, cal.d_s) == pytest.approx((1.1, 5e-4), rel=1e-6)
    # a class with too few passes takes the node's pooled fit
    assert "pooled" in fit_pass_calibration(frame, "verify")["decode"].dropped


def test_calibrated_compute_applies_u():
    sc = base_scenario()
    base = plain_predictors(sc).verify
    cal = {c: PassCalibration(a=1.0, d_s=0.0, k=0.5) for c in ("prefill", "decode", "verify")}
    alone = CalibratedCompute(base.model, base, cal, other_busy=0.0)
    busy = dataclasses.replace(alone, other_busy=1.0)
    g = base.latency_s(4.0, 3.0, CTX)
    assert alone.latency_s(4.0, 3.0, CTX) == pytest.approx(g)
    assert busy.latency_s(4.0, 3.0, CTX) == pytest.approx(1.5 * g)


@pytest.fixture(scope="module")
def slowed(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("contention-store"))
    made = {name: laid_out_run(st, f"run-{name}", PLANS[name], k=0.4, seed=i) for i, name in enumerate("ab")}
    return st, made


def test_a_known_contention_slowdown_is_fitted_back_from_other_runs(slowed):
    st, made = slowed
    # the code's overlap is the one laid out by hand
    from specedge.fidelity.contention import pass_overlap

    p = pass_overlap(made["b"]["parts"])
    assert p[p["node"] == "draft"]["u"].to_numpy() == pytest.approx(made["b"]["u"])
    sc = base_scenario()
    base = plain_predictors(sc)
    res = compare_run("run-a", store=st, predictors=[PredictorPair("measured", base.draft, base.verify)],
                      host_overhead="none", contention="plan")
    info = res.diagnostics["contention"]
    assert info["runs"] == ["run-b"]  # fitted on the other run only
    draft = info["draft"]["decode"]
    assert (draft["a"], draft["d_s"], draft["k"]) == pytest.approx((1.0, 0.0, 0.4), abs=1e-6)
    verify = info["verify"]["verify"]
    assert (verify["a"], verify["d_s"], verify["k"]) == pytest.approx((1.0, 0.0, 0.0), abs=1e-6)
    assert "measured-contention" in set(res.table["predictor"])
    assert 0.0 <= info["other_busy"]["draft"] <= 1.0


def test_a_run_built_from_replay_has_zero_error_with_the_calibrated_predictor(tmp_path):
    st = open_store(tmp_path / "s")
    for i, name in enumerate("abc"):
        laid_out_run(st, f"run-{name}", PLANS[name], k=0.0, seed=i)
    truth = true_predictors(base_scenario())
    res = compare_run("run-a", store=st, predictors=[PredictorPair("measured", truth.draft, truth.verify)],
                      host_overhead="none", contention="run")
    row = res.table.set_index("predictor").loc["measured-contention"]
    assert row["median_task_error"] < 1e-6 and row["makespan_error"] < 1e-6
    assert sorted(res.diagnostics["contention"]["runs"]) == ["run-b", "run-c"]


def test_the_run_and_its_plan_are_held_out(tmp_path):
    st = open_store(tmp_path / "s")
    for rid, plan in (("run-a0", "a"), ("run-a1", "a"), ("run-b", "b")):
        synthetic_run(st, rid, PLANS[plan])
    meta = st.info("run-a0").metadata
    assert holdout_runs(st, "run-a0", meta, "run") == ["run-a1", "run-b"]
    assert holdout_runs(st, "run-a0", meta, "plan") == ["run-b"]
    alone = open_store(tmp_path / "alone")
    synthetic_run(alone, "run-a0", PLANS["a"])
    base = plain_predictors(base_scenario())
    res = compare_run("run-a0", store=alone, predictors=[PredictorPair("measured", base.draft, base.verify)],
                      host_overhead="none")
    assert "measured-contention" not in set(res.table["predictor"])  # never fitted on the run itself
    assert "no other quiet run" in res.diagnostics["contention"]["reason"]


class _Named:
    """A predictor built from a named dataset (cacheable by its source)."""

    def __init__(self, base, source: str, scale: float = 1.0):
        self.base, self.source, self.model, self.scale = base, source, base.model, scale

    def latency_s(self, *shape):
        return self.scale * self.base.latency_s(*shape)


def test_samples_are_cached_per_run_and_grid_source(slowed):
    from specedge.fidelity.contention import calibration_samples

    st, made = slowed
    base = plain_predictors(base_scenario())
    parts = [made["a"]["parts"], made["b"]["parts"]]
    keys = [("store", "run-a", "x"), ("store", "run-b", "y")]
    d, v = _Named(base.draft, "grid-1"), _Named(base.verify, "grid-1")
    plain = calibration_samples(parts, d, v, ["run-a", "run-b"])
    first = calibration_samples(parts, d, v, ["run-a", "run-b"], keys)
    again = calibration_samples(parts, d, v, ["A", "B"], keys)
    pd.testing.assert_frame_equal(plain, first)
    assert again["g_s"].to_numpy() == pytest.approx(plain["g_s"].to_numpy())
    assert set(again["run"]) == {"A", "B"}
    # another grid (another source) is not served from the cache
    other = calibration_samples(parts, _Named(base.draft, "grid-2", 2.0), _Named(base.verify, "grid-2", 2.0),
                                ["run-a", "run-b"], keys)
    assert other["g_s"].to_numpy() == pytest.approx(2.0 * plain["g_s"].to_numpy())
