"""asv benchmarks of the sweep engine: enumerating a grid, running a small grid, and (behind an environment
variable) a >= 10,000-cell grid through a local Dask cluster, whose driver must stay small in memory.

- ``GridCells.time_enumerate_and_hash``: 10,800 cells enumerated with their ids (the resume check does this);
- ``SmallSweep.time_inline`` / ``peakmem_inline``: 48 real cells (scenario → policy → replay), one process;
- ``LargeDaskSweep.peakmem_driver`` (``SPECEDGE_BENCH_LARGE=1``): 10,800 cells on ``LocalCluster(n_workers=2)``;
  the peak memory is the driver's (workers are separate processes), which holds at most ``window`` chunks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from specedge.sweep import Grid, run_sweep

#: Set to 1 to run the large Dask benchmark (minutes on 2 cores).
LARGE_ENV = "SPECEDGE_BENCH_LARGE"


def large_grid() -> Grid:
    """10,800 cheap cells: 3 pairs x 2 sources x 3 policies x 50 seeds x 6 alphas x 2 bandwidths, K = 8."""
    return Grid.from_mapping({
        "presets": ["paper"],
        "pairs": ["llama-68m/llama-7b", "tinyllama-1.1b/llama-7b", "tinyllama-1.1b/llama-13b"],
        "acceptance": ["expected", "iid"],
        "policies": ["ad", "max-batching", "paper-dp"],
        "seeds": list(range(50)),
        "chunk_size": 50,
        "fixed": {"tasks": 8},
        "axes": {"alpha": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9], "bandwidth_hz": [10e6, 20e6]},
    }, source="bench large grid")


def small_grid() -> Grid:
    return Grid.from_mapping({
        "presets": ["paper"],
        "pairs": ["llama-68m/llama-7b", "tinyllama-1.1b/llama-7b"],
        "acceptance": ["expected", "iid"],
        "policies": ["ad", "max-batching", "paper-dp"],
        "seeds": [0, 1],
        "chunk_size": 8,
        "fixed": {"tasks": 20},
        "axes": {"alpha": [0.7, 0.9]},
    }, source="bench small grid")


class GridCells:
    def setup(self):
        self.grid = large_grid()

    def time_enumerate_and_hash(self):
        for cell in self.grid.cells():
            cell.cell_id


class SmallSweep:
    timeout = 300

    def setup(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="specedge-bench-sweep-"))
        self.n = 0

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self):
        self.n += 1
        return run_sweep(small_grid(), self.tmp / f"run-{self.n}", workers=1)

    def time_inline(self):
        self._run()

    def peakmem_inline(self):
        self._run()


class LargeDaskSweep:
    timeout = 1800
    number = 1
    repeat = 1

    tmp: Path | None = None  # set by setup; asv calls teardown even when setup skips the benchmark

    def setup(self):
        if os.environ.get(LARGE_ENV, "") in ("", "0"):
            raise NotImplementedError(f"set {LARGE_ENV}=1 to run the 10,800-cell Dask sweep")
        self.tmp = Path(tempfile.mkdtemp(prefix="specedge-bench-dask-"))

    def teardown(self):
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def peakmem_driver(self):
        run_large_dask(self.tmp / "out")


def run_large_dask(out: Path, workers: int = 2):
    """The large grid on a loopback LocalCluster; returns the sweep summary."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        return run_sweep(large_grid(), out, executor="dask", dask_address=cluster.scheduler_address)


if __name__ == "__main__":  # one-off measurement: python -m bench.sweep OUT_DIR
    import resource
    import sys
    import time

    target = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="specedge-large-"))
    started = time.perf_counter()
    summary = run_large_dask(target)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{summary.run_cells} cells ({summary.skipped_cells} skipped, {summary.error_cells} errors) in "
          f"{time.perf_counter() - started:.0f} s; {summary.chunks_written} chunk files; driver peak RSS "
          f"{peak_mib:.0f} MiB; results in {target}")
