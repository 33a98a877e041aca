"""``specedge report`` (the comparison report, the README's main job) and ``specedge sweep GRID.toml``.

matplotlib, seaborn and dask are imported inside the commands only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from specedge.cli import app

STORE_HELP = "Trace store directory (default: $SPECEDGE_STORE, else the repository's traces/)."


def _err() -> Console:
    return Console(stderr=True)


#: Columns a progress line needs besides its label and the done/total count: bar, elapsed and remaining time
#: (h:mm:ss each), the four spaces between the five columns and the count's slash.
_BAR_WIDTH = 20
_FIXED_COLUMNS = _BAR_WIDTH + 7 + 7 + 4 + 1


def fit_label(label: str, width: int) -> str:
    """``label`` cut to ``width`` characters with an ellipsis (the stage number and its start are kept)."""
    return label if len(label) <= width else label[: max(width - 1, 1)] + "…"


class ProgressBar:
    """A rich progress bar on stderr (plain log lines when stderr is not a terminal).

    The stage label is cut to what the terminal leaves beside the bar, count and times, so that a line fits
    80 columns (:func:`fit_label`).
    """

    def __init__(self, description: str, console: Console | None = None) -> None:
        self.description = description
        self.console = console or _err()
        self.interactive = self.console.is_terminal
        self._progress = None
        self._task = None
        self._last_print = 0.0
        self._started = time.perf_counter()

    def __enter__(self) -> ProgressBar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        from rich.table import Column

        self._progress = Progress(TextColumn("{task.description}",
                                             table_column=Column(no_wrap=True, overflow="ellipsis")),
                                  BarColumn(bar_width=_BAR_WIDTH), MofNCompleteColumn(), TimeElapsedColumn(),
                                  TimeRemainingColumn(), console=self.console, disable=not self.interactive)
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def stage(self, description: str, total: int) -> None:
        """Start a new bar (one per stage of the work)."""
        self.description = description
        if self._progress is not None:
            width = max(self.console.width - 1 - _FIXED_COLUMNS - len(str(total)) * 2, 12)
            self._task = self._progress.add_task(fit_label(description, width), total=max(total, 1))
        if not self.interactive:
            print(f"[{time.perf_counter() - self._started:6.1f}s] {description} ({total})", file=sys.stderr,
                  flush=True)

    def __call__(self, done: int, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=max(total, 1))
        now = time.perf_counter()
        if not self.interactive and (now - self._last_print > 10 or done == total) and total:
            self._last_print = now
            print(f"[{now - self._started:6.1f}s] {self.description}: {done}/{total}", file=sys.stderr, flush=True)


@app.command("sweep")
def sweep_cmd(
    grid_file: Path = typer.Argument(..., help="Grid TOML (see examples/grid.toml)."),
    out: Path = typer.Option(..., "--out", help="Output directory: a Parquet dataset, one file per finished chunk."),
    dask: Optional[str] = typer.Option(None, "--dask", help="Run on a Dask cluster at tcp://HOST:PORT (extra 'dist')."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Local worker processes (default: the CPU count; 1 = this process)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Evaluate a grid (presets × pairs × acceptance × policies × seeds × axes); rerun to resume."""
    from specedge.sweep import Grid, run_sweep
    from specedge.sweep.cells import check_grid, expand_acceptance

    grid = Grid.load(grid_file)
    store_s = str(store) if store is not None else None
    acceptance = expand_acceptance(grid.acceptance, store_s, where=f"{grid_file} [grid] field 'acceptance'")
    if acceptance != grid.acceptance:
        from dataclasses import replace

        grid = replace(grid, acceptance=acceptance)
    check_grid(grid, store_s)
    console = _err()
    with ProgressBar("sweep") as bar:
        bar.stage(f"sweep {grid_file.name}", grid.size)
        summary = run_sweep(grid, out, executor="dask" if dask else "local", workers=workers, dask_address=dask,
                            store=store, progress=bar)
    console.print(
        f"{summary.run_cells} cells run, {summary.skipped_cells} already finished, {summary.error_cells} with an "
        f"error, in {summary.elapsed_s:.1f} s ({summary.executor}); results: {summary.out}", highlight=False)


@app.command("report")
def report_cmd(
    quick: bool = typer.Option(False, "--quick", help="A small grid (seconds, for tests and a first look)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Report config TOML (see examples/report.toml)."),
    out: Path = typer.Option(Path("report-out"), "--out", help="Output folder (HTML, tables/, figures/, cells/)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Local worker processes for the sweeps (default: from the config)."),
) -> None:
    """Build the comparison report: policies, the paper's figure sweeps and headline numbers, traces, optimizer."""
    from specedge.report.build import build_report
    from specedge.report.config import load_config

    if quick and config is not None:
        from specedge.errors import InputError

        raise InputError("--quick and --config are exclusive: --quick is a built-in small config")
    cfg = load_config(config, quick=quick)
    started = time.perf_counter()
    with ProgressBar("report") as bar:
        result = build_report(cfg, out, store=store, progress=bar, workers=workers)
    elapsed = time.perf_counter() - started
    _err().print(f"report built in {elapsed:.0f} s ({result.cpu_s:.0f} CPU-s, {result.cell_cpu_s:.0f} of them in "
                 f"sweep cells): {len(result.tables)} tables, {result.figures} figures", highlight=False)
    print(f"Report: {result.html.resolve()}")
