"""``specedge serve-real`` (a real two-node serving run) and ``specedge fidelity`` (replay vs that run).

torch is imported only inside the node processes and the compute measurer, never at CLI start-up.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from specedge.cli import app

STORE_HELP = "Trace store directory (default: $SPECEDGE_STORE, else the repository's traces/)."


def _err() -> Console:
    return Console(stderr=True)


def _overrides(items: list[str]) -> dict:
    from specedge.errors import InputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected key=value")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _pair(pair: str) -> str:
    """``draft/target`` card names; a pair given target first (more parameters first) is read the other way."""
    from specedge.latency.cards import parse_pair

    first, second = parse_pair(pair)
    if first.num_params > second.num_params:
        _err().print(f"note: {first.name} is larger than {second.name}; serving {second.name} as the draft and "
                     f"{first.name} as the target (pairs are written draft/target)", soft_wrap=True)
        return f"{second.name}/{first.name}"
    return pair


def _pair_acceptance(store, draft: str, target: str, temperature: float) -> str:
    """The pair's recorded acceptance dataset at this temperature, else 'expected'."""
    found = [i for i in store.list() if i.kind == "acceptance" and i.source == "recorded"
             and i.metadata.get("draft_model") == draft and i.metadata.get("target_model") == target
             and float(i.metadata.get("temperature", -1)) == float(temperature)]
    return max(found, key=lambda i: (i.created, i.id)).id if found else "expected"


