"""The real cell function (scenario → policy → replay), the `specedge sweep` command, and Dask vs local."""

from __future__ import annotations

import pandas as pd
import pytest

from specedge.cli import main
from specedge.sweep import Grid, read_results, run_sweep
from specedge.sweep.cells import METRICS, TIMING_METRICS, check_grid, evaluate_cell, expand_acceptance

GRID = """
[grid]
presets = ["paper"]
pairs = ["llama-68m/llama-7b"]
acceptance = ["expected", "iid"]
policies = ["ad", "paper-dp"]
seeds = [0, 1]
replications = 2
chunk_size = 3
[grid.fixed]
tasks = 8
[grid.axes]
alpha = [0.6, 0.9]
"""


def _deterministic(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["wall_s", "cpu_s", *TIMING_METRICS]).reset_index(drop=True)


@pytest.fixture()
def grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    return path


def test_cell_matches_a_direct_optimize_and_evaluate():
    import specedge
    from specedge.policies import optimize

    cell = next(c for c in Grid.from_mapping({
        "presets": ["paper"], "pairs": ["llama-68m/llama-7b"], "acceptance": ["iid"], "policies": ["paper-dp"],
        "seeds": [3], "replications": 2, "fixed": {"tasks": 8, "alpha": 0.7}}).cells())
    metrics = evaluate_cell(cell, None)
    assert set(metrics) == set(METRICS)
    sc = specedge.Scenario.from_preset("paper", pair="llama-68m/llama-7b", tasks=8, alpha=0.7, seed=3,
                                       acceptance="iid")
    plan = optimize(sc, policy="paper-dp")
    result = specedge.evaluate(sc, plan, replications=2, seed=3)
    assert metrics["makespan_s"] == pytest.approx(result.summary["makespan_s"], rel=1e-12)
    assert metrics["p99_latency_s"] == pytest.approx(result.summary["p99_latency_s"], rel=1e-12)
    assert metrics["num_batches"] == len(plan.batches)
    assert metrics["makespan_s_ci95"] > 0  # two sampled replications differ


def test_sweep_command_writes_results_and_resumes(grid_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(grid_file), "--out", str(out), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "16 cells run, 0 already finished" in err
    frame = read_results(out)
    assert len(frame) == 16 and (frame["status"] == "ok").all()
    # AD does not speculate; SD's makespan falls as alpha rises
    sd = frame[(frame.policy == "paper-dp") & (frame.acceptance == "expected")]
    by_alpha = sd.groupby("alpha")["makespan_s"].mean()
    assert by_alpha[0.9] < by_alpha[0.6]
    assert frame[frame.policy == "ad"]["speculation_length"].isna().all()
    assert main(["sweep", str(grid_file), "--out", str(out), "--workers", "1"]) == 0
    assert "0 cells run, 16 already finished" in capsys.readouterr().err


@pytest.mark.parametrize("edit,expected", [
    (('policies = ["ad", "paper-dp"]', 'policies = ["ad", "no-such-policy"]'), "unknown policy 'no-such-policy'"),
    (('pairs = ["llama-68m/llama-7b"]', 'pairs = ["llama-68m/gpt-5"]'), "gpt-5"),
    (('acceptance = ["expected", "iid"]', 'acceptance = ["expected", "no-such-trace"]'), "no-such-trace"),
    (('acceptance = ["expected", "iid"]', 'acceptance = ["@everything"]'), "unknown acceptance group"),
    (("tasks = 8", "taks = 8"), "taks"),
])
def test_sweep_command_rejects_a_bad_grid_before_any_work(grid_file, tmp_path, capsys, edit, expected):
    grid_file.write_text(GRID.replace(*edit))
    out = tmp_path / "out"
    assert main(["sweep", str(grid_file), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(grid_file) in err
    assert not out.exists()


def test_acceptance_groups_expand_against_the_store(tmp_path):
    from specedge.traces import published
    from specedge.traces.store import open_store

    store = open_store(tmp_path / "store")
    for fig in published.FIGURES[:3]:
        store.write(published.draw_rounds(fig, 0), fig.dataset_id, kind="acceptance",
                    metadata=published.metadata(fig, 0))
    ids = sorted(f.dataset_id for f in published.FIGURES[:3])
    assert expand_acceptance(["expected", "@published"], str(store.root)) == ("expected", *ids)
    assert expand_acceptance(["@traces:2"], str(store.root)) == tuple(ids[:2])
    assert expand_acceptance(["@recorded"], str(store.root)) == ()
    grid = Grid.from_mapping({"presets": ["paper"], "pairs": ["llama-68m/llama-7b"], "acceptance": [ids[0]],
                              "policies": ["paper-dp"], "fixed": {"tasks": 6}})
    check_grid(grid, str(store.root))
    summary = run_sweep(grid, tmp_path / "out", workers=1, store=store.root)
    assert summary.error_cells == 0


def test_dask_and_local_processes_give_identical_results(grid_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = Grid.load(grid_file)
    run_sweep(grid, tmp_path / "local", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        summary = run_sweep(grid, tmp_path / "dask", executor="dask", dask_address=cluster.scheduler_address)
    assert summary.executor == "dask" and summary.run_cells == grid.size
    local, dask = read_results(tmp_path / "local"), read_results(tmp_path / "dask")
    assert (local["status"] == "ok").all()
    pd.testing.assert_frame_equal(_deterministic(local), _deterministic(dask), check_exact=True)


def test_unreachable_dask_scheduler_is_a_clean_error(grid_file, tmp_path):
    pytest.importorskip("distributed")
    from specedge.errors import InputError

    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_sweep(Grid.load(grid_file), tmp_path / "o", executor="dask", dask_address="tcp://127.0.0.1:9",
                  connect_timeout_s=1.0)
