"""Which real runs a pair still needs for rank fidelity and repeats, and about how long they take.

``scripts/measure_fidelity.py --extra-plans N --repeat-to R --budget-s S`` (see docs/fidelity.md) plans a short
quiet session from what the store already holds, instead of re-measuring everything:

1. :func:`scenario_plans`: the pair's distinct plans (schedules, :mod:`specedge.fidelity.schedule`) in its
   rank-fidelity scenario, from the quiet runs only, each with its runs, median makespan and whether several
   policies produced it (a *pooled* plan);
2. :func:`choose`: first up to N new plans (candidates whose schedule is not in the store, until the pair has
   ``min_plans`` distinct plans), then repeats, one more run per plan per pass, pooled plans first, then the plans
   with the fewest runs, then the shortest, until each has R quiet runs; a run whose estimated wall time would
   take the total over S is skipped (and listed).

Wall time of a run = its makespan (the median of the plan's quiet runs; a new plan: its predicted makespan
× :data:`NEW_PLAN_MARGIN`) + the pair's per-run overhead (:func:`run_overhead_s`: model loading, warm-up, the
quiet check, writing: the median over the pair's runs of (dataset written − run started) − makespan). Estimates,
not measurements.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timezone

from specedge.fidelity.compare import named_traces, run_noise
from specedge.fidelity.schedule import joined_label, run_schedule, schedule_sha256

#: A new plan's predicted makespan is scaled by this for its wall-time estimate (predictions were 7–12 % short).
NEW_PLAN_MARGIN = 1.15
#: Per-run overhead assumed when the store has no run to measure it from (seconds).
DEFAULT_OVERHEAD_S = 70.0


@dataclass(frozen=True)
class PlanRuns:
    """One distinct plan of a pair's scenario: its schedule hash, label, plan JSON (of its first run), quiet runs,
    median makespan and compute traces named by its runs."""

    schedule: str
    label: str
    plan: dict
    run_ids: tuple[str, ...]
    makespan_s: float
    pooled: bool
    compute_traces: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Step:
    """One run to do: ``kind`` "new plan" or "repeat", the plan's label and JSON, why, and its estimated wall time."""

    kind: str
    label: str
    plan: dict
    reason: str
    estimated_wall_s: float


def _stamp_gap_s(info) -> float | None:
    """Seconds from the run's start (the UTC stamp ending its dataset id) to the dataset's creation."""
    try:
        start = datetime.strptime(info.id[-15:], "%Y%m%dT%H%M%S")
        end = datetime.fromisoformat(info.created).replace(tzinfo=None)
    except (ValueError, TypeError):
        return None
    return (end - start).total_seconds()


def _pair_runs(store, pair: str, tasks: int) -> list:
    return [i for i in store.list() if i.kind == "run" and not i.metadata.get("online")
            and i.metadata.get("pair") == pair and (i.metadata.get("scenario") or {}).get("num_tasks") == tasks]


def run_overhead_s(store, pair: str, tasks: int) -> float:
    """Median over the pair's runs of (created − started) − makespan: what a run costs beyond its makespan (runs
    re-written as a later version of an older id, whose gap is not one run, are left out)."""
    gaps = []
    for info in _pair_runs(store, pair, tasks):
        gap = _stamp_gap_s(info)
        span = info.metadata.get("makespan_s")
        if gap is not None and span is not None and 0 < gap - span < 1800:
            gaps.append(gap - float(span))
    return float(statistics.median(gaps)) if gaps else DEFAULT_OVERHEAD_S


def latest_grid(store, pair: str, tasks: int) -> tuple[tuple[str, str], float] | None:
    """(draft, verify) compute traces of the newest grid the pair's quiet runs name, and its age in seconds now
    (from the later of the two traces' creation), or None. Top-up runs join that grid's session only while it is
    younger than :data:`specedge.fidelity.repeats.MAX_GRID_AGE_S`."""
    named = {named_traces(i.metadata) for i in _pair_runs(store, pair, tasks) if not run_noise(i.metadata)[0]}
    created = {i.id: i.created for i in store.list() if i.kind == "compute"}
    dated = [(max(created[t] for t in tr), tr) for tr in named if all(t in created for t in tr)]
    if not dated:
        return None
    when, traces = max(dated)
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(when).replace(tzinfo=timezone.utc)).total_seconds()
    return traces, age


def scenario_plans(store, pair: str, tasks: int, compute_traces: tuple[str, str] | None = None) -> list[PlanRuns]:
    """The distinct plans of the pair's scenario with the most quiet runs (K = ``tasks``), quiet runs only; with
    ``compute_traces``, only the runs that name that grid (one session)."""
    from specedge.fidelity.repeats import plan_label, scenario_key

    quiet = [i for i in _pair_runs(store, pair, tasks) if not run_noise(i.metadata)[0]
             and (compute_traces is None or named_traces(i.metadata) == tuple(compute_traces))]
    if not quiet:
        return []
    scenarios = [scenario_key(i.metadata) for i in quiet]
    best = max(set(scenarios), key=scenarios.count)
    groups: dict[str, list] = {}
    for info, scen in sorted(zip(quiet, scenarios), key=lambda p: p[0].id):
        if scen == best:
            groups.setdefault(run_schedule(info.metadata), []).append(info)
    out = []
    for sched, infos in groups.items():
        labels = [plan_label(i.metadata) for i in infos]
        traces = {named_traces(i.metadata) for i in infos}
        out.append(PlanRuns(schedule=sched, label=joined_label(labels), plan=infos[0].metadata["plan"],
                            run_ids=tuple(i.id for i in infos),
                            makespan_s=float(statistics.median(float(i.metadata["makespan_s"]) for i in infos)),
                            pooled=len(set(labels)) > 1, compute_traces=tuple(sorted(t for t in traces if all(t)))))
    return sorted(out, key=lambda p: p.makespan_s)


