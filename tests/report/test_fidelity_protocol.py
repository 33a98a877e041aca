"""Section 6 under the issue-10 protocol: noisy runs are listed but kept out of the headline; plans and rank tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity.compare import run_noise
from specedge.fidelity.report import headline
from specedge.report import sections
from specedge.report.build import _Stages
from specedge.report.config import load_config
from specedge.report.document import Report
from specedge.traces.store import open_store


def test_headline_uses_quiet_plans_only():
    plans = pd.DataFrame({
        "pair": ["p"] * 3, "noisy": [False, False, True],
        "median_task_error": [0.02, 0.04, 0.9], "makespan_error": [0.01, 0.03, 0.8],
        "task_spread": [0.01, 0.02, 0.5], "makespan_spread": [0.01, 0.01, 0.4],
        "recorded_makespan_error": [0.05, 0.07, 0.9]})
    (row,) = headline(plans).to_dict(orient="records")
    assert row["plans"] == 3 and row["quiet_plans"] == 2
    assert row["median_task_error"] == pytest.approx(0.03) and row["worst_median_task_error"] == pytest.approx(0.04)
    assert row["makespan_error"] == pytest.approx(0.02) and row["recorded_makespan_error"] == pytest.approx(0.06)


def test_the_shipped_store_section(tmp_path):
    store = open_store()
    runs = [i for i in store.list() if i.kind == "run" and not i.metadata.get("online")]  # online runs: own table
    assert runs
    ctx = sections.Context(report=Report(out=tmp_path / "out", title="t"), cfg=load_config(quick=True),
                           store=str(store.root), workers=1, stages=_Stages(None))
    sections.fidelity(ctx)
    (sec,) = ctx.report.sections
    kinds = [b.kind for b in sec.blocks]
    tables = tmp_path / "out" / "tables"
    per_run = pd.read_csv(tables / "fidelity.csv")
    assert {"noisy", "foreign_work", "ks_statistic", "ks_pvalue"} <= set(per_run.columns)
    quiet = [i for i in runs if not run_noise(i.metadata)[0]]
    if not quiet:  # every shipped run was measured under load: a note instead of headline numbers
        assert "note" in kinds and any("No quiet run" in getattr(b, "text", "") for b in sec.blocks)
        assert per_run["noisy"].all()
    else:
        assert (tables / "fidelity-headline.csv").exists()
        one = pd.read_csv(tables / "fidelity-predictors.csv")  # one predictor held to every fresh quiet run
        assert {"pair", "session", "predictor", "runs", "median_task_error", "makespan_error"} <= set(one.columns)
        assert "stage-times" not in set(one["predictor"]) and (one["runs"] >= 1).all()
    plans = pd.read_csv(tables / "fidelity-plans.csv")
    assert {"repeats", "quiet_repeats", "task_spread", "makespan_spread", "recorded_makespan_error"} <= set(
        plans.columns)
    assert plans["repeats"].sum() == len(runs)
    rank = pd.read_csv(tables / "fidelity-rank.csv")
    assert set(rank["pair"]) == {i.metadata["pair"] for i in runs}
    tau = rank["kendall_tau"].dropna().to_numpy()
    assert ((tau >= -1) & (tau <= 1)).all() and np.isfinite(tau).all()
