"""Reading asv result files without asv."""

from __future__ import annotations

import json

import pytest

from specedge.report.asv_results import all_results, latest

COLUMNS = ["result", "params", "version", "started_at", "duration"]


def _write(root, machine, name, date, results):
    d = root / machine
    d.mkdir(parents=True, exist_ok=True)
    (d / "machine.json").write_text(json.dumps({"machine": machine, "version": 1}))
    (d / name).write_text(json.dumps({
        "commit_hash": name[:8] + "0" * 32, "env_name": "virtualenv-py3.11", "date": date,
        "params": {"machine": machine, "python": "3.11"}, "python": "3.11", "requirements": {},
        "env_vars": {}, "result_columns": COLUMNS, "results": results, "durations": {}, "version": 2}))


def test_results_expand_by_parameters_and_latest_keeps_the_newest_value_of_each(tmp_path):
    root = tmp_path / "results"
    _write(root, "box", "aaaaaaaa-virtualenv.json", 1000, {
        "optimizer.Time.time_dp": [[0.5, 0.9], [["10", "100"]], "v", 1, 1.0],
        "optimizer.Gap.track_gap": [[0.002], [], "v", 1, 1.0],
    })
    _write(root, "box", "bbbbbbbb-virtualenv.json", 2000, {
        "optimizer.Time.time_dp": [[0.01, None], [["10", "100"]], "v", 1, 1.0],
    })
    (root / "benchmarks.json").write_text(json.dumps({
        "optimizer.Time.time_dp": {"type": "time", "unit": "seconds", "param_names": ["tasks"]},
        "optimizer.Gap.track_gap": {"type": "track", "unit": "fraction", "param_names": []},
        "version": 2}))
    rows = all_results(root)
    assert len(rows) == 5
    assert list(rows["commit"].unique()) == ["aaaaaaaa", "bbbbbbbb"]  # oldest first
    failed = rows[(rows.commit == "bbbbbbbb") & (rows.params == "tasks=100")]
    assert failed["value"].isna().all()  # None (failed) -> NaN
    now = latest(rows).set_index(["benchmark", "params"])
    assert now.loc[("optimizer.Time.time_dp", "tasks=10"), "value"] == pytest.approx(0.01)
    assert now.loc[("optimizer.Time.time_dp", "tasks=10"), "commit"] == "bbbbbbbb"
    # the failed newer run does not hide the older measurement
    assert now.loc[("optimizer.Time.time_dp", "tasks=100"), "value"] == pytest.approx(0.9)
    assert now.loc[("optimizer.Gap.track_gap", ""), "unit"] == "fraction"


def test_no_or_unreadable_results_give_an_empty_frame(tmp_path):
    assert all_results(tmp_path / "absent").empty
    (tmp_path / "results" / "m").mkdir(parents=True)
    (tmp_path / "results" / "m" / "broken.json").write_text("{not json")
    assert all_results(tmp_path / "results").empty
