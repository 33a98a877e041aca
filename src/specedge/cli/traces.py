"""``specedge traces list|show|validate|verify|fix-paths`` and ``specedge ingest``.

Every command takes ``--store DIR`` (default: $SPECEDGE_STORE, else the repository's traces/). Human output
is rich tables on stdout; ``--json`` prints plain JSON on stdout; progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from specedge.cli import app

traces_app = typer.Typer(help="List, inspect, validate and verify the trace store.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")

FORMATS_HELP = "specbench, vllm, sglang, llamacpp, csv or parquet"
BASELINE_HELP = ("vllm: an earlier Prometheus scrape of the same server, subtracted from FILE (counters are "
                 "cumulative since the server started).")
VARIANT_HELP = ("llamacpp: the program that printed the summary, speculative or speculative-simple (they count "
                "rounds differently).")
STORE_HELP = "Trace store directory (default: $SPECEDGE_STORE, else the repository's traces/)."


def _out() -> Console:
    # Off a terminal (pipes, CI) rich would wrap at 80 columns and cut ids; give tables room instead.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


def _err() -> Console:
    return Console(stderr=True)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


# ------------------------------------------------------------------------------------------ list
@traces_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (id, kind, source, rows, metadata, ...)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List the datasets in the store."""
    from specedge.traces.store import open_store

    st = open_store(store)
    infos = st.list()
    if as_json:
        _print_json([i.to_dict() for i in infos])
        return
    table = Table(title=f"trace store {st.root}  ({len(infos)} datasets)")
    for col, justify in (("id", "left"), ("kind", "left"), ("source", "left"), ("rows", "right"), ("v", "right"),
                         ("draft model", "left"), ("target model", "left")):
        table.add_column(col, justify=justify)
    for i in infos:
        table.add_row(i.id, i.kind, i.source, f"{i.rows:,}", str(i.version), str(i.metadata.get("draft_model", "-")),
                      str(i.metadata.get("target_model", "-")))
    _out().print(table)


# ------------------------------------------------------------------------------------------ show
def _compute_summary(frame) -> list[dict[str, Any]]:
    g = frame.groupby(["model", "device", "dtype", "phase"], sort=True, observed=True)["latency_ms"]
    out = g.agg(["count", "median", "min", "max"]).reset_index()
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in out.to_dict("records")]