@app.command("serve-real")
def serve_real_cmd(
    pair: str = typer.Option("stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", "--pair",
                             help="draft/target model card names; checkpoints are <--checkpoints>/<name>/."),
    plan_path: Optional[Path] = typer.Option(None, "--plan", help="Plan JSON (batches index the scenario's tasks)."),
    policy: Optional[str] = typer.Option(None, "--policy", help="Plan with this policy instead of --plan."),
    tasks: int = typer.Option(24, "--tasks", help="K, the number of tasks."),
    seed: int = typer.Option(0, "--seed", help="Seeds the tasks, the prompts and the sampler."),
    temperature: float = typer.Option(0.0, "--temperature", "-T", help="0 = greedy; > 0 = speculative sampling."),
    dataset: Optional[str] = typer.Option(None, "--dataset",
                                          help="Run dataset id to write (default run-<pair>-<plan hash>-<UTC time>)."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", help="Directory holding <card name>/ checkpoints "
                                               "(default models/checkpoints)."),
    set_: list[str] = typer.Option([], "--set", help="Scenario parameter override key=value (repeatable)."),
    acceptance: str = typer.Option("auto", "--acceptance", help="Acceptance source the policy plans with: a dataset "
                                   "id, 'expected', or 'auto' (the pair's recorded trace at -T, else expected)."),
    measure: bool = typer.Option(False, "--measure-compute", help="Re-measure both models' compute traces with the "
                                 "serving engine on the node cores right before the run; the run records their ids."),
    compute_repeats: int = typer.Option(5, "--compute-repeats", help="Timed passes per configuration when measuring."),
    measure_mode: str = typer.Option("co-run", "--measure-mode", help="'co-run' (both models measured at once, "
                                     "each on its core, as in a pipelined run) or 'alone' (one after the other)."),
    grid_mode: str = typer.Option("pass", "--grid-mode", help="How each configuration is timed when measuring: "
                                  "'pass' (one pass after its prefill), 'steady' (back-to-back passes of one "
                                  "shape) or 'job' (job-shaped, with the wake-up term); docs/fidelity.md."),
    cores: str = typer.Option("0,1", "--cores", help="Draft core,verify core ('none' leaves affinities alone)."),
    allow_noisy: bool = typer.Option(False, "--allow-noisy", help="Run even when other processes take more than "
                                     "5% of a node core (sampled before measuring); the run is marked noisy."),
    quiet_sample_s: float = typer.Option(3.0, "--quiet-sample-s", help="Seconds the node cores' foreign work is "
                                         "sampled before measuring and before serving."),
    use_traces: Optional[str] = typer.Option(None, "--compute-traces", help="DRAFT_ID,VERIFY_ID: compute traces "
                                             "measured earlier (e.g. once for several runs) that the run names."),
    note: str = typer.Option("", "--note"),
    replace_run: bool = typer.Option(False, "--replace", help="Write a new version of an existing --dataset id "
                                     "(the previous version stays readable: traces versions)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build the scenario and the plan, check them, print the "
                                 "plan and stop (nothing is measured, served or written)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary (with --dry-run: the plan) as JSON."),
    arrivals: Optional[str] = typer.Option(None, "--arrivals", help="Online run (no plan): poisson, gamma or trace "
                                           "arrivals, served by FCFS continuous batching (docs/online.md)."),
    rate: float = typer.Option(1.0, "--rate", help="Online: arrival rate, requests per second."),
    requests: int = typer.Option(40, "--requests", help="Online: number of requests."),
    cv: float = typer.Option(1.0, "--cv", help="Online: coefficient of variation of gamma gaps."),
    workload_file: Optional[Path] = typer.Option(None, "--workload-file", help="Online: a workload file (trace)."),
    layout: str = typer.Option("specedge", "--layout", help="Online: layout of --workload-file."),
    online_policy: str = typer.Option("fcfs", "--online-policy", help="Online: the policy the nodes follow (fcfs)."),
    speculation_length: int = typer.Option(4, "--speculation-length", help="Online: l of every round."),
    max_batch_size: int = typer.Option(32, "--max-batch-size", help="Online: members per batch at most."),
    config: list[str] = typer.Option([], "--config", help="Online: engine setting num_slots=N or uplink_rule=R."),
) -> None:
    """Serve K tasks for real: a draft-node and a verify-node process on their own cores, pipelined per a plan
    (or, with --arrivals, requests arriving over time, batched online)."""
    import os

    from specedge.errors import InputError
    from specedge.plan import Plan
    from specedge.serve.measure import measure_pair, run_grid
    from specedge.serve.run import ServeSetup, serve_real, write_run
    from specedge.serve.workload import (
        build_scenario,
        check_plan,
        load_model,
        model_source,
        plan_sha256,
        stdlib_task_prompts,
    )
    from specedge.traces.store import open_store

    if arrivals is None and (plan_path is None) == (policy is None):
        raise InputError("give exactly one of --plan FILE or --policy NAME")
    if arrivals is not None and (plan_path is not None or policy is not None):
        raise InputError("an online run (--arrivals) has no plan: give --online-policy, not --plan or --policy")
    if temperature < 0:
        raise InputError(f"--temperature must be >= 0, got {temperature}")
    from specedge.serve.measure import GRID_MODES, MEASURE_MODES

    for flag, value, allowed in (("--grid-mode", grid_mode, GRID_MODES), ("--measure-mode", measure_mode,
                                                                           MEASURE_MODES)):
        if value not in allowed:  # before sampling the cores or loading a model
            raise InputError(f"{flag} {value!r}: expected one of {', '.join(allowed)}")
    core_pair = (None, None) if cores.strip().lower() == "none" else tuple(int(c) for c in cores.split(","))
    if len(core_pair) != 2:
        raise InputError(f"--cores: expected 'draft,verify' (e.g. 0,1) or 'none', got {cores!r}")
    pair = _pair(pair)
    if arrivals is not None:
        from specedge.cli.serve_online import OnlineArgs, serve_online_cmd

        args = OnlineArgs(arrivals, rate, requests, cv, workload_file, layout, online_policy, speculation_length,
                          max_batch_size, tuple(config))
        serve_online_cmd(args, pair=pair, seed=seed, temperature=temperature, dataset=dataset,
                         checkpoints=checkpoints, overrides=_overrides(set_), measure=measure,
                         compute_repeats=compute_repeats, measure_mode=measure_mode, core_pair=core_pair,
                         allow_noisy=allow_noisy, quiet_sample_s=quiet_sample_s, use_traces=use_traces, note=note,
                         replace_run=replace_run, store=store, dry_run=dry_run, as_json=as_json, quiet=_quiet,
                         console=_err(), grid_mode=grid_mode)
        return
    draft_name, target_name = pair.split("/")
    draft_src, target_src = model_source(draft_name, checkpoints), model_source(target_name, checkpoints)
    st = open_store(store)
    overrides = _overrides(set_)
    sc = build_scenario(pair, tasks=tasks, seed=seed, store=st, **overrides)
    console = _err()
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    compute_ids = None
    if policy is not None:
        from specedge.policies.base import get_policy, policy_name

        source = _pair_acceptance(st, draft_name, target_name, temperature) if acceptance == "auto" else acceptance
        from specedge.errors import DatasetNotFoundError
        from specedge.fidelity.predictors import latest_compute_trace

        try:
            traces = {"draft": latest_compute_trace(st, draft_name), "verify": latest_compute_trace(st, target_name)}
        except DatasetNotFoundError:
            if not measure or dry_run:
                raise
            # no traces to plan with yet: measure a nominal plan's grid (batches of up to 8, l = 6) first
            nominal = Plan.from_dict({"batches": [list(range(i, min(i + 8, sc.num_tasks)))
                                                  for i in range(0, sc.num_tasks, 8)],
                                      "speculation_length": 6, "bandwidth_hz": list(sc.uniform_bandwidth_hz())})
            pre = _quiet({r: c for r, c in zip(("draft", "verify"), core_pair) if c is not None}, quiet_sample_s,
                         allow_noisy, "compute measurement", console)
            traces = _measure(measure_pair, run_grid, sc, nominal, draft_src, target_src, st, core_pair,
                              compute_repeats, stamp + "-planning", console, measure_mode,
                              {"foreign_work": {"before": pre}}, grid_mode)
        planning = build_scenario(pair, tasks=tasks, seed=seed, store=st, acceptance=source,
                                  **{"compute_model": "fitted", "draft_compute_trace": traces["draft"],
                                     "verify_compute_trace": traces["verify"], **overrides})
        pol = get_policy(policy)
        plan = pol.plan(planning)
        plan = Plan.from_dict({**plan.to_dict(), "meta": {**dict(plan.meta), "policy": policy_name(pol),
                                                          "planned_with": {"acceptance": source, **traces}}})
        console.print(f"policy {policy}: {len(plan.batches)} batches of {[len(b) for b in plan.batches]}, "
                      f"l = {list(plan.speculation_length)}")
    else:
        plan = Plan.load(plan_path)
    check_plan(sc, plan)
    if dry_run:
        text = json.dumps(plan.to_dict(), indent=2)
        sys.stdout.write(text + "\n") if as_json else console.print(text)
        return
    if use_traces is not None:
        ids = [t.strip() for t in use_traces.split(",")]
        if measure or len(ids) != 2 or not all(ids):
            raise InputError("--compute-traces: expected DRAFT_ID,VERIFY_ID, and not together with --measure-compute")
        for t in ids:
            if st.info(t).kind != "compute":
                raise InputError(f"--compute-traces: dataset {t!r} is not a compute trace")
        compute_ids = {"draft": ids[0], "verify": ids[1]}
    from specedge.serve.run import _check_cores

    _check_cores(core_pair)  # before sampling them
    node_cores = {r: c for r, c in zip(("draft", "verify"), core_pair) if c is not None}
    before = _quiet(node_cores, quiet_sample_s, allow_noisy, "compute measurement" if measure else "run", console)
    if measure:  # right before the run, on the plan's own grid
        compute_ids = _measure(measure_pair, run_grid, sc, plan, draft_src, target_src, st, core_pair,
                               compute_repeats, stamp, console, measure_mode, {"foreign_work": {"before": before}},
                               grid_mode)
        before = _quiet(node_cores, quiet_sample_s, allow_noisy, "run", console)
    encoder = load_model(target_src)
    prompts = stdlib_task_prompts(encoder.encode, sc.tasks["input_tokens"], seed)
    setup = ServeSetup(sc, plan, draft_src, target_src, prompts.request_ids, prompts.prompt_ids,
                       temperature=temperature, seed=seed, cores=core_pair, prompt_source=prompts.source)
    console.print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    run = serve_real(setup, progress=lambda msg: console.print(msg))
    dataset_id = dataset or f"run-{draft_name}-{target_name}-{plan_sha256(plan)[:8]}-{stamp}"
    from specedge.provenance import portable_path

    extra = {"note": note, "policy": policy, "plan_file": portable_path(plan_path)}
    from specedge.serve.quiet import FOREIGN_WORK_LIMIT

    fw = {"before": before, **run.metadata.get("foreign_work", {})}
    shares = [s["max"] for s in (fw.get("before"), fw.get("during")) if s]
    fw["max"] = max(shares) if shares else None
    fw["noisy"] = fw["max"] is None or fw["max"] > FOREIGN_WORK_LIMIT
    extra["foreign_work"] = fw
    if compute_ids:
        extra["compute_traces"] = compute_ids
    info = write_run(run, dataset_id, store=st, extra=extra, replace=replace_run)
    summary = {"dataset": info.id, "rows": info.rows, "makespan_s": run.makespan_s,
               "mean_latency_s": float(run.tasks["completion_s"].mean()),
               "tau_mean_tokens_per_round": run.metadata["tau_mean_tokens_per_round"],
               "load_average_before": run.metadata["load_average_before"], "compute_traces": compute_ids,
               "foreign_work": fw["max"], "noisy": fw["noisy"]}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        console.print(f"wrote run dataset [bold]{info.id}[/] ({info.rows:,} rows): makespan {run.makespan_s:.3f} s, "
                      f"mean latency {summary['mean_latency_s']:.3f} s, "
                      f"τ = {summary['tau_mean_tokens_per_round']:.2f}")


