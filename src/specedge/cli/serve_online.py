"""``specedge serve-real --arrivals ...``: a real online run (:mod:`specedge.serve.online_run`).

The options live on ``serve-real`` (:mod:`specedge.cli.serve`); this module builds the workload exactly as
``specedge online`` does for the same seed, measures compute traces on a grid covering its shapes, checks the
quiet-machine protocol, serves and writes the ``run`` dataset.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from specedge.errors import InputError


@dataclass(frozen=True)
class OnlineArgs:
    arrivals: str
    rate: float
    requests: int
    cv: float
    workload_file: Path | None
    layout: str
    policy: str
    speculation_length: int
    max_batch_size: int
    config: tuple[str, ...]


def _engine_config(args: OnlineArgs) -> dict:
    """num_slots, max_batch_size, uplink_rule from the flags and ``--config KEY=VALUE`` (as ``specedge online``)."""
    from specedge.cli.online import _kv
    from specedge.online.engine import OnlineConfig

    cfg = {"max_batch_size": int(args.max_batch_size), **_kv(list(args.config), "--config")}
    allowed = {"num_slots", "max_batch_size", "uplink_rule"}
    bad = sorted(set(cfg) - allowed)
    if bad:
        raise InputError(f"--config {', '.join(bad)}: a real online run takes {', '.join(sorted(allowed))}")
    full = OnlineConfig().replace(**cfg, max_speculation_length=max(10, int(args.speculation_length)))
    return {"num_slots": full.num_slots, "max_batch_size": full.max_batch_size, "uplink_rule": full.uplink_rule}


def build_workload(sc, args: OnlineArgs, seed: int):
    """The workload ``specedge online`` builds for these flags and seed (sizes from the run's scenario)."""
    from specedge.online import workload as wl

    if args.arrivals in ("poisson", "gamma"):
        w = wl.synthetic(sc.params, arrivals=args.arrivals, rate_rps=args.rate, num_requests=args.requests,
                         cv=args.cv, seed=seed)
        return w, {"arrivals": args.arrivals, "rate_rps": float(args.rate), "cv": float(args.cv), "seed": int(seed)}
    if args.arrivals == "trace":
        if args.workload_file is None:
            raise InputError("--arrivals trace needs --workload-file FILE")
        from specedge.online.workload_kind import parse_workload
        from specedge.provenance import portable_path

        # sizes clipped to the run's scenario (a CPU run serves prompts and outputs of its preset's range)
        clip = {"max_input_tokens": int(sc.params.input_tokens_max),
                "max_output_tokens": int(sc.params.output_tokens_max)}
        w = wl.from_frame(parse_workload(args.workload_file, args.layout), sc.params, seed=seed,
                          name=args.workload_file.name, **clip)
        return w, {"arrivals": "trace", "workload_file": portable_path(args.workload_file), "layout": args.layout,
                   "seed": int(seed), **clip}
    raise InputError(f"--arrivals must be poisson, gamma or trace, got {args.arrivals!r}")


def serve_online_cmd(args: OnlineArgs, *, pair, seed, temperature, dataset, checkpoints, overrides, measure,
                     compute_repeats, measure_mode, core_pair, allow_noisy, quiet_sample_s, use_traces, note,
                     replace_run, store, dry_run, as_json, quiet, console, grid_mode: str = "pass") -> None:
    """The online branch of ``serve-real`` (``quiet``: the static command's sampler)."""
    from specedge.plan import Plan
    from specedge.serve.measure import measure_pair, run_grid
    from specedge.serve.online_run import OnlineServeSetup, serve_online, upload_ends
    from specedge.serve.run import _check_cores, write_run
    from specedge.serve.workload import build_scenario, load_model, model_source, stdlib_task_prompts
    from specedge.traces.store import open_store

    if args.requests < 1:
        raise InputError(f"--requests must be >= 1, got {args.requests}")
    draft_name, target_name = pair.split("/")
    draft_src, target_src = model_source(draft_name, checkpoints), model_source(target_name, checkpoints)
    st = open_store(store)
    sc = build_scenario(pair, tasks=1, seed=seed, store=st, **overrides)
    w, made = build_workload(sc, args, seed)
    cfg = _engine_config(args)
    from specedge.serve.online_run import SERVED_ONLINE_POLICIES

    if args.policy not in SERVED_ONLINE_POLICIES:
        raise InputError(f"online policy {args.policy!r} cannot be served for real (the draft node implements "
                         f"{', '.join(SERVED_ONLINE_POLICIES)})")
    if args.speculation_length < 1:
        raise InputError(f"--speculation-length must be >= 1 (a real run serves SD), got {args.speculation_length}")
    plan_like = Plan.from_dict({"batches": [list(range(min(cfg["max_batch_size"], w.num_requests)))],
                                "speculation_length": int(args.speculation_length), "bandwidth_hz": [1.0] * min(
                                    cfg["max_batch_size"], w.num_requests)})
    if dry_run:
        up = upload_ends(sc, w, cfg["uplink_rule"])
        out = {"workload": made, "requests": w.num_requests, "offered_rate_rps": w.offered_rate_rps,
               "last_arrival_s": float(w.arrival_s[-1]), "last_upload_end_s": float(up.max()),
               "policy": args.policy, "speculation_length": args.speculation_length, **cfg}
        sys.stdout.write(json.dumps(out, indent=2) + "\n") if as_json else console.print(out)
        return
    compute_ids = None
    if use_traces is not None:
        ids = [t.strip() for t in use_traces.split(",")]
        if measure or len(ids) != 2 or not all(ids):
            raise InputError("--compute-traces: expected DRAFT_ID,VERIFY_ID, and not together with --measure-compute")
        compute_ids = {"draft": ids[0], "verify": ids[1]}
    _check_cores(core_pair)
    node_cores = {r: c for r, c in zip(("draft", "verify"), core_pair) if c is not None}
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    before = quiet(node_cores, quiet_sample_s, allow_noisy, "compute measurement" if measure else "run", console)
    if measure:
        from specedge.cli.serve import _measure

        compute_ids = _measure(measure_pair, run_grid, sc, plan_like, draft_src, target_src, st, core_pair,
                               compute_repeats, stamp, console, measure_mode, {"foreign_work": {"before": before}},
                               grid_mode, grid_tasks=SimpleNamespace(tasks=w.frame()))
        before = quiet(node_cores, quiet_sample_s, allow_noisy, "run", console)
    encoder = load_model(target_src)
    prompts = stdlib_task_prompts(encoder.encode, w.input_tokens, seed)
    setup = OnlineServeSetup(sc, w, int(args.speculation_length), draft_src, target_src, prompts.request_ids,
                             prompts.prompt_ids, num_slots=cfg["num_slots"], max_batch_size=cfg["max_batch_size"],
                             uplink_rule=cfg["uplink_rule"], policy=args.policy, arrivals=made,
                             temperature=temperature, seed=seed, cores=core_pair, prompt_source=prompts.source)
    run = serve_online(setup, progress=lambda msg: console.print(msg))
    rate = f"{args.rate:g}" if args.arrivals != "trace" else "trace"
    dataset_id = dataset or f"run-online-{draft_name}-{target_name}-{rate}rps-l{args.speculation_length}-{stamp}"
    from specedge.serve.quiet import FOREIGN_WORK_LIMIT

    fw = {"before": before, **run.metadata.get("foreign_work", {})}
    shares = [s["max"] for s in (fw.get("before"), fw.get("during")) if s]
    fw["max"] = max(shares) if shares else None
    fw["noisy"] = fw["max"] is None or fw["max"] > FOREIGN_WORK_LIMIT
    extra = {"note": note, "policy": args.policy, "foreign_work": fw}
    if compute_ids:
        extra["compute_traces"] = compute_ids
    info = write_run(run, dataset_id, store=st, extra=extra, replace=replace_run)
    tasks = run.tasks
    e2e = tasks["completion_s"].to_numpy() - np.asarray(run.metadata["online"]["arrival_s"])
    summary = {"dataset": info.id, "rows": info.rows, "requests": int(len(tasks)), "makespan_s": run.makespan_s,
               "e2e_p50_s": float(np.median(e2e)),
               "mean_verify_batch_size": run.metadata["online"]["mean_verify_batch_size"],
               "tau_mean_tokens_per_round": run.metadata["tau_mean_tokens_per_round"],
               "load_average_before": run.metadata["load_average_before"], "compute_traces": compute_ids,
               "foreign_work": fw["max"], "noisy": fw["noisy"]}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        console.print(f"wrote online run dataset [bold]{info.id}[/] ({info.rows:,} rows): {len(tasks)} requests, "
                      f"makespan {run.makespan_s:.3f} s, median e2e {summary['e2e_p50_s']:.3f} s, mean batch "
                      f"{summary['mean_verify_batch_size']:.2f}, τ = {summary['tau_mean_tokens_per_round']:.2f}")
