"""Sweeps: a grid of scenarios × policies × seeds, evaluated by local processes or a Dask cluster.

- :mod:`~specedge.sweep.grid`: the grid (from TOML) and its cells;
- :mod:`~specedge.sweep.cells`: the cell function (scenario → plan → replay → metrics);
- :mod:`~specedge.sweep.run`: the executors and :func:`run_sweep`;
- :mod:`~specedge.sweep.results`: the partitioned Parquet output, resumable.

    from specedge.sweep import Grid, run_sweep, read_results
    summary = run_sweep(Grid.load("examples/grid.toml"), "sweep-out", workers=2)
    frame = read_results("sweep-out")
"""

from __future__ import annotations

from specedge.sweep.grid import Cell, Grid, GridError
from specedge.sweep.results import ResultsDir, read_results
from specedge.sweep.run import SweepSummary, run_sweep

__all__ = ["Cell", "Grid", "GridError", "ResultsDir", "SweepSummary", "read_results", "run_sweep"]