def _quiet(node_cores: dict, seconds: float, allow_noisy: bool, what: str, console) -> dict | None:
    """Sample the node cores' foreign work; refuse (exit 2) above the limit unless allow_noisy (serve.quiet)."""
    from specedge.serve.quiet import check_quiet, sample_foreign_work

    if not node_cores:  # --cores none: no core to sample; the run is marked noisy (unknown)
        return None
    sample = sample_foreign_work(node_cores, seconds=seconds)
    warning = check_quiet(sample, allow_noisy=allow_noisy, what=what)
    if warning:
        console.print(warning, soft_wrap=True)
    return sample


def _measure(measure_pair, run_grid, sc, plan, draft, target, st, cores, repeats, stamp, console, mode,
             provenance=None, grid_mode: str = "pass", grid_tasks=None) -> dict:
    """Measure both models' compute traces over the grid covering ``plan`` on the tasks of ``grid_tasks`` (anything
    with a ``tasks`` frame; default ``sc``: an online run's workload instead), printing what is measured."""
    grid = run_grid(grid_tasks or sc, plan, repeats=repeats)
    console.print(f"measuring compute traces of the serving engine ({mode}, {grid_mode}-timed): "
                  f"b {list(grid.batch_sizes)}, x {list(grid.new_tokens)}, c {list(grid.context_tokens)}, "
                  f"{repeats} repeats")
    ids = measure_pair(sc, plan, draft, target, store=st, cores=cores, grid=grid, stamp=stamp, mode=mode,
                       provenance=provenance, grid_mode=grid_mode)
    console.print(f"wrote compute traces {ids['draft']} and {ids['verify']}")
    return ids


