"""Assemble the comparison report: run the config's sweeps, build each section, render one HTML file.

    from specedge.report.build import build_report
    from specedge.report.config import load_config
    result = build_report(load_config(quick=True), "report-out")
    print(result.html)

The output folder holds ``report.html`` (self-contained: figures embedded), ``tables/`` (every table as CSV and
Parquet, every figure's data as ``<figure>-data.*``), ``figures/`` (PNG) and ``cells/`` (each sweep's raw
per-cell results as a Parquet dataset, see :mod:`specedge.sweep`). A rebuild recomputes everything: cells of an
earlier build are removed first, so a report never mixes results of two code versions.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from specedge.errors import InputError
from specedge.report.config import ReportConfig
from specedge.report.document import Report, render
from specedge.sweep import Grid, read_results, run_sweep
from specedge.sweep.cells import check_grid, expand_acceptance

#: File that marks a folder as a specedge report output (so a rebuild may clear what it wrote before).
MARKER = ".specedge-report"


@dataclass(frozen=True)
class ReportResult:
    html: Path
    out: Path
    tables: tuple[str, ...]
    figures: int
    elapsed_s: float
    cpu_s: float = 0.0
    cell_cpu_s: float = 0.0


class _Stages:
    """Adapts a progress object (``stage(description, total)`` + ``__call__(done, total)``) or None."""

    def __init__(self, progress) -> None:
        self.progress = progress

    def stage(self, description: str, total: int) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        if hasattr(self.progress, "stage"):
            self.progress.stage(description, total)
        return self.progress


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"report output {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError(f"report output {out}: exists, is not empty and is not a specedge report folder; "
                         "choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("specedge report output folder; `specedge report` clears and rewrites it\n")
    for sub in ("cells", "tables", "figures"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)


def _git_commit() -> str:
    here = Path(__file__).resolve().parents[3]
    if not (here / ".git").exists():
        return ""
    try:
        res = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return res.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def prepare_grid(grid: Grid, store: str | None) -> Grid:
    """Expand acceptance groups (``@traces`` ...) against the store and check the grid before running it."""
    acceptance = expand_acceptance(grid.acceptance, store, where=f"{grid.source} field 'acceptance'")
    if not acceptance:
        raise InputError(f"{grid.source}: field 'acceptance' names no dataset in the store (groups matched none)")
    if acceptance != grid.acceptance:
        grid = replace(grid, acceptance=acceptance)
    check_grid(grid, store)
    return grid


#: CPU seconds spent in sweep cells during this process's report builds (workers included).
_CELL_CPU_S: list[float] = []


def run_grid(grid: Grid, out: Path, *, store: str | None, workers: int, progress, pool=None) -> pd.DataFrame:
    """Run ``grid`` into ``out`` (a sweep results folder) and return its cells."""
    run_sweep(grid, out, executor="local", workers=workers, store=store, progress=progress, pool=pool)
    cells = read_results(out)
    _CELL_CPU_S.append(float(cells["cpu_s"].sum()))
    return cells


def build_report(cfg: ReportConfig, out: str | os.PathLike[str], *, store: str | os.PathLike[str] | None = None,
                 progress=None, workers: int | None = None) -> ReportResult:
    """Compute every section of ``cfg`` and write the report into ``out``; returns where it is."""
    from specedge.report import sections

    started, cpu_started = time.perf_counter(), time.process_time()
    _CELL_CPU_S.clear()
    out = Path(out)
    store_s = str(Path(store).expanduser().resolve()) if store is not None else None
    workers = workers or cfg.workers
    stages = _Stages(progress)

    # Check every grid first: a typo in the last sweep should not cost the first sweep's minutes.
    comparison = prepare_grid(cfg.comparison, store_s) if cfg.comparison is not None else None
    sweeps = [replace(s, grid=prepare_grid(s.grid, store_s)) for s in cfg.sweeps]
    _prepare_out(out)

    import specedge
    from specedge.provenance import portable_path
    from specedge.traces.store import open_store

    report = Report(out, cfg.title, meta={
        "specedge": specedge.__version__,
        "commit": _git_commit() or "unknown",
        "config": cfg.name,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "trace store": portable_path(open_store(store_s).root),
    })
    from specedge.sweep.run import process_pool

    with process_pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        ctx = sections.Context(report=report, cfg=cfg, store=store_s, workers=workers, stages=stages, pool=pool)
        comparison_cells = None
        if comparison is not None:
            comparison_cells = run_grid(comparison, out / "cells" / "comparison", store=store_s, workers=workers,
                                        progress=stages.stage("1. policy comparison", comparison.size), pool=pool)
            sections.comparison(ctx, comparison_cells)
        if sweeps:
            results = []
            for spec in sweeps:
                cells = run_grid(spec.grid, out / "cells" / f"sweep-{spec.name}", store=store_s, workers=workers,
                                 progress=stages.stage(f"2. sweep: {spec.title}", spec.grid.size), pool=pool)
                results.append((spec, cells))
            sections.sweeps(ctx, results)
        if pool is not None and cfg.fidelity.get("enabled", True):
            # the fidelity study (every real run replayed with every predictor) runs in a worker while the main
            # process writes sections 3-5; section 6 collects it
            from specedge.fidelity.repeats import study_results

            ctx.futures["fidelity"] = pool.submit(study_results, store_s)
        if cfg.headline.get("enabled", True):
            sections.headline(ctx)
            if cfg.headline.get("claims", True):
                from specedge.report.claims_section import claims as claims_section

                claims_section(ctx)
        if cfg.traces.get("enabled", True):
            sections.traces(ctx)
        if cfg.optimizer.get("enabled", True):
            sections.optimizer(ctx, comparison_cells)
        fidelity_fill = sections.fidelity(ctx) if cfg.fidelity.get("enabled", True) else None
        from specedge.report import acceptance_models  # section 7: the acceptance-model ladder (issue 16)

        acceptance_models.section(ctx)
        from specedge.report import online_section  # section 8: online serving (issue 12)

        online_section.section(ctx)
        from specedge.report import multicell_section  # section 9: several cells sharing a verifier (issue 13)

        multicell_section.section(ctx)
        if fidelity_fill is not None:  # section 6 in its place, filled once its study (started early) is done
            fidelity_fill()
    elapsed = time.perf_counter() - started
    cell_cpu_s = sum(_CELL_CPU_S)
    own_cpu_s = time.process_time() - cpu_started
    report.meta["built in"] = f"{elapsed:.0f} s"
    report.meta["CPU time"] = (f"{own_cpu_s + cell_cpu_s:.0f} s ({cell_cpu_s:.0f} s in sweep cells on {workers} "
                               f"worker(s), {own_cpu_s:.0f} s in the main process)")
    html = render(report)
    figures = sum(1 for sec in report.sections for b in sec.blocks if b.kind == "figure")
    return ReportResult(html=html, out=out, tables=tuple(report.tables), figures=figures, elapsed_s=elapsed,
                        cpu_s=own_cpu_s + cell_cpu_s, cell_cpu_s=cell_cpu_s)
