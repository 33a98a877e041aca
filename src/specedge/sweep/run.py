"""Running a grid: chunks of cells through an executor, each finished chunk written as one Parquet file.

Three executors, one contract (the same cells in, the same rows out, whatever the order they finish in):

- ``inline``: in this process, one chunk after another (``workers=1``);
- ``local``: a ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes (the default);
- ``dask``: a Dask distributed cluster at ``dask_address`` (``tcp://HOST:PORT``; extra ``dist``).

Memory stays bounded whatever the grid's size: cells are enumerated lazily, at most ``window`` chunks are in
flight, and a finished chunk is written to disk and dropped (its future released) before the next is submitted.
A cell whose evaluation raises a :class:`~specedge.errors.SpecedgeError` (an infeasible scenario, say) is a
finished cell with ``status = "error"`` and the message in ``error``; any other exception stops the sweep, and
the chunks finished so far stay on disk for the rerun.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from specedge.errors import InputError, SpecedgeError
from specedge.sweep.grid import Cell, Grid
from specedge.sweep.results import ResultsDir, result_schema, rows_to_table

#: A cell function: evaluates one cell (given the trace store path or None) and returns {metric: value}.
CellFunction = Callable[[Cell, "str | None"], dict[str, float]]
#: Progress callback: (cells finished so far, cells to run in this invocation).
Progress = Callable[[int, int], None]

EXECUTORS = ("inline", "local", "dask")
#: Test hook: seconds to sleep after each chunk is written (used by the interrupt-and-resume test only).
PAUSE_ENV = "SPECEDGE_SWEEP_PAUSE_AFTER_CHUNK_S"


@dataclass(frozen=True)
class SweepSummary:
    """What one invocation of :func:`run_sweep` did."""

    out: Path
    total_cells: int
    skipped_cells: int
    run_cells: int
    error_cells: int
    chunks_written: int
    executor: str
    elapsed_s: float


def run_chunk(cells: Sequence[Cell], cell_fn: CellFunction, store: str | None, schema: pa.Schema) -> pa.Table:
    """Evaluate a chunk of cells in order; one row per cell (metrics, status, error, CPU and wall time)."""
    rows = []
    metric_names = [f.name for f in schema][schema.get_field_index("wall_s") + 1:]
    for cell in cells:
        row: dict[str, Any] = cell.row()
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            values = cell_fn(cell, store)
        except SpecedgeError as exc:
            row.update(status="error", error=str(exc))
        else:
            unknown = sorted(set(values) - set(metric_names))
            if unknown:
                raise ValueError(f"cell function returned unknown metric(s) {', '.join(unknown)}")
            row.update(values, status="ok", error=None)
        row["wall_s"] = time.perf_counter() - started
        row["cpu_s"] = time.process_time() - cpu_started
        rows.append(row)
    return rows_to_table(rows, schema)


def _chunks(cells: Iterator[Cell], size: int) -> Iterator[list[Cell]]:
    while True:
        chunk = list(itertools.islice(cells, size))
        if not chunk:
            return
        yield chunk


def run_sweep(
    grid: Grid,
    out: str | os.PathLike[str],
    *,
    cell_fn: CellFunction | None = None,
    metrics: Sequence[str] | None = None,
    executor: str = "local",
    workers: int | None = None,
    dask_address: str | None = None,
    store: str | os.PathLike[str] | None = None,
    window: int | None = None,
    progress: Progress | None = None,
    pool=None,
    connect_timeout_s: float = 20.0,
) -> SweepSummary:
    """Evaluate every unfinished cell of ``grid`` and append the results to the Parquet dataset in ``out``.

    ``cell_fn``/``metrics`` default to :func:`specedge.sweep.cells.evaluate_cell` and its metrics. ``workers``
    is the number of local processes (default: the CPU count); ``workers=1`` or ``executor="inline"`` runs in
    this process. ``window`` bounds the chunks in flight (default twice the workers). ``pool``: an open
    ``concurrent.futures`` process pool to run the local executor on (several sweeps can share one and skip
    the workers' start-up); it is left open. ``connect_timeout_s``: how long to wait for the Dask scheduler.
    Returns a summary.
    """
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if executor == "dask" and not dask_address:
        raise InputError("the dask executor needs a scheduler address (--dask tcp://HOST:PORT)")
    if cell_fn is None or metrics is None:
        from specedge.sweep.cells import METRICS, evaluate_cell

        cell_fn = cell_fn or evaluate_cell
        metrics = metrics if metrics is not None else METRICS
    workers = max(1, int(workers or os.cpu_count() or 1))
    if executor == "local" and workers == 1 and pool is None:
        executor = "inline"
    store_s = str(Path(store).expanduser().resolve()) if store is not None else None

    started = time.perf_counter()
    schema = result_schema(grid, metrics)
    results = ResultsDir(out)
    results.prepare(grid, schema)
    done = results.finished_ids()
    total = grid.size
    todo = sum(1 for c in grid.cells() if c.cell_id not in done) if done else total
    pending = (c for c in grid.cells() if c.cell_id not in done)
    chunks = _chunks(pending, grid.chunk_size)
    pause_s = float(os.environ.get(PAUSE_ENV, "0") or 0)

    counts = {"cells": 0, "errors": 0, "chunks": 0}

    def finish(table: pa.Table) -> None:
        results.write_chunk(table)
        counts["cells"] += table.num_rows
        counts["errors"] += sum(1 for s in table.column("status").to_pylist() if s != "ok")
        counts["chunks"] += 1
        if progress is not None:
            progress(counts["cells"], todo)
        if pause_s:
            time.sleep(pause_s)

    if progress is not None:
        progress(0, todo)
    if executor == "inline":
        for chunk in chunks:
            finish(run_chunk(chunk, cell_fn, store_s, schema))
    elif executor == "local":
        _run_local(chunks, cell_fn, store_s, schema, workers, window or 2 * workers, finish, pool)
    else:
        _run_dask(chunks, cell_fn, store_s, schema, dask_address, window, finish, connect_timeout_s)
    return SweepSummary(
        out=results.root,
        total_cells=total,
        skipped_cells=total - todo,
        run_cells=counts["cells"],
        error_cells=counts["errors"],
        chunks_written=counts["chunks"],
        executor=executor,
        elapsed_s=time.perf_counter() - started,
    )


def process_pool(workers: int):
    """A process pool for the local executor. forkserver: workers never inherit this process's threads (a
    progress bar's refresh thread, say), and start from a clean interpreter."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))


def _run_local(chunks, cell_fn, store, schema, workers, window, finish, shared_pool=None) -> None:
    import contextlib
    from concurrent.futures import FIRST_COMPLETED, wait

    with (contextlib.nullcontext(shared_pool) if shared_pool is not None else process_pool(workers)) as pool:
        in_flight = set()
        try:
            for chunk in chunks:
                in_flight.add(pool.submit(run_chunk, chunk, cell_fn, store, schema))
                if len(in_flight) >= window:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        finish(fut.result())
            while in_flight:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    finish(fut.result())
        except BaseException:
            for fut in in_flight:
                fut.cancel()
            raise


def _run_dask(chunks, cell_fn, store, schema, address, window, finish, timeout_s) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("the dask executor needs the 'dist' extra: pip install 'specedge[dist]'") from None
    try:
        client = Client(address, set_as_default=False, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
    with client:
        threads = sum(client.nthreads().values()) or 1
        window = window or 2 * threads
        pending = as_completed(loop=client.loop)
        in_flight = 0
        for chunk in itertools.islice(chunks, window):
            pending.add(client.submit(run_chunk, chunk, cell_fn, store, schema, pure=False))
            in_flight += 1
        while in_flight:
            fut = next(pending)
            table = fut.result()
            fut.release()
            del fut
            in_flight -= 1
            finish(table)
            del table
            for chunk in itertools.islice(chunks, 1):
                pending.add(client.submit(run_chunk, chunk, cell_fn, store, schema, pure=False))
                in_flight += 1