@traces_app.command("show")
def show_cmd(
    dataset_id: str = typer.Argument(..., help="Dataset id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: rounds, requests, tau, acceptance_ratio, alpha, "
                                                       "histogram, ..."),
    version: Optional[int] = typer.Option(None, "--version", help="An earlier version (default: current)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Show a dataset's provenance and derived statistics (τ, m, S(i), α_i, histogram)."""
    from specedge.traces import stats
    from specedge.traces.store import open_store

    from specedge.traces.ingest.numbers import KEY, derived

    st = open_store(store)
    info = st.info(dataset_id, version)
    frame = st.read(dataset_id, version=version)
    if info.kind in ("acceptance", "aggregate"):
        summary = stats.summary(frame)
        summary["numbers_from"] = "table"
    elif info.kind == "compute":
        summary = {"groups": _compute_summary(frame)}
    else:
        summary = {}
    if isinstance(info.metadata.get(KEY), dict):
        # The tool's own counts decide rounds, tau and m; a histogram fitted or padded for replay never does.
        summary.update(derived(info.metadata[KEY]), numbers_from="tool")
    if as_json:
        _print_json({**info.to_dict(), **summary})
        return
    out = _out()
    meta = Table(title=f"{info.id} v{info.version}  ({info.kind}, {info.rows:,} rows)", show_header=False)
    meta.add_column("key", style="bold")
    meta.add_column("value")
    meta.add_row("source", info.source)
    meta.add_row("checksum", info.checksum)
    meta.add_row("path", str(info.path))
    for key, value in sorted(info.metadata.items()):
        if key != "source":
            meta.add_row(key, value if isinstance(value, str) else json.dumps(value))
    out.print(meta)
    if info.kind in ("acceptance", "aggregate"):
        head = Table(title="derived statistics")
        for col in ("rounds", "requests", "τ = 1 + mean accepted", "m = Σacc/Σdrafted", "max drafted"):
            head.add_column(col, justify="right")
        head.add_row(_fmt(summary["rounds"]), _fmt(summary["requests"]), _fmt(summary["tau"]),
                     _fmt(summary["acceptance_ratio"]), str(summary["max_drafted"]))
        out.print(head)
        for name, why in summary.get("inferred", {}).items():
            out.print(f"{name} INFERRED: {why}", highlight=False)
        pos = Table(title="by position i")
        for col in ("i", "S(i) = P(accepted ≥ i)", "α_i = S(i)/S(i−1)"):
            pos.add_column(col, justify="right")
        alpha = [None] + summary["alpha"]
        for i, s in enumerate(summary["survival"]):
            pos.add_row(str(i), _fmt(s), _fmt(alpha[i]))
        out.print(pos)
        hist = Table(title="histogram")
        for col in ("drafted", "accepted", "count"):
            hist.add_column(col, justify="right")
        for row in summary["histogram"]:
            hist.add_row(str(row["drafted"]), str(row["accepted"]), f"{row['count']:,}")
        out.print(hist)
        if summary["by_category"]:
            cat = Table(title="by category")
            for col in ("category", "rounds", "τ", "m"):
                cat.add_column(col, justify="left" if col == "category" else "right")
            for name, s in summary["by_category"].items():
                cat.add_row(name, f"{s['rounds']:,}", _fmt(s["tau"]), _fmt(s["acceptance_ratio"]))
            out.print(cat)
    elif info.kind == "totals":
        head = Table(title="the tool's totals (no histogram; '-' = not defined by the file)")
        for col in ("rounds", "τ = 1 + A/R", "m = A/D"):
            head.add_column(col, justify="right")
        head.add_row(_fmt(summary.get("rounds")), _fmt(summary.get("tau")), _fmt(summary.get("acceptance_ratio")))
        out.print(head)
        for name, why in summary.get("inferred", {}).items():
            out.print(f"{name} INFERRED: {why}", highlight=False)
    elif info.kind == "compute":
        comp = Table(title="latency_ms by configuration")
        for col in ("model", "device", "dtype", "phase", "samples", "median", "min", "max"):
            comp.add_column(col, justify="right" if col in ("samples", "median", "min", "max") else "left")
        for g in summary["groups"]:
            comp.add_row(g["model"], g["device"], g["dtype"], g["phase"], str(g["count"]), _fmt(g["median"], 3),
                         _fmt(g["min"], 3), _fmt(g["max"], 3))
        out.print(comp)


# ------------------------------------------------------------------------------------------ validate
@traces_app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., help="The file to check."),
    fmt: str = typer.Option(..., "--format", help=f"Input format: {FORMATS_HELP}."),
    drafted: Optional[int] = typer.Option(None, "--drafted", help="Draft length (formats that lack it)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help=BASELINE_HELP),
    variant: Optional[str] = typer.Option(None, "--variant", help=VARIANT_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Check a file as `specedge ingest` would, without writing anything."""
    from specedge.traces.ingest import parse

    with _err().status(f"validating {file} ..."):
        parsed = parse(fmt, file, drafted=drafted, baseline=baseline, variant=variant)
    extra = ", ".join(f"{k}={v}" for k, v in parsed.metadata.items() if not k.startswith("note"))
    _out().print(f"ok: {file} is a valid {fmt} file: {parsed.rows:,} {parsed.kind} rows"
                 + (f" ({extra})" if extra else ""), highlight=False)


# ------------------------------------------------------------------------------------------ verify
@traces_app.command("verify")
def verify_cmd(
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Recompute every dataset file's SHA-256 and compare it with the catalog."""
    from specedge.traces.store import ChecksumError, open_store

    st = open_store(store)
    with _err().status(f"verifying {st.root} ..."):
        results = st.verify()
    table = Table(title=f"verify {st.root}")
    for col in ("dataset", "version", "status", "sha256"):
        table.add_column(col)
    for r in results:
        table.add_row(r.dataset_id, str(r.version), "ok" if r.ok else f"[red]{r.problem}[/]", (r.actual or "-")[:16])
    _out().print(table)
    bad = [r for r in results if not r.ok]
    if bad:
        names = ", ".join(f"{r.dataset_id} v{r.version} ({r.problem})" for r in bad)
        raise ChecksumError(f"store {st.root}: {len(bad)} of {len(results)} dataset files failed: {names}")
    _out().print(f"{len(results)} dataset file(s) verified", highlight=False)


# ------------------------------------------------------------------------------------------ fix-paths
@traces_app.command("fix-paths")
def fix_paths_cmd(
    dataset_id: Optional[str] = typer.Argument(None, help="Dataset id (or --all)."),
    all_: bool = typer.Option(False, "--all", help="Every dataset whose newest version holds an absolute path."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; write nothing."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Write a new version (same rows) whose provenance holds portable paths instead of absolute ones."""
    from specedge.errors import InputError
    from specedge.traces.fix_paths import fix_all, fix_paths
    from specedge.traces.store import open_store

    if (dataset_id is None) == (not all_):
        raise InputError("fix-paths: give a dataset id or --all (not both)")
    st = open_store(store)
    fixes = fix_all(st, dry_run=dry_run) if all_ else [fix_paths(st, dataset_id, dry_run=dry_run)]
    out = _out()
    for f in fixes:
        if not f.needed:
            out.print(f"{f.dataset_id} v{f.from_version}: no absolute path; nothing written", highlight=False)
        elif f.new_version is None:
            out.print(f"{f.dataset_id} v{f.from_version}: would write a new version fixing {', '.join(f.changed_keys)}",
                      highlight=False)
        else:
            out.print(f"{f.dataset_id} v{f.from_version} -> v{f.new_version}: fixed {', '.join(f.changed_keys)}; "
                      f"rows unchanged (content sha256 {f.content_sha256[:16]})", highlight=False)
    if all_ and not fixes:
        out.print("no dataset's newest version holds an absolute path", highlight=False)


# ------------------------------------------------------------------------------------------ ingest
@app.command("ingest")
def ingest_cmd(
    fmt: str = typer.Argument(..., metavar="FORMAT", help=f"Input format: {FORMATS_HELP}."),
    file: Path = typer.Argument(..., help="The file to ingest."),
    dataset: str = typer.Option(..., "--dataset", help="New dataset id."),
    drafted: Optional[int] = typer.Option(None, "--drafted", help="Draft length γ of the run (Spec-Bench files lack "
                                                                  "it: inferred and flagged when missing)."),
    meta: Optional[list[str]] = typer.Option(None, "--meta", help="key=value provenance (draft_model, target_model, "
                                                                  "tokenizer, temperature, seed, note, ...); "
                                                                  "repeatable."),
    replace: bool = typer.Option(False, "--replace", help="Add a new version of an existing id (the old one is "
                                                          "kept)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help=BASELINE_HELP),
    variant: Optional[str] = typer.Option(None, "--variant", help=VARIANT_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Validate FILE and add it to the store as a new dataset."""
    from specedge.traces import ingest as ing
    from specedge.traces.store import open_store

    st = open_store(store)
    user_meta = ing.parse_meta_items(meta)
    with _err().status(f"ingesting {file} as {fmt} ..."):
        info = ing.ingest(st, fmt, file, dataset, drafted=drafted, meta=user_meta, replace=replace,
                          baseline=baseline, variant=variant)
    flags = []
    if info.metadata.get("drafted_inferred"):
        flags.append(f"drafted inferred = {info.metadata.get('drafted')}")
    if info.metadata.get("histogram") == "fitted":
        flags.append("histogram FITTED from totals")
    _out().print(
        f"ingested {file} -> {info.id} v{info.version}: {info.rows:,} {info.kind} rows, source {info.source}"
        + (f" ({'; '.join(flags)})" if flags else "") + f"\n  store {st.root}, sha256 {info.checksum[:16]}",
        highlight=False,
    )
