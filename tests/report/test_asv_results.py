"""Reading asv result files without asv."""

from __future__ import annotations

import json

import pytest

from specedge.report.asv_results import latest_run

COLUMNS = ["result", "params", "version", "started_at", "duration"]


def _write(root, machine, name, date, results):
    d = root / machine
    d.mkdir(parents=True, exist_ok=True)
    (d / "machine.json").write_text(json.dumps({"machine": machine, "version": 1}))
    (d / name).write_text(json.dumps({
        "commit_hash": name[:8] + "0" * 32, "env_name": "virtualenv-py3.11", "date": date,
        "params": {"machine": machine, "python": "3.11"}, "python": "3.11", "requirements": {},
        "env_vars": {}, "result_columns": COLUMNS, "results": results, "durations": {}, "version": 2}))


def test_latest_run_is_the_newest_file_expanded_by_parameters(tmp_path):
    root = tmp_path / "results"
    _write(root, "box", "aaaaaaaa-virtualenv.json", 1000,
           {"optimizer.Time.time_dp": [[0.5, 0.9], [["10", "100"]], "v", 1, 1.0]})
    _write(root, "box", "bbbbbbbb-virtualenv.json", 2000, {
        "optimizer.Time.time_dp": [[0.01, None], [["10", "100"]], "v", 1, 1.0],
        "optimizer.Gap.track_gap": [[0.002], [], "v", 1, 1.0],
    })
    (root / "benchmarks.json").write_text(json.dumps({
        "optimizer.Time.time_dp": {"type": "time", "unit": "seconds", "param_names": ["tasks"]},
        "optimizer.Gap.track_gap": {"type": "track", "unit": "fraction", "param_names": []},
        "version": 2}))
    run = latest_run(root)
    assert run is not None and run.files == 2
    assert run.commit.startswith("bbbbbbbb")
    rows = run.rows.set_index(["benchmark", "params"])
    assert rows.loc[("optimizer.Time.time_dp", "tasks=10"), "value"] == pytest.approx(0.01)
    assert rows.loc[("optimizer.Time.time_dp", "tasks=100"), "value"] != rows.loc[
        ("optimizer.Time.time_dp", "tasks=100"), "value"]  # None (failed) -> NaN
    assert rows.loc[("optimizer.Gap.track_gap", ""), "unit"] == "fraction"


def test_no_results_gives_none(tmp_path):
    assert latest_run(tmp_path / "absent") is None
    (tmp_path / "results" / "m").mkdir(parents=True)
    (tmp_path / "results" / "m" / "broken.json").write_text("{not json")
    assert latest_run(tmp_path / "results") is None
