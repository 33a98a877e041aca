"""Sessions: a compute grid and the runs measured with it. A run recorded long after its grid is stale; a plan's
errors, noise floor and rank fidelity never mix sessions (the machine's speed drifts between them)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import repeats
from specedge.fidelity.repeats import MAX_GRID_AGE_S, FidelityStudy, run_index, session_label, usable_runs

PLAN = {"batches": [[0, 1], [2, 3]], "speculation_length": [2, 3], "bandwidth_hz": [1e6] * 4,
        "mode": "sd-pipeline"}
QUIET = {"before": {"max": 0.0}, "during": {"max": 0.01}}


def info(id_, kind, created, **meta):
    return SimpleNamespace(id=id_, kind=kind, created=created, metadata=meta)


def run(id_, created, grid, *, noisy=False):
    fw = {"before": {"max": 0.5}, "during": {"max": 0.5}} if noisy else QUIET
    traces = {"draft": f"compute-d-{grid}", "verify": f"compute-v-{grid}"} if grid else {}
    return info(id_, "run", created, pair="d/v", plan=PLAN, plan_sha256="p", foreign_work=fw, makespan_s=1.0,
                temperature=0.0, compute_traces=traces, scenario={"num_tasks": 4, "seed": 0})


class FakeStore:
    def __init__(self, infos):
        self.infos = infos

    def list(self):
        return list(self.infos)

    def read(self, dataset_id):  # records are read through plan_noise_floor, replaced in the tests that need it
        raise AssertionError(f"unexpected read of {dataset_id}")


def test_session_label():
    assert session_label(("compute-x-serve-20261130T101516-fidelity", "compute-y-serve-20261130T101516-fidelity")) \
        == "20261130T101516"
    assert session_label((None, None)) == "(newest)"
    assert session_label(("a", "b")) == "a + b"


def test_grid_age_and_stale():
    store = FakeStore([
        # the verify grid written 5 minutes after the draft grid: the age counts from the later one
        info("compute-d-20261130T100000", "compute", "2026-11-30T10:00:00+00:00"),
        info("compute-v-20261130T100000", "compute", "2026-11-30T10:05:00+00:00"),
        run("run-fresh", "2026-11-30T10:20:00+00:00", "20261130T100000"),
        run("run-edge", "2026-11-30T10:35:00+00:00", "20261130T100000"),
        run("run-stale", "2026-11-30T10:36:00+00:00", "20261130T100000"),
        run("run-none", "2026-11-30T14:00:00+00:00", None),
    ])
    idx = run_index(store).set_index("run")
    assert idx.loc["run-fresh", "grid_age_s"] == pytest.approx(15 * 60)
    assert idx.loc["run-edge", "grid_age_s"] == pytest.approx(MAX_GRID_AGE_S)
    assert not idx.loc["run-edge", "stale"]  # exactly the limit is still fresh
    assert idx.loc["run-stale", "stale"]
    assert not idx.loc["run-fresh", "stale"]
    assert np.isnan(idx.loc["run-none", "grid_age_s"]) and not idx.loc["run-none", "stale"]
    assert idx.loc["run-fresh", "session"] == "20261130T100000"
    assert run_index(store, max_grid_age_s=10 * 60).set_index("run").loc["run-fresh", "stale"]


def test_usable_runs_prefers_fresh_then_quiet():
    part = pd.DataFrame({"run": ["a", "b", "c"], "noisy": [False, False, True], "stale": [False, True, False]})
    used, status = usable_runs(part)
    assert list(used["run"]) == ["a"] and status == "fresh"
    used, status = usable_runs(part.assign(stale=[True, True, False]))
    assert list(used["run"]) == ["a", "b"] and status == "stale grid"
    used, status = usable_runs(part.assign(noisy=True))
    assert len(used) == 3 and status == "noisy"


# ------------------------------------------------------------------ plan rows and rank, from run rows
def run_rows(*rows):
    cols = ["run", "pair", "scenario", "plan", "plan_sha256", "schedule", "noisy", "session", "stale",
            "median_task_error", "makespan_error", "ks_statistic", "ks_pvalue", "recorded_makespan_error",
            "recorded_median_task_error", "predicted_makespan_s", "measured_makespan_s",
            "recorded_predicted_makespan_s"]
    out = []
    for r in rows:
        run_id, session, plan, pred, meas, *rest = r
        stale = bool(rest[0]) if rest else False
        out.append(dict(zip(cols, [run_id, "d/v", "K=4", plan, plan, plan, False, session, stale,
                                   abs(pred / meas - 1), abs(pred / meas - 1), 0.1, 0.9, 0.1, 0.1, pred, meas,
                                   pred])))
    return pd.DataFrame(out)


@pytest.fixture
def study(monkeypatch):
    st = FidelityStudy.__new__(FidelityStudy)
    st.store = None
    floors = {}

    def fake_floor(store, ids):
        floors[tuple(ids)] = True
        spans = np.array([float(i.split("@")[1]) for i in ids])
        spread = float(np.median(np.abs(spans - spans.mean()) / spans.mean())) if len(ids) > 1 else float("nan")
        return {"repeats": len(ids), "task_spread": spread, "makespan_spread": spread, "makespan_cv": spread}

    monkeypatch.setattr(repeats, "plan_noise_floor", fake_floor)
    return st, floors


def test_plan_rows_never_mix_sessions(study, monkeypatch):
    st, floors = study
    rows = run_rows(("r1@10", "A", "p", 10.0, 10.0), ("r2@11", "A", "p", 10.0, 11.0),
                    ("r3@7", "B", "p", 7.0, 7.0), ("r4@7.2", "B", "p", 7.0, 7.2),
                    ("r5@9", "A", "p", 10.0, 9.0, True))  # a stale run of session A
    monkeypatch.setattr(FidelityStudy, "run_rows", lambda self, predictor=None: rows)
    plans = st.plan_rows().set_index("session")
    assert list(plans.index) == ["A", "B"]
    assert plans.loc["A", "run_ids"] == ["r1@10", "r2@11"]  # the stale run left out
    assert plans.loc["A", "stale_repeats"] == 1 and plans.loc["A", "runs_used"] == "fresh"
    assert plans.loc["A", "makespan_spread"] == pytest.approx(0.5 / 10.5)  # within A only
    assert plans.loc["B", "makespan_spread"] == pytest.approx(0.1 / 7.1)
    assert plans.loc["A", "measured_makespan_s"] == pytest.approx(10.5)
    assert ("r1@10", "r2@11", "r3@7", "r4@7.2") not in floors


def test_rank_uses_one_session(study, monkeypatch):
    st, _ = study
    # session A: three plans in the right order; session B (later): two plans, in the wrong order;
    # session C (latest): three plans but only with stale runs
    rows = run_rows(("a1@1", "A", "x", 1.0, 1.0), ("a2@2", "A", "y", 2.0, 2.0), ("a3@3", "A", "z", 3.0, 3.0),
                    ("b1@1", "B", "x", 2.0, 1.0), ("b2@2", "B", "y", 1.0, 2.0),
                    ("c1@1", "C", "x", 3.0, 1.0, True), ("c2@2", "C", "y", 2.0, 2.0, True),
                    ("c3@3", "C", "z", 1.0, 3.0, True))
    monkeypatch.setattr(FidelityStudy, "run_rows", lambda self, predictor=None: rows)
    (entry,) = st.rank("true")
    assert entry["session"] == "A"
    assert entry["distinct_plans"] == 3 and entry["kendall_tau"] == pytest.approx(1.0) and entry["same_best"]
    # with A gone, B (fresh, 2 plans) beats C (3 plans, all stale)
    monkeypatch.setattr(FidelityStudy, "run_rows", lambda self, predictor=None: rows[rows["session"] != "A"])
    (entry,) = st.rank("true")
    assert entry["session"] == "B" and entry["kendall_tau"] == pytest.approx(-1.0) and not entry["same_best"]
    # a tie in plan count goes to the latest session
    more = pd.concat([rows, run_rows(("d1@1", "D", "x", 1.0, 1.0), ("d2@2", "D", "y", 2.0, 2.0),
                                     ("d3@3", "D", "z", 3.3, 3.0))])
    monkeypatch.setattr(FidelityStudy, "run_rows", lambda self, predictor=None: more)
    (entry,) = st.rank("true")
    assert entry["session"] == "D"


# ------------------------------------------------------------------------------------ the top-up
def test_topup_joins_the_newest_grid_session_only():
    from datetime import datetime, timedelta, timezone

    from specedge.fidelity.topup import latest_grid, scenario_plans

    now = datetime.now(timezone.utc)
    ago = lambda minutes: (now - timedelta(minutes=minutes)).isoformat()  # noqa: E731
    store = FakeStore([
        info("compute-d-OLD", "compute", ago(300)), info("compute-v-OLD", "compute", ago(299)),
        info("compute-d-NEW", "compute", ago(12)), info("compute-v-NEW", "compute", ago(10)),
        run("run-old-1", ago(290), "OLD"), run("run-old-2", ago(280), "OLD"),
        run("run-new-1", ago(5), "NEW"),
        run("run-new-noisy", ago(4), "NEWER", noisy=True),  # a noisy run's grid is not a session to join
    ])
    traces, age = latest_grid(store, "d/v", 4)
    assert traces == ("compute-d-NEW", "compute-v-NEW")
    assert age == pytest.approx(10 * 60, abs=5)
    (p,) = scenario_plans(store, "d/v", 4, traces)
    assert p.run_ids == ("run-new-1",)
    (everything,) = scenario_plans(store, "d/v", 4)
    assert len(everything.run_ids) == 3


def test_noise_floor_of_a_run_stays_in_its_session(study):
    from specedge.fidelity.repeats import noise_floor_of

    store = FakeStore([
        info("compute-d-A", "compute", "2026-11-30T10:00:00+00:00"),
        info("compute-v-A", "compute", "2026-11-30T10:00:00+00:00"),
        info("compute-d-B", "compute", "2026-11-30T14:00:00+00:00"),
        info("compute-v-B", "compute", "2026-11-30T14:00:00+00:00"),
        run("a@10", "2026-11-30T10:10:00+00:00", "A"), run("b@11", "2026-11-30T10:12:00+00:00", "A"),
        run("c@7", "2026-11-30T14:10:00+00:00", "B"),
        run("d@9", "2026-11-30T12:00:00+00:00", "A"),  # stale: recorded 2 h after grid A
    ])
    floor = noise_floor_of(store, "a@10")
    assert sorted(floor["run_ids"]) == ["a@10", "b@11"] and floor["session"] == "compute-d-A + compute-v-A"
    assert floor["makespan_spread"] == pytest.approx(0.5 / 10.5) and not floor["from_stale_grid"]
