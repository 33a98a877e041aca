"""The report's one-predictor-for-all-runs table (fidelity.report.predictor_table), on a fake study whose answer
is worked out by hand: medians over the fresh quiet runs only, per pair, session and predictor."""

from types import SimpleNamespace

import pandas as pd
import pytest

from specedge.fidelity.compare import STAGE_TIMES
from specedge.fidelity.report import predictor_table


def _table(errors: dict) -> pd.DataFrame:
    return pd.DataFrame([{"predictor": name, "median_task_error": t, "makespan_error": m}
                         for name, (t, m) in errors.items()])


def _study():
    index = pd.DataFrame([
        {"run": "r1", "pair": "p", "session": "s1", "noisy": False, "stale": False},
        {"run": "r2", "pair": "p", "session": "s1", "noisy": False, "stale": False},
        {"run": "r3", "pair": "p", "session": "s1", "noisy": False, "stale": False},
        {"run": "r4", "pair": "p", "session": "s1", "noisy": True, "stale": False},   # left out: noisy
        {"run": "r5", "pair": "p", "session": "s1", "noisy": False, "stale": True},   # left out: stale
        {"run": "r6", "pair": "p", "session": "s2", "noisy": False, "stale": False},
    ])
    results = {
        "r1": {"a": (0.01, 0.10), "b": (0.05, 0.02), STAGE_TIMES: (0.0, 0.0)},
        "r2": {"a": (0.06, 0.30), "b": (0.01, 0.04), STAGE_TIMES: (0.0, 0.0)},
        "r3": {"a": (0.02, 0.20), "b": (0.09, 0.90), STAGE_TIMES: (0.0, 0.0)},
        "r4": {"a": (0.50, 0.50), "b": (0.50, 0.50)},
        "r5": {"a": (0.70, 0.70), "b": (0.70, 0.70)},
        "r6": {"a": (0.04, 0.08)},
    }
    return SimpleNamespace(index=index, results={k: SimpleNamespace(table=_table(v)) for k, v in results.items()})


def test_one_predictor_for_every_fresh_quiet_run():
    out = predictor_table(_study()).set_index(["session", "predictor"])
    assert set(out.index) == {("s1", "a"), ("s1", "b"), ("s2", "a")}  # no stage-times row
    assert out.loc[("s1", "a"), "runs"] == 3 and out.loc[("s1", "b"), "runs"] == 3
    assert out.loc[("s1", "a"), "median_task_error"] == pytest.approx(0.02)   # median of 0.01, 0.06, 0.02 (mean 0.03)
    assert out.loc[("s1", "a"), "makespan_error"] == pytest.approx(0.20)
    assert out.loc[("s1", "b"), "median_task_error"] == pytest.approx(0.05)   # median of 0.05, 0.01, 0.09
    assert out.loc[("s1", "b"), "makespan_error"] == pytest.approx(0.04)      # median of 0.02, 0.04, 0.90
    assert out.loc[("s2", "a"), "makespan_error"] == pytest.approx(0.08)


def test_no_fresh_quiet_run_gives_an_empty_table():
    study = _study()
    study.index["noisy"] = True
    out = predictor_table(study)
    assert out.empty and "makespan_error" in out.columns
