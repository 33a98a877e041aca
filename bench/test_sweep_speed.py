"""pytest-benchmark: the sweep engine on a small real grid (48 cells, one process) and grid enumeration.

Runs once each in the normal test run (addopts has --benchmark-disable); measure with
``python -m pytest bench/test_sweep_speed.py --benchmark-enable``.
"""

from __future__ import annotations

import itertools

from bench.sweep import large_grid, small_grid
from specedge.sweep import read_results, run_sweep


def test_sweep_small_grid_inline(benchmark, tmp_path):
    runs = itertools.count()
    summary = benchmark.pedantic(lambda: run_sweep(small_grid(), tmp_path / f"run-{next(runs)}", workers=1),
                                 rounds=1, iterations=1)
    assert summary.run_cells == small_grid().size
    frame = read_results(tmp_path / "run-0")
    assert (frame["status"] == "ok").all()
    benchmark.extra_info["cells"] = summary.run_cells


def test_enumerate_large_grid(benchmark):
    grid = large_grid()
    ids = benchmark.pedantic(lambda: {c.cell_id for c in grid.cells()}, rounds=1, iterations=1)
    assert len(ids) == grid.size >= 10_000
