"""Fidelity on the tiny run: finite errors, exact acceptance, a deliberately wrong predictor does worse, CLI JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from specedge.cli import main
from specedge.fidelity import STAGE_TIMES, PredictorPair, compare_run
from specedge.fidelity.compare import observed_acceptance
from specedge.serve.dataset import split_records
from specedge.traces.store import open_store

from tests.serve.tiny import RUN_ID

FIELDS = ("median_task_error", "p90_task_error", "makespan_error")


def test_errors_are_finite_and_the_observed_acceptance_is_exact(tiny_run):
    result = compare_run(RUN_ID, store=tiny_run["store"])
    table = result.table.set_index("predictor")
    # the run and its compute traces were recorded with speed probes (serve.probe), so measured-probed is added
    assert list(table.index) == ["affine", "roofline", "measured", "measured-probed", STAGE_TIMES]
    for field in FIELDS:
        values = table[field].to_numpy()
        assert np.isfinite(values).all() and (values >= 0).all()
    assert (table["p90_task_error"] >= table["median_task_error"]).all()
    assert table["rounds_match"].all()  # every task replays exactly its own rounds
    assert result.best() in ("affine", "roofline", "measured", "measured-probed")
    tasks = result.tasks
    assert len(tasks) == 3 * 5 and (tasks["measured_s"] > 0).all()
    d = result.diagnostics
    assert d["grid_coverage"] == {"draft": 1.0, "verify": 1.0}
    assert 0 <= d["draft_outside_pass_share"] < 1 and 0 <= d["verify_outside_pass_share"] < 1


def test_a_deliberately_wrong_predictor_has_larger_errors(tiny_run):
    good = compare_run(RUN_ID, store=tiny_run["store"])
    affine = good.table.set_index("predictor").loc["affine"]
    from specedge.fidelity.predictors import build_predictors, compute_rows
    from specedge.fidelity.compare import run_scenario

    store = open_store(tiny_run["store"])
    info = store.info(RUN_ID)
    parts = split_records(store.read(RUN_ID))
    tasks = parts["task"].sort_values("task").reset_index(drop=True)
    sc = run_scenario(info.metadata, tasks, observed_acceptance(parts["round"], len(tasks)), store=store)
    traces = info.metadata["compute_traces"]
    (fit,) = build_predictors(sc, compute_rows(store, traces["draft"], sc.draft.name),
                              compute_rows(store, traces["verify"], sc.target.name), names=("affine",))
    # every pass predicted 100 times as long as fitted: far above anything a loaded machine measures, so the
    # errors must grow whatever the fitted predictor's own error is
    slow = 100.0
    wrong = PredictorPair("wrong", replace(fit.draft, c1_s_per_flop=slow * fit.draft.c1_s_per_flop,
                                           c2_s=slow * fit.draft.c2_s),
                          replace(fit.verify, c1_s_per_flop=slow * fit.verify.c1_s_per_flop,
                                  c2_s=slow * fit.verify.c2_s))
    bad = compare_run(RUN_ID, store=tiny_run["store"], predictors=[fit, wrong]).table.set_index("predictor")
    assert bad.loc["affine", "median_task_error"] == pytest.approx(affine["median_task_error"])
    for field in FIELDS:
        assert bad.loc["wrong", field] > bad.loc["affine", field]


def test_cli_json_fields_and_latest_run_by_default(tiny_run, capsys):
    capsys.readouterr()
    assert main(["fidelity", "--json", "--store", str(tiny_run["store"])]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"] == RUN_ID
    for name in ("affine", "roofline", "measured"):
        for field in FIELDS:
            value = data["predictors"][name][field]
            assert isinstance(value, float) and 0 <= value < 100
    assert data["best_predictor"] in ("affine", "roofline", "measured", "measured-probed")
    assert main(["fidelity", RUN_ID, "--store", str(tiny_run["store"])]) == 0
    assert "median |task err|" in capsys.readouterr().out


def test_cli_bad_input(tiny_run, tmp_path, capsys):
    store = str(tiny_run["store"])
    capsys.readouterr()
    assert main(["fidelity", "no-such-run", "--store", store]) == 2
    assert "no-such-run" in capsys.readouterr().err
    info = open_store(store).info(RUN_ID)
    compute = info.metadata["compute_traces"]["draft"]
    assert main(["fidelity", compute, "--store", store]) == 2
    assert "not a run" in capsys.readouterr().err
    assert main(["fidelity", "--store", str(tmp_path / "empty")]) == 2
    assert "no run dataset" in capsys.readouterr().err
    assert main(["fidelity", RUN_ID, "--store", store, "--draft-trace", compute]) == 2
    assert "both --draft-trace and --verify-trace" in capsys.readouterr().err


def test_report_table_and_figure(tiny_run):
    from specedge.fidelity import fidelity_report

    table, fig = fidelity_report(store=tiny_run["store"])
    assert set(table["predictor"]) == {"affine", "roofline", "measured", "measured-probed", STAGE_TIMES}
    assert (table["run"] == RUN_ID).all() and table["plan"].iloc[0] == "2+1 l=2,3"
    assert len(fig.axes) >= 3 and fig.axes[0].get_title() == "affine"
    assert len(fig.axes[0].collections) >= 2  # the ±10% band and the tasks


def test_measured_fronthaul_adds_the_pipe_delay_to_every_round(tiny_run):
    zero = compare_run(RUN_ID, store=tiny_run["store"]).table.set_index("predictor")
    pipe = open_store(tiny_run["store"]).info(RUN_ID).metadata["pipe"]
    assert pipe["rounds"] > 0 and pipe["one_way_median_s"] > 0
    measured = compare_run(RUN_ID, store=tiny_run["store"], fronthaul="measured").table.set_index("predictor")
    assert (measured["predicted_makespan_s"] > zero["predicted_makespan_s"]).all()
    with pytest.raises(Exception, match="expected 'scenario', 'measured' or seconds"):
        compare_run(RUN_ID, store=tiny_run["store"], fronthaul="fast")