def derive(plan: dict, **changes) -> dict:
    """A hand plan from ``plan``: its batches, l, bandwidths and mode with ``changes`` (policy notes dropped)."""
    return {**{k: v for k, v in plan.items() if k not in ("meta", "scenario")}, **changes}


def choose(plans: list[PlanRuns], candidates, *, extra_plans: int, repeat_to: int, budget_s: float | None,
           overhead_s: float, min_plans: int) -> tuple[list[Step], list[Step]]:
    """(steps to run, steps skipped over the budget); see the module docstring.

    ``candidates``: iterable of (label, plan JSON, predicted makespan s) in order of preference, evaluated lazily
    (a generator may plan with a policy only when it is needed); one whose schedule is already a plan (or another
    candidate) is passed over."""
    wanted: list[Step] = []
    known = {p.schedule for p in plans}
    new = 0
    if extra_plans > 0 and len(known) < min_plans:
        for label, plan, predicted_s in candidates:
            sched = schedule_sha256(plan)
            if sched in known:
                continue
            known.add(sched)
            wanted.append(Step("new plan", label, plan, f"distinct plan {len(known)} of {min_plans}",
                               predicted_s * NEW_PLAN_MARGIN + overhead_s))
            new += 1
            if new >= extra_plans or len(known) >= min_plans:
                break
    order = sorted(plans, key=lambda p: (not p.pooled, len(p.run_ids), p.makespan_s))
    for extra in range(1, max(repeat_to, 0) + 1):
        for p in order:
            have = len(p.run_ids) + extra - 1
            if have < repeat_to:
                why = f"run {have + 1} of {repeat_to}" + (" (pooled: produced by several policies)" if p.pooled else "")
                wanted.append(Step("repeat", p.label, p.plan, why, p.makespan_s + overhead_s))
    steps, skipped, total = [], [], 0.0
    for s in wanted:
        if budget_s is not None and total + s.estimated_wall_s > budget_s:
            skipped.append(s)
            continue
        steps.append(s)
        total += s.estimated_wall_s
    return steps, skipped


def grid_covers(store, traces: tuple[str, str], plan: dict) -> str | None:
    """None when both compute traces' grids cover the plan's batch sizes and verify widths (l + 1), else why not
    (a plan outside the grid would test the predictor's extrapolation, not the model)."""
    ls = plan["speculation_length"]
    ls = [int(ls)] if isinstance(ls, (int, float)) else [int(x) for x in ls]
    b_max = max(len(b) for b in plan["batches"])
    for trace in traces:
        grid = ((store.info(trace).metadata.get("grid") or {}).get("cached") or {})
        if not grid:
            continue
        if b_max > max(grid["batch_sizes"]) or max(ls) + 1 > max(grid["new_tokens"]):
            return (f"{trace}: grid b <= {max(grid['batch_sizes'])}, x <= {max(grid['new_tokens'])}; the plan "
                    f"needs b = {b_max}, x = {max(ls) + 1}")
    return None


def predicted_makespan_s(store, ref_run_id: str, plan: dict, *, predictor: str = "measured") -> float:
    """Replay's makespan of ``plan`` on the scenario of run ``ref_run_id`` (same tasks), predicted before running:
    the pair's recorded acceptance (else the run's own rounds), ``predictor`` built from the compute traces the
    run names, with the host overhead fitted on the pair's quiet runs."""
    from dataclasses import replace

    from specedge.fidelity.compare import host_overheads, observed_acceptance, run_scenario
    from specedge.fidelity.predictors import build_predictors, compute_rows
    from specedge.fidelity.repeats import recorded_acceptance_id
    from specedge.latency.host_overhead import with_job_overhead
    from specedge.plan import Plan
    from specedge.replay import evaluate
    from specedge.serve.dataset import split_records

    meta = store.info(ref_run_id).metadata
    parts = split_records(store.read(ref_run_id))
    tasks = parts["task"].sort_values("task").reset_index(drop=True)
    acc = recorded_acceptance_id(store, meta) or observed_acceptance(parts["round"], len(tasks))
    sc = run_scenario(meta, tasks, acc, store=store)
    traces = tuple(meta["compute_traces"][r] for r in ("draft", "verify"))
    preds = build_predictors(sc, compute_rows(store, traces[0], sc.draft.name),
                             compute_rows(store, traces[1], sc.target.name), sources=traces)
    p = next(q for q in preds if q.name == predictor)
    ovh, _ = host_overheads(store, ref_run_id, meta, parts, "pair")
    if ovh is not None:
        p = replace(p, draft=with_job_overhead(p.draft, ovh["draft"]), verify=with_job_overhead(p.verify, ovh["verify"]))
    body = {k: v for k, v in plan.items() if k != "scenario"}
    res = evaluate(replace(sc, draft_compute=p.draft, verify_compute=p.verify), Plan.from_dict(body),
                   seed=int(meta.get("seed", 0)))
    return float(res.latency_s)
