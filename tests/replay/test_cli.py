"""``specedge replay``: JSON output, per-task file, and one-line errors."""

from __future__ import annotations

import json

import pandas as pd

from specedge import Plan, evaluate
from specedge.cli import main

from .helpers import small_scenario, sorted_plan, trace_frame


def _write_plan(tmp_path, sc, **kw):
    path = tmp_path / "plan.json"
    Plan.from_dict(sorted_plan(sc, 3, **kw)).save(path)
    return path


def test_replay_json_matches_the_api(tmp_path, capsys):
    sc = small_scenario(9, seed=4)
    plan = _write_plan(tmp_path, sc, l=5)
    args = ["replay", "--plan", str(plan), "--tasks", "9", "--seed", "4", "--alpha", "0.8",
            "--set", "output_tokens_max=160", "--set", "input_tokens_max=64", "--json",
            "--tasks-out", str(tmp_path / "tasks.csv")]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    expected = evaluate(sc, Plan.load(plan), seed=4)
    assert data["latency_s"] == expected.latency_s
    assert data["summary"]["mode"] == "sd-pipeline" and data["summary"]["num_batches"] == 3
    tasks = pd.read_csv(tmp_path / "tasks.csv")
    assert list(tasks.completion_s) == list(expected.tasks.completion_s)


def test_replay_trace_from_store_and_table_output(tmp_path, capsys):
    from specedge.traces.store import open_store

    store = open_store(tmp_path / "store")
    store.write(trace_frame().assign(dataset="mini"), "mini", kind="acceptance",
                metadata={"source": "ingested:synthetic-test"})
    sc = small_scenario(9, seed=0)
    plan = _write_plan(tmp_path, sc, l=8)  # beyond the recorded 6: extrapolation warning
    args = ["replay", "--plan", str(plan), "--tasks", "9", "--trace", "mini", "--store", str(store.root),
            "--replications", "3", "--set", "output_tokens_max=160", "--set", "input_tokens_max=64"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "makespan_s" in captured.out and "95% CI" in captured.out
    assert "extrapolated" in captured.err


def test_replay_errors_are_one_line(tmp_path, capsys):
    sc = small_scenario(9)
    plan = _write_plan(tmp_path, sc)
    assert main(["replay", "--plan", str(plan), "--tasks", "10"]) == 2
    assert "1 task(s) are in no batch" in capsys.readouterr().err
    assert main(["replay", "--plan", str(plan), "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["replay", "--plan", str(tmp_path / "missing.json")]) == 2
    assert "no such plan file" in capsys.readouterr().err
    assert main(["replay", "--plan", str(plan), "--tasks", "9", "--trace", "no-such-dataset",
                 "--store", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no-such-dataset" in err and "Traceback" not in err
