"""The sweep engine with a cheap cell function: chunks on disk, resume, interrupt, error cells, executors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from specedge.errors import InputError
from specedge.sweep import Grid, ResultsDir, read_results, run_sweep
from specedge.sweep.run import PAUSE_ENV

from .toycells import METRICS, toy_cell

HERE = Path(__file__).resolve().parent


def _grid(**kw) -> Grid:
    spec = {
        "presets": ["p"],
        "pairs": ["a/b", "c/d"],
        "acceptance": ["expected"],
        "policies": ["u", "v"],
        "seeds": [0, 1, 2],
        "chunk_size": 4,
        "axes": {"x": [1.0, 2.5, 4.0]},
    }
    spec.update(kw)
    return Grid.from_mapping(spec, source="test grid")


def _comparable(frame):
    return frame.drop(columns=["wall_s", "cpu_s"]).reset_index(drop=True)


def test_inline_sweep_writes_one_file_per_chunk_and_every_cell_once(tmp_path):
    grid = _grid()
    summary = run_sweep(grid, tmp_path / "out", cell_fn=toy_cell, metrics=METRICS, workers=1)
    assert summary.run_cells == grid.size == 36
    assert summary.chunks_written == 9
    parts = ResultsDir(tmp_path / "out").parts()
    assert len(parts) == 9
    assert all(pq.read_metadata(p).num_rows == 4 for p in parts)
    frame = read_results(tmp_path / "out")
    assert len(frame) == 36
    assert frame["cell_id"].is_unique
    assert set(frame["cell_id"]) == {c.cell_id for c in grid.cells()}
    row = frame[(frame.pair == "c/d") & (frame.seed == 2) & (frame.x == 2.5) & (frame.policy == "v")].iloc[0]
    assert row["value"] == pytest.approx(2.5 * 3)
    assert row["status"] == "ok"


def test_rerun_skips_finished_cells_and_extending_the_grid_runs_only_new_ones(tmp_path):
    out = tmp_path / "out"
    run_sweep(_grid(), out, cell_fn=toy_cell, metrics=METRICS, workers=1)
    again = run_sweep(_grid(), out, cell_fn=toy_cell, metrics=METRICS, workers=1)
    assert (again.run_cells, again.skipped_cells, again.chunks_written) == (0, 36, 0)
    more = run_sweep(_grid(seeds=[0, 1, 2, 3]), out, cell_fn=toy_cell, metrics=METRICS, workers=1)
    assert (more.run_cells, more.skipped_cells) == (12, 36)
    frame = read_results(out)
    assert len(frame) == 48 and frame["cell_id"].is_unique


def test_rerun_with_other_columns_is_refused(tmp_path):
    out = tmp_path / "out"
    run_sweep(_grid(), out, cell_fn=toy_cell, metrics=METRICS, workers=1)
    with pytest.raises(InputError, match="other columns"):
        run_sweep(_grid(axes={"y": [1, 2]}), out, cell_fn=toy_cell, metrics=METRICS, workers=1)


def test_non_empty_foreign_directory_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        run_sweep(_grid(), tmp_path / "out", cell_fn=toy_cell, metrics=METRICS, workers=1)


def test_a_cell_that_raises_a_specedge_error_is_recorded_not_fatal(tmp_path):
    grid = _grid(axes={"x": [1.0, 2.0], "fail": [False, True]})
    summary = run_sweep(grid, tmp_path / "out", cell_fn=toy_cell, metrics=METRICS, workers=1)
    frame = read_results(tmp_path / "out")
    assert summary.error_cells == len(frame) // 2 == grid.size // 2
    failed = frame[frame["fail"]]
    assert (failed["status"] == "error").all()
    assert failed["error"].str.contains("asked to fail").all()
    assert failed["value"].isna().all()
    assert (frame[~frame["fail"]]["status"] == "ok").all()


def test_local_processes_give_the_same_rows_as_inline(tmp_path):
    grid = _grid()
    run_sweep(grid, tmp_path / "inline", cell_fn=toy_cell, metrics=METRICS, workers=1)
    summary = run_sweep(grid, tmp_path / "pool", cell_fn=toy_cell, metrics=METRICS, workers=2, window=2)
    assert summary.executor == "local"
    assert _comparable(read_results(tmp_path / "inline")).equals(_comparable(read_results(tmp_path / "pool")))


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    """Kill -9 a sweep mid-way (a pause after each chunk keeps it running), rerun, compare with a clean run."""
    out = tmp_path / "out"
    grid = _grid(seeds=list(range(8)))  # 96 cells, 24 chunks
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from specedge.sweep import Grid, run_sweep;"
        "from sweep.toycells import toy_cell, METRICS;"
        "from tests_sweep_grid import SPEC;"
        "run_sweep(Grid.from_mapping(SPEC, source='test grid'), sys.argv[2], cell_fn=toy_cell, metrics=METRICS,"
        " workers=1)"
    )
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "tests_sweep_grid.py").write_text(f"SPEC = {grid.to_dict()!r}\n")
    env = {**os.environ, PAUSE_ENV: "0.2", "PYTHONPATH": os.pathsep.join([str(spec_dir), str(HERE.parent)])}
    proc = subprocess.Popen([sys.executable, "-c", script, str(HERE.parent), str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(ResultsDir(out).parts()) < 3:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            assert time.monotonic() < deadline, "the sweep wrote no chunks"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    finished = ResultsDir(out).finished_ids()
    assert 0 < len(finished) < grid.size
    resumed = run_sweep(grid, out, cell_fn=toy_cell, metrics=METRICS, workers=1)
    assert resumed.skipped_cells == len(finished)
    assert resumed.run_cells == grid.size - len(finished)
    assert not list(out.glob(".tmp-*"))
    run_sweep(grid, tmp_path / "clean", cell_fn=toy_cell, metrics=METRICS, workers=1)
    assert _comparable(read_results(out)).equals(_comparable(read_results(tmp_path / "clean")))


def test_unknown_executor_and_missing_dask_address_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown executor"):
        run_sweep(_grid(), tmp_path / "o", cell_fn=toy_cell, metrics=METRICS, executor="threads")
    with pytest.raises(InputError, match="scheduler address"):
        run_sweep(_grid(), tmp_path / "o", cell_fn=toy_cell, metrics=METRICS, executor="dask")


def test_output_folder_reads_directly_as_a_parquet_dataset(tmp_path):
    import pandas as pd
    import pyarrow.dataset as pads

    run_sweep(_grid(), tmp_path / "out", cell_fn=toy_cell, metrics=METRICS, workers=1)
    assert pads.dataset(tmp_path / "out", format="parquet").count_rows() == 36
    assert len(pd.read_parquet(tmp_path / "out")) == 36
