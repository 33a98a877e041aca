"""``specedge optimize``: plan a preset scenario with a policy, replay the plan, print both.

Example::

    specedge optimize --preset paper --pair tinyllama-1.1b/llama-7b --alpha 0.8 --tasks 100 --seed 0 \\
        --policy paper-dp --json

``--policy`` takes a registered name (``specedge optimize --list`` shows them), ``path/to/file.py:Class`` or a
policy preset (a name in ``policies/`` or a ``.toml`` path); ``--param KEY=VALUE`` sets a policy parameter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from specedge.cli import app
from specedge.cli.options import acceptance_source


@app.command("optimize")
def optimize_cmd(
    preset: str = typer.Option("paper", "--preset", help="Scenario preset name (or a path to a preset TOML)."),
    pair: Optional[str] = typer.Option(None, "--pair", help="Model pair draft/target, e.g. llama-68m/llama-7b."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="i.i.d. acceptance rate (default: the preset's)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Number of tasks K (default: the preset's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the scenario's tasks and of the replay."),
    policy: Optional[str] = typer.Option(None, "--policy",
                                         help="Policy name, file.py:Class or preset (default: specedge's best)."),
    param: list[str] = typer.Option([], "--param", help="Policy parameter KEY=VALUE (repeatable)."),
    acceptance: str = typer.Option("expected", "--acceptance", help="Acceptance source: expected (deterministic L(l, alpha)), iid (sampled) or a dataset id in the store (acceptance or aggregate)."),
    trace: Optional[str] = typer.Option(None, "--trace", hidden=True,
                                         help="Older name of --acceptance DATASET (kept for scripts)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Trace store (default: $SPECEDGE_STORE or traces/)."),
    set_: list[str] = typer.Option([], "--set", help="Override a scenario parameter, KEY=VALUE (repeatable)."),
    replications: int = typer.Option(1, "--replications", help="Monte Carlo replications of the replay."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the plan as JSON (for specedge replay)."),
    list_: bool = typer.Option(False, "--list", help="List the policies and the policy presets (policies/*.toml), then exit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: policy, latency_s, the plan, the summary."),
) -> None:
    """Plan with a policy and report the replayed makespan of the plan."""
    import time

    from specedge.cli.options import parse_assignments
    from specedge.errors import PolicyError
    from specedge.policies import available_policies, available_presets, get_policy, optimize, policy_name, replay
    from specedge.policies.base import DEFAULT_POLICY

    if list_:
        # "presets" is the older key of "policy_presets" (policy presets, not the scenario presets of --preset)
        data = {"policies": available_policies(), "policy_presets": available_presets(), "default": DEFAULT_POLICY}
        data["presets"] = data["policy_presets"]
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        else:
            sys.stdout.write("policies: " + ", ".join(data["policies"]) + f"\ndefault: {DEFAULT_POLICY}\n"
                             + "policy presets (--policy NAME): " + (", ".join(data["policy_presets"]) or "-")
                             + "\n")
        return
    from specedge.scenario import Scenario

    params = parse_assignments(param, "--param", example="l_max=8", error=PolicyError)
    overrides = parse_assignments(set_, "--set", example="bandwidth_hz=25e6")
    pol = get_policy(policy, **params)
    sc = Scenario.from_preset(preset, pair=pair, alpha=alpha, tasks=tasks, seed=seed,
                              acceptance=acceptance_source(acceptance, trace), store=store, **overrides)
    started = time.perf_counter()
    plan = optimize(sc, pol)
    plan_s = time.perf_counter() - started
    result = replay(sc, pol, plan, replications=replications, seed=seed)
    if out is not None:
        plan.save(out)
    d = plan.to_dict()
    data = {
        "policy": policy_name(pol),
        "latency_s": result.latency_s,
        "speculation_length": d["speculation_length"],
        "batches": d["batches"],
        "bandwidth_hz": d["bandwidth_hz"],
        "mode": plan.mode,
        "num_batches": len(plan.batches),
        "planning_s": plan_s,
        "scenario": dict(plan.scenario),
        "meta": dict(plan.meta),
        "summary": result.summary,
    }
    from specedge.cli.notices import extrapolation_warning, warn

    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=_jsonable) + "\n")
        warn(extrapolation_warning(result))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(f"{sc!r}\npolicy [bold]{data['policy']}[/]", highlight=False)
    table = Table()
    table.add_column("")
    table.add_column("value", justify="right")
    ls = data["speculation_length"]
    rows = [
        ("latency_s (replayed makespan)", f"{result.latency_s:.4f}"),
        ("mode", plan.mode),
        ("batches", f"{len(plan.batches)} (sizes {', '.join(str(len(b)) for b in plan.batches[:12])}"
                    f"{', ...' if len(plan.batches) > 12 else ''})"),
        ("speculation_length", str(ls) if isinstance(ls, int) else ", ".join(map(str, ls))),
        ("upload_makespan_s", f"{result.summary['upload_makespan_s']:.4f}"),
        ("planned_makespan_s", f"{result.summary['planned_makespan_s']:.4f}"),
        ("planning time (s)", f"{plan_s:.3f}"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    warn(extrapolation_warning(result))
    if out is not None:
        Console(stderr=True).print(f"plan written to {out}")


def _jsonable(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(x)
