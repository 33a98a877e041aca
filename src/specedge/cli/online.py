"""``specedge online``: serve requests that arrive over time (:mod:`specedge.online`) and print the metrics.

Example::

    specedge online --preset paper --pair llama-68m/llama-7b --arrivals poisson --rate 0.2 --requests 1000 \\
        --policy fcfs --seed 0 --json

``--arrivals``: poisson, gamma (``--cv``) or trace (``--workload DATASET``, a ``workload`` dataset in the store,
or ``--workload-file FILE --layout azure|burstgpt|specedge``). ``--policy``: an online policy (``--list``) or
``plan:<static policy>`` (the static case; needs every arrival at 0, i.e. ``--rate`` ignored with ``--static``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from specedge.cli import app


def _kv(items: list[str], what: str) -> dict:
    from specedge.errors import InputError

    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"{what} {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@app.command("online")
def online_cmd(
    preset: str = typer.Option("paper", "--preset", help="Scenario preset name (or a path to a preset TOML)."),
    pair: Optional[str] = typer.Option(None, "--pair", help="Model pair draft/target, e.g. llama-68m/llama-7b."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="i.i.d. acceptance rate (default: the preset's)."),
    acceptance: str = typer.Option("expected", "--acceptance", help="expected, iid or an acceptance dataset id."),
    arrivals: str = typer.Option("poisson", "--arrivals", help="poisson, gamma or trace."),
    rate: float = typer.Option(0.1, "--rate", help="Arrival rate, requests per second (poisson, gamma)."),
    cv: float = typer.Option(1.0, "--cv", help="Coefficient of variation of gamma inter-arrival gaps."),
    requests: int = typer.Option(1000, "--requests", help="Number of requests (poisson, gamma)."),
    static: bool = typer.Option(False, "--static", help="Every request arrives at t = 0 (the static case)."),
    workload: Optional[str] = typer.Option(None, "--workload", help="A workload dataset id (arrivals trace)."),
    workload_file: Optional[Path] = typer.Option(None, "--workload-file", help="A workload file (arrivals trace)."),
    layout: str = typer.Option("specedge", "--layout", help="Layout of --workload-file: specedge, azure, burstgpt."),
    time_scale: float = typer.Option(1.0, "--time-scale", help="Multiply recorded inter-arrival times by this."),
    policy: str = typer.Option("fcfs", "--policy", help="Online policy name (--list) or plan:<static policy>."),
    param: list[str] = typer.Option([], "--param", help="Policy parameter KEY=VALUE (repeatable)."),
    config: list[str] = typer.Option([], "--config", help="Engine setting KEY=VALUE, e.g. num_slots=4 (repeatable)."),
    set_: list[str] = typer.Option([], "--set", help="Override a scenario parameter, KEY=VALUE (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the workload and of the acceptance draws."),
    store: Optional[Path] = typer.Option(None, "--store", help="Trace store (default: $SPECEDGE_STORE or traces/)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
    list_: bool = typer.Option(False, "--list", help="List the online policies, then exit."),
    cells: Optional[int] = typer.Option(None, "--cells", help="Cells sharing the verifier (a multi-cell preset)."),
    verifier_policy: str = typer.Option("fcfs", "--verifier-policy",
                                        help="Order of the cells' jobs at a shared MBS (multi-cell presets)."),
    association: str = typer.Option("home", "--association",
                                    help="User association (multi-cell): home, nearest or load-aware."),
    mbs_association: str = typer.Option("fixed", "--mbs-association",
                                        help="Cell-to-MBS association (several MBSs): fixed, nearest or load-aware."),
) -> None:
    """Serve a workload of requests arriving over time; print latency percentiles, SLO attainment, goodput."""
    from specedge.errors import InputError
    from specedge.online import OnlineConfig, simulate
    from specedge.online import workload as wl
    from specedge.online.metrics import summarize
    from specedge.online.policies import available_online_policies, get_online_policy

    if list_:
        for name in available_online_policies():
            typer.echo(name)
        typer.echo("plan:<static policy>")
        return
    from specedge.multicell.cli import is_topology

    if cells is not None or is_topology(preset):  # several cells sharing a verifier (specedge.multicell)
        from specedge.multicell.cli import dumps, echo_summary, online_multicell

        out = online_multicell(preset=preset, cells=cells, verifier_policy=verifier_policy, arrivals=arrivals,
                               rate=rate, requests=requests, cv=cv, policy=get_online_policy(policy, **_kv(
                                   param, "--param")), config=OnlineConfig().replace(**_kv(config, "--config")),
                               overrides=_kv(set_, "--set"), seed=seed, acceptance=acceptance, alpha=alpha,
                               store=str(store) if store else None, association=association,
                               mbs_association=mbs_association)
        typer.echo(dumps(out)) if json_ else echo_summary(out, typer.echo)
        return
    from specedge.scenario import Scenario

    overrides = _kv(set_, "--set")
    src = acceptance
    sc = Scenario.from_preset(preset, pair=pair, alpha=alpha, tasks=1, seed=seed, acceptance=src,
                              store=str(store) if store else None, **overrides)
    if arrivals in ("poisson", "gamma"):
        w = wl.synthetic(sc.params, arrivals=arrivals, rate_rps=rate, num_requests=requests, cv=cv, seed=seed)
    elif arrivals == "trace":
        if workload_file is not None:
            from specedge.online.workload_kind import parse_workload

            frame = parse_workload(workload_file, layout)
            name = workload_file.name
        elif workload:
            from specedge.traces.store import open_store

            frame = (open_store(store) if store else open_store()).read(workload)
            name = workload
        else:
            raise InputError("--arrivals trace needs --workload DATASET or --workload-file FILE")
        w = wl.from_frame(frame, sc.params, seed=seed, time_scale=time_scale, name=name)
    else:
        raise InputError(f"--arrivals must be poisson, gamma or trace, got {arrivals!r}")
    if static:
        w = wl.Workload(w.arrival_s * 0.0, w.input_tokens, w.output_tokens, w.distance_m, name="static (t=0)")
    cfg = OnlineConfig().replace(**_kv(config, "--config"))
    pol = get_online_policy(policy, **_kv(param, "--param"))
    run = simulate(sc, w, pol, cfg, seed=seed)
    summary = summarize(run)
    summary.update({"preset": sc.preset, "pair": sc.pair, "acceptance": sc.acceptance.stats.name,
                    "uplink_rule": cfg.uplink_rule, "seed": seed})
    if json_:
        typer.echo(json.dumps(summary, default=float))
        return
    for key in ("policy", "workload", "requests", "duration_s", "throughput_tokens_per_s", "ttft_p50_s",
                "ttft_p99_s", "tpot_p50_s", "e2e_p50_s", "e2e_p99_s", "slo_attainment", "goodput_rps",
                "sbs_utilisation", "mbs_utilisation", "mean_speculation_length"):
        val = summary[key]
        typer.echo(f"{key:26s} {val:.6g}" if isinstance(val, float) else f"{key:26s} {val}")