@app.command("fidelity")
def fidelity_cmd(
    run_id: Optional[str] = typer.Argument(None, help="Run dataset id (default: the latest run in the store)."),
    acceptance: str = typer.Option("observed", "--acceptance", help="'observed' (the run's own rounds, exact) or an "
                                   "acceptance dataset id (the pair's recorded trace)."),
    draft_trace: Optional[str] = typer.Option(None, "--draft-trace", help="Compute dataset of the draft model."),
    verify_trace: Optional[str] = typer.Option(None, "--verify-trace", help="Compute dataset of the target model."),
    fronthaul: str = typer.Option("scenario", "--fronthaul", help="One-way node-to-node delay to replay with: "
                                  "'scenario' (the run's, the paper's 0), 'measured' (the pipe's, measured before "
                                  "the run) or seconds."),
    host_overhead: str = typer.Option("pair", "--host-overhead", help="Per-job host overhead the predictors carry: "
                                      "'pair' (fitted on the pair's other quiet runs, else this run), 'self' (this "
                                      "run's job vs pass records) or 'none' (the paper's model)."),
    rank: bool = typer.Option(False, "--rank", help="Rank fidelity over every run in the store: per pair, the "
                              "scenario with the most plans, Kendall's tau of predicted vs measured makespans."),
    predictor: str = typer.Option("measured", "--predictor", help="With --rank: the compute predictor ranked."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: per predictor median_task_error, "
                                 "p90_task_error, makespan_error (fractions), plus noisy, foreign_work and "
                                 "diagnostics (with --rank: the list of pairs)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Replay a real run's plan with its observed acceptance and each compute predictor; compare with the run."""
    from specedge.errors import InputError
    from specedge.fidelity import compare_run

    if (draft_trace is None) != (verify_trace is None):
        raise InputError("give both --draft-trace and --verify-trace, or neither")
    if host_overhead not in ("pair", "self", "none"):
        raise InputError(f"--host-overhead {host_overhead!r}: expected pair, self or none")
    if rank:
        _rank(run_id, predictor, host_overhead, store, as_json)
        return
    traces = (draft_trace, verify_trace) if draft_trace else None
    from specedge.fidelity.compare import latest_run
    from specedge.traces.store import open_store

    st = open_store(store)
    run_id = run_id or latest_run(st)
    if st.info(run_id).metadata.get("online"):  # predicted by the online simulator (specedge.fidelity.online_run)
        from specedge.fidelity.online_run import compare_online_run

        if acceptance != "observed":
            raise InputError("an online run is predicted with its own (observed) acceptance only")
        result = compare_online_run(run_id, store=st, compute_traces=traces, fronthaul=fronthaul,
                                    host_overhead=host_overhead)
    else:
        result = compare_run(run_id, store=store, acceptance=acceptance, compute_traces=traces, fronthaul=fronthaul,
                             host_overhead=host_overhead)
    from specedge.fidelity.repeats import noise_floor_of

    floor = noise_floor_of(store, result.run_id)
    if as_json:
        out = {**result.to_dict(), "noise_floor": floor}
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    out = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    plan = result.run["plan"]
    table = Table(title=f"{result.run_id}: replay vs real run ({result.run['pair']}, batches {plan['batch_sizes']}, "
                        f"l = {plan['speculation_length']}, acceptance {acceptance}, fronthaul "
                        f"{result.diagnostics['fronthaul_delay_s'] * 1e6:.0f} µs)")
    for col in ("predictor", "median |task err|", "p90 |task err|", "makespan err", "mean signed", "pred makespan s",
                "meas makespan s", "rounds match"):
        table.add_column(col)
    for r in result.table.itertuples():
        table.add_row(r.predictor, f"{r.median_task_error:.1%}", f"{r.p90_task_error:.1%}", f"{r.makespan_error:.1%}",
                      f"{r.mean_signed_task_error:+.1%}", f"{r.predicted_makespan_s:.3f}",
                      f"{r.measured_makespan_s:.3f}", "yes" if r.rounds_match else "no")
    out.print(table)
    d = result.diagnostics
    out.print(f"best predictor: {result.best()}; time outside passes: draft {d['draft_outside_pass_share']:.1%}, "
              f"verify {d['verify_outside_pass_share']:.1%}; "
              f"pipe delay median {d['pipe_delay_median_s'] * 1e6:.0f} µs; "
              f"load average at run {result.run.get('load_average_before')}")
    if floor.get("repeats", 0) >= 2:
        out.print(f"noise floor over {floor['repeats']} repeats of this plan"
                  + (" (some noisy)" if floor["from_noisy_runs"] else "")
                  + f": task spread {floor['task_spread']:.1%}, makespan spread {floor['makespan_spread']:.1%}")
    else:
        out.print("noise floor: this plan has one run; repeat it (scripts/measure_fidelity.py) to measure it")
    if "verify_pass_wall_over_cpu" in d:
        cores = d.get("core_load") or {}
        out.print(f"pass wall/CPU time: draft {d['draft_pass_wall_over_cpu']:.2f}, verify "
                  f"{d['verify_pass_wall_over_cpu']:.2f}; other work on the node cores during the run: "
                  + ", ".join(f"{r} core {c['core']} {c['foreign_share']:.0%}" for r, c in cores.items()))
    passes = Table(title="single-pass prediction at the run's own shapes")
    for col in ("predictor", "node", "passes", "median |pass err|", "Σpred/Σmeas"):
        passes.add_column(col)
    for r in d["pass_errors"]:
        passes.add_row(r["predictor"], r["node"], str(r["passes"]), f"{r['median_pass_error']:.1%}",
                       f"{r['sum_ratio']:.3f}")
    out.print(passes)
    fw = result.run.get("foreign_work")
    ovh = d.get("host_overhead") or {}
    out.print(f"foreign work on the node cores: {'unknown' if fw is None else f'{fw:.0%}'}"
              + (" — NOISY: measured under load, left out of headline numbers" if result.noisy else " (quiet)")
              + f"; host overhead: {ovh.get('source')}"
              + "".join(f", {n} {ovh[n]['a_s'] * 1e3:.3f} ms + {ovh[n]['per_seq_s'] * 1e6:.1f} µs·b + "
                        f"{ovh[n]['per_token_s'] * 1e6:.2f} µs·b·l" for n in ("draft", "verify") if n in ovh))


def _tau_text(tau) -> str:
    """Kendall's τ for a title: two decimals ("n/a" when undefined: fewer than two plans, or all tied)."""
    return "n/a" if tau is None else f"{tau:.2f}"


def _rank(run_id, predictor: str, host_overhead: str, store, as_json: bool) -> None:
    from specedge.errors import InputError
    from specedge.fidelity.predictors import PREDICTORS
    from specedge.fidelity.repeats import rank_fidelity
    from specedge.fidelity.rank_report import rank_noise_text, regret_text

    if run_id is not None:
        raise InputError("--rank ranks every run in the store; give no RUN_ID")
    if predictor not in PREDICTORS:
        raise InputError(f"--predictor {predictor!r}: expected one of {', '.join(PREDICTORS)}")
    pairs = rank_fidelity(store, predictor=predictor, host_overhead=host_overhead)
    if as_json:
        sys.stdout.write(json.dumps(pairs, indent=2) + "\n")
        return
    out = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    for entry in pairs:
        table = Table(title=f"{entry['pair']} ({entry['scenario']}): distinct plans {entry['distinct_plans']}, "
                            f"Kendall τ {_tau_text(entry['kendall_tau'])}, same best {entry['same_best']} ({predictor}, "
                            "observed acceptance)" + (f"; {rank_noise_text(entry)}" if "repeat_tau" in entry else "")
                            + (f"; {regret_text(entry)}" if regret_text(entry) else ""))
        for col in ("plan", "runs", "predicted makespan s", "measured makespan s", "from recorded acceptance s",
                    "noisy"):
            table.add_column(col)
        for p in entry["plans"]:
            rec = p["predicted_from_recorded_acceptance_s"]
            table.add_row(p["policy"], str(len(p["run_ids"])), f"{p['predicted_makespan_s']:.3f}",
                          f"{p['measured_makespan_s']:.3f}", "-" if rec is None else f"{rec:.3f}",
                          "yes" if p["noisy"] else "no")
        out.print(table)
        if entry["too_few_plans"]:
            from specedge.fidelity.rank_report import too_few_plans_note

            out.print("note: " + too_few_plans_note(entry))
