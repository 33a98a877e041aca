"""``specedge replay``: replay a plan on a preset scenario and print the latency summary.

Example::

    specedge replay --preset paper --pair llama-68m/llama-7b --alpha 0.8 --tasks 100 --seed 0 \\
        --plan plan.json --acceptance published-specbench-vicuna7b-sps-68m --replications 20 --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from specedge.cli import app
from specedge.cli.options import acceptance_source
from specedge.cli.options import parse_assignments
from specedge.errors import InputError


@app.command("replay")
def replay_cmd(
    plan: Path = typer.Option(..., "--plan", help="Plan JSON: batches, speculation_length, bandwidth_hz, mode."),
    preset: str = typer.Option("paper", "--preset", help="Scenario preset name (or a path to a preset TOML)."),
    pair: Optional[str] = typer.Option(None, "--pair", help="Model pair draft/target, e.g. llama-68m/llama-7b."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="i.i.d. acceptance rate (default: the preset's)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Number of tasks K (default: the preset's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the scenario's tasks and of the replay."),
    acceptance: str = typer.Option("expected", "--acceptance", help="Acceptance source: expected (deterministic L(l, alpha)), iid (sampled) or a dataset id in the store (acceptance or aggregate)."),
    trace: Optional[str] = typer.Option(None, "--trace", hidden=True,
                                         help="Older name of --acceptance DATASET (kept for scripts)."),
    replications: int = typer.Option(1, "--replications", help="Monte Carlo replications (confidence intervals)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Trace store (default: $SPECEDGE_STORE or traces/)."),
    set_: list[str] = typer.Option([], "--set", help="Override a scenario parameter, KEY=VALUE (repeatable)."),
    tasks_out: Optional[Path] = typer.Option(None, "--tasks-out", help="Write the per-task table (.csv/.parquet)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (latency_s and the summary)."),
    force: bool = typer.Option(False, "--force",
                               help="Replay a plan made for another scenario (pair, preset, tasks, seed, --set)."),
) -> None:
    """Replay a plan: per-task timings, makespan, latency percentiles, TTFT, TPOT, planned vs replayed."""
    from specedge.plan import Plan, scenario_record
    from specedge.replay import evaluate
    from specedge.scenario import Scenario

    the_plan = Plan.load(plan)
    sc = Scenario.from_preset(preset, pair=pair, alpha=alpha, tasks=tasks, seed=seed,
                              acceptance=acceptance_source(acceptance, trace), store=store,
                              **parse_assignments(set_, "--set", example="bandwidth_hz=25e6"))
    from specedge.cli.notices import extrapolation_warning, warn

    differences = the_plan.check_scenario(sc, force=force, source=str(plan))
    if differences:
        warn(f"{plan} was made for another scenario ({'; '.join(differences)}); replayed anyway (--force)")
    elif not the_plan.scenario:
        warn(f"{plan} records no scenario (a hand-written plan?); it cannot be checked against this one")
    result = evaluate(sc, the_plan, replications=replications, seed=seed)
    if tasks_out is not None:
        if tasks_out.suffix == ".parquet":
            result.tasks.to_parquet(tasks_out, index=False)
        elif tasks_out.suffix == ".csv":
            result.tasks.to_csv(tasks_out, index=False)
        else:
            raise InputError(f"--tasks-out {tasks_out}: expected a .csv or .parquet file name")
    if as_json:
        data = {"scenario": scenario_record(sc), "plan": str(plan), **result.to_dict()}
        sys.stdout.write(json.dumps(data, indent=2, default=float) + "\n")
        warn(extrapolation_warning(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{sc!r}\nplan {plan} ({result.mode}, {len(the_plan.batches)} batches)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI ±", justify="right")
    summary = result.summary
    for key, value in summary.items():
        if key.endswith("_ci95"):
            continue
        ci = summary.get(f"{key}_ci95")
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        table.add_row(key, shown, "" if ci is None else f"{ci:.4f}")
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160).print(table)
    warn(extrapolation_warning(result))
