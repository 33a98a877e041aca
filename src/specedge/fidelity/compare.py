"""Replay a real run's plan and compare the prediction with what the run measured.

The replay is :func:`specedge.evaluate` on the run's own scenario (rebuilt from the run's recorded parameters and
tasks, so upload times are identical) and plan, with

- acceptance: ``observed`` (default) makes task k replay exactly the rounds it had in the run
  (:class:`ObservedAcceptance`), so every difference left is timing; or an acceptance dataset id (the pair's
  recorded trace, tasks assigned to recorded requests by the replay's seeded rule), which adds acceptance noise;
- compute: each predictor of :mod:`specedge.fidelity.predictors`, from the compute traces the run names (or the
  latest ones of its two models in the store).

Errors are fractions: per task |predicted − measured| / measured of the latency (completion time since t0, uploads
included), summarised by the median and the 90th percentile, and |predicted − measured| / measured of the
makespan. Diagnostics say where the error comes from: the pass-level error of each predictor on the run's own
pass shapes, the share of each node's job time spent outside forward passes (sampling, bookkeeping, pickling),
the pipe's one-way delay, and ``stage-times``: the recursion of docs/model.md section 5 fed the *measured* job
durations, which isolates the recursion and IPC from compute prediction.

Host overhead (:mod:`specedge.latency.host_overhead`): every compute predictor also carries each node's per-job
host overhead t_host(b, x) = a + s b + t b x, *fitted* to the job vs pass records of (``host_overhead=``)
``"pair"``: the pair's other quiet runs in the store (this run's own records when there are none), ``"self"``:
this run's records, ``"none"``: no overhead (the paper's model), or a {"draft", "verify"} mapping of
:class:`~specedge.latency.host_overhead.JobOverhead`.

Noise: a run whose node cores had more than :data:`specedge.serve.quiet.FOREIGN_WORK_LIMIT` foreign work before or
during it is ``noisy`` (:func:`~specedge.fidelity.runs.run_noise`); it is still compared but left out of headline
numbers. Each predictor row also carries a two-sample Kolmogorov–Smirnov test (:func:`scipy.stats.ks_2samp`) of
predicted against measured per-task latencies: ``ks_statistic`` (the largest gap between the two empirical CDFs)
and ``ks_pvalue``.

A run's metadata and records (its named compute traces, noise, the pair's other runs, the latest run, the replay's
fronthaul delay, the cached job and pass records) are read by :mod:`specedge.fidelity.runs`; this module re-exports
those names, so imports from ``specedge.fidelity.compare`` keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from specedge.errors import InputError
from specedge.fidelity import runs as _runs
from specedge.fidelity.runs import _records, fronthaul_of, latest_run, named_traces, pair_runs, run_noise
from specedge.latency.acceptance import TraceAcceptance

#: the same dict as :data:`specedge.fidelity.runs._RECORDS_CACHE`, under the name memo.clear and the tests use
_RECORDS_CACHE = _runs._RECORDS_CACHE

#: Name of the diagnostic row that replays the measured stage durations through the pipeline recursion.
STAGE_TIMES = "stage-times"


class ObservedAcceptance(TraceAcceptance):
    """A run's own rounds: task k replays its recorded rounds (units are named ``task-<k>``, one per task)."""

    def assign(self, num_tasks: int, rng) -> np.ndarray:
        if num_tasks != self.unit_starts.size:
            raise InputError(f"observed acceptance has {self.unit_starts.size} tasks, the scenario {num_tasks}")
        return np.arange(num_tasks)


def observed_acceptance(rounds: pd.DataFrame, num_tasks: int, name: str = "observed") -> ObservedAcceptance:
    """The run's ``round`` rows as an acceptance source that gives every task its own rounds."""
    present = np.unique(rounds["task"].to_numpy(np.int64))
    if present.size != num_tasks or (present != np.arange(num_tasks)).any():
        raise InputError(f"{name}: rounds cover tasks {present.tolist()[:10]}..., expected 0..{num_tasks - 1}")
    frame = pd.DataFrame({
        "request_id": [f"task-{int(k):07d}" for k in rounds["task"]],
        "round": rounds["round"].to_numpy(np.int64),
        "drafted": rounds["drafted"].to_numpy(np.int64),
        "accepted": rounds["accepted"].to_numpy(np.int64),
    })
    return ObservedAcceptance(frame, name=name)


def host_overheads(store, run_id: str, meta: dict, parts: dict, how) -> tuple[dict | None, dict]:
    """({"draft": JobOverhead, "verify": JobOverhead} or None, description) for ``how`` (see the module
    docstring)."""
    from specedge.latency.host_overhead import fit_run_overheads
    from specedge.serve.dataset import split_records

    if how in (None, "none"):
        return None, {"source": "none"}
    if isinstance(how, dict):
        return {n: how[n] for n in ("draft", "verify")}, {"source": "given",
                                                          **{n: vars(how[n]) for n in ("draft", "verify")}}
    if how not in ("pair", "self"):
        raise InputError(f"host overhead {how!r}: expected 'pair', 'self' or 'none'")
    others = pair_runs(store, meta, exclude=run_id) if how == "pair" else []
    if others:  # fitted once per set of other runs (their store, id, checksum): fidelity.memo.built
        from specedge.fidelity.memo import built, version_key

        keys = tuple(version_key(store, r) for r in others)
        fits = built(("host_overhead", keys), lambda: fit_run_overheads(
            [_records(store, r, split_records) for r in others],
            source=f"fitted on {len(others)} other quiet run(s) of the pair"))
        source = {"source": "pair", "runs": others}
    else:
        fits = fit_run_overheads([parts], source="fitted on this run's own job and pass records")
        source = {"source": "self", "runs": [run_id]}
    return ({n: f.overhead for n, f in fits.items()},
            {**source, **{n: f.to_dict() for n, f in fits.items()}})


def run_predictors(st, run_id: str, meta: dict, sc, parts: dict, predictors, compute_traces, host_overhead):
    """(predictors with each node's host overhead, compute trace ids, grid coverage, overhead, its description,
    the speed probes' description) for a run: built from the run's compute traces (``compute_traces`` overriding its metadata, else the newest of
    each model) unless ``predictors`` are given. Static and online runs (:mod:`.online_run`) share it."""
    from specedge.fidelity.predictors import build_predictors, compute_rows, grid_coverage, latest_compute_trace
    from specedge.latency.host_overhead import with_job_overhead

    if predictors is None:
        traces = compute_traces or named_traces(meta)
        traces = tuple(t or latest_compute_trace(st, m) for t, m in zip(traces, (sc.draft.name, sc.target.name)))
        draft_rows = compute_rows(st, traces[0], sc.draft.name)
        verify_rows = compute_rows(st, traces[1], sc.target.name)
        predictors = build_predictors(sc, draft_rows, verify_rows, sources=traces)
        coverage = grid_coverage(parts["pass"], draft_rows, verify_rows)
    else:
        traces, coverage = ("custom", "custom"), {}
    from specedge.fidelity.probe import run_speed_probe, with_speed_probe  # measured-probed, before the overhead

    factors, probe_info = run_speed_probe(st, meta, traces)
    predictors = with_speed_probe(predictors, factors)
    overhead, overhead_info = host_overheads(st, run_id, meta, parts, host_overhead)
    if overhead is not None:
        predictors = [replace(p, draft=with_job_overhead(p.draft, overhead["draft"]),
                              verify=with_job_overhead(p.verify, overhead["verify"])) for p in predictors]
    if traces != ("custom", "custom"):  # job-shaped traces carry a measured wake-up term (fidelity.job)
        from specedge.fidelity.job import trace_wake_ups, with_wake_ups

        predictors = with_wake_ups(predictors, trace_wake_ups(st, traces))
    return predictors, traces, coverage, overhead, overhead_info, probe_info


@dataclass(frozen=True)
class FidelityResult:
    """Predicted vs measured for one run: ``table`` (one row per predictor), ``tasks`` (one row per task and
    predictor), ``diagnostics`` (where the error comes from) and the run's provenance summary."""

    run_id: str
    table: pd.DataFrame
    tasks: pd.DataFrame = field(repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)
    run: dict = field(default_factory=dict, repr=False)

    def best(self) -> str:
        """The compute predictor with the smallest median task error (the diagnostic row excluded)."""
        t = self.table[self.table["predictor"] != STAGE_TIMES]
        return str(t.sort_values(["median_task_error", "makespan_error"]).iloc[0]["predictor"])

    def to_dict(self) -> dict:
        preds = {}
        for row in self.table.to_dict(orient="records"):
            name = row.pop("predictor")
            preds[name] = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        return {"run": self.run_id, **self.run, "best_predictor": self.best(), "predictors": preds,
                "diagnostics": self.diagnostics}

    @property
    def noisy(self) -> bool:
        return bool(self.run.get("noisy", True))


# ------------------------------------------------------------------------------------------------ pieces
def run_scenario(meta: dict, task_rows: pd.DataFrame, acceptance, store=None, fronthaul_delay_s: float | None = None):
    """The scenario the run served, rebuilt from its metadata (every parameter and each task's distance);
    ``fronthaul_delay_s`` replaces the one-way node-to-node delay (the run's scenario has the paper's 0)."""
    from specedge.scenario import Scenario

    scen = meta.get("scenario") or {}
    params = dict(scen.get("params") or {})
    distances = scen.get("distance_m")
    if not params or distances is None:
        raise InputError(f"run {meta.get('dataset')!r}: metadata lacks the scenario parameters or task distances")
    params.pop("num_tasks", None)
    if fronthaul_delay_s is not None:
        params["fronthaul_delay_s"] = float(fronthaul_delay_s)
    tasks = pd.DataFrame({
        "input_tokens": task_rows["input_tokens"].to_numpy(np.int64),
        "output_tokens": task_rows["output_tokens"].to_numpy(np.int64),
        "distance_m": np.asarray(distances, dtype=np.float64),
    })
    return Scenario.from_preset(scen.get("preset", "paper"), pair=meta["pair"], tasks=tasks,
                                seed=int(scen.get("seed", 0)), acceptance=acceptance, store=store, **params)


def _errors(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return np.abs(pred - meas) / meas


def stage_time_completion(jobs: pd.DataFrame, task_rows: pd.DataFrame, ready_s: np.ndarray, mode: str,
                          fronthaul_delay_s: float = 0.0) -> np.ndarray:
    """Per-task completion from the pipeline recursion fed with the measured draft and verify job durations."""
    from specedge.latency.pipeline import run_jobs

    d = jobs[jobs["node"] == "draft"].set_index(["round", "batch"]).sort_index()
    v = jobs[jobs["node"] == "verify"].set_index(["round", "batch"]).sort_index()
    keys = d.index
    rnd = keys.get_level_values(0).to_numpy()
    bat = keys.get_level_values(1).to_numpy()
    pos = {key: j for j, key in enumerate(keys)}
    prev = np.array([pos.get((r - 1, b), -1) for r, b in keys])
    td = (d["end_s"] - d["start_s"]).to_numpy()
    tv = (v.loc[keys, "end_s"] - v.loc[keys, "start_s"]).to_numpy()
    _, v_end = run_jobs(mode, prev, ready_s[bat], td, tv, fronthaul_delay_s=fronthaul_delay_s)
    last = {(b, r): j for j, (r, b) in enumerate(zip(rnd, bat))}
    return np.array([v_end[last[(int(b), int(n) - 1)]] for b, n in zip(task_rows["batch"], task_rows["round"])])


def pass_errors(passes: pd.DataFrame, predictors) -> pd.DataFrame:
    """Median |predicted − measured| / measured of single passes at the run's own shapes, per predictor and node."""
    rows = []
    shapes = {}  # per node, once: (passes, measured durations, b, x, c) every predictor is asked about
    for node in ("draft", "verify"):
        part = passes[passes["node"] == node]
        shapes[node] = (len(part), (part["end_s"] - part["start_s"]).to_numpy(),
                        *(part[c].to_numpy(np.float64) for c in ("batch_size", "new_tokens", "context_tokens")))
    for p in predictors:
        for node, pred in (("draft", p.draft), ("verify", p.verify)):
            n, meas, b, x, c = shapes[node]
            est = np.asarray(pred.latency_s(b, x, c), dtype=np.float64)
            rows.append({"predictor": p.name, "node": node, "passes": int(n),
                         "median_pass_error": float(np.median(_errors(est, meas))),
                         "sum_ratio": float(est.sum() / meas.sum())})
    return pd.DataFrame(rows)


def overheads(jobs: pd.DataFrame, passes: pd.DataFrame) -> dict:
    """Share of job time outside forward passes, per node, and the pipe's one-way delay (draft -> verify) where
    the verify node was idle."""
    out = {}
    pass_time = passes.assign(t=passes["end_s"] - passes["start_s"]).groupby(["node", "batch", "round"])["t"].sum()
    for node in ("draft", "verify"):
        j = jobs[jobs["node"] == node].set_index(["node", "batch", "round"])
        total = float((j["end_s"] - j["start_s"]).sum())
        inside = float(pass_time.reindex(j.index).fillna(0.0).sum())
        out[f"{node}_outside_pass_share"] = (total - inside) / total if total > 0 else float("nan")
    d = jobs[jobs["node"] == "draft"].set_index(["batch", "round"]).sort_index()
    v = jobs[jobs["node"] == "verify"].set_index(["batch", "round"]).sort_index()
    v_sorted = v.sort_values("start_s")
    prev_end = v_sorted["end_s"].shift(1).reindex(v.index)
    idle = (prev_end.isna() | (prev_end < d["end_s"])).to_numpy()
    delay = (v["ready_s"] - d["end_s"]).to_numpy()[idle]
    out["pipe_delay_median_s"] = float(np.median(delay)) if delay.size else float("nan")
    if "cpu_s" in passes.columns and passes["cpu_s"].notna().any():
        for node in ("draft", "verify"):
            p = passes[(passes["node"] == node) & passes["cpu_s"].notna()]
            wall = (p["end_s"] - p["start_s"]).to_numpy()
            # wall time of passes in which the node's thread did not run: preemption by other processes
            out[f"{node}_pass_wall_over_cpu"] = float(wall.sum() / p["cpu_s"].sum()) if len(p) else float("nan")
    out["pipe_delay_p90_s"] = float(np.percentile(delay, 90)) if delay.size else float("nan")
    return out


# ------------------------------------------------------------------------------------------------ main entry
def compare_run(run_id: str | None = None, *, store=None, acceptance: str = "observed", predictors=None,
                compute_traces: tuple[str, str] | None = None, fronthaul: str | float = "scenario",
                host_overhead="pair", contention: str | None = "plan", job_grid: bool = True,
                pass_diagnostics: bool = True) -> FidelityResult:
    """Replay run ``run_id`` (latest run when None) with each compute predictor and compare with the run.

    ``fronthaul``: see :func:`~specedge.fidelity.runs.fronthaul_of` (the stage-times diagnostic uses the same
    delay).
    ``predictors``: a list of :class:`~specedge.fidelity.predictors.PredictorPair` replacing the three built from
    the compute traces; ``compute_traces``: (draft dataset, verify dataset) overriding the run's metadata.
    ``host_overhead``: see the module docstring ("none" leaves the predictors as built or given).
    ``contention``: adds ``measured-contention`` (:mod:`specedge.fidelity.contention`), fitted on the pair's other
    quiet runs without this plan's repeats ("plan") or without this run ("run"); None: not added.
    ``job_grid``: adds ``measured-job`` (:mod:`specedge.fidelity.job`) when both models have a job-shaped grid.
    ``measured-probed`` (:mod:`specedge.fidelity.probe`) is added when the run and both compute traces carry a
    speed probe (diagnostics ``speed_probe`` say why not otherwise).
    ``pass_diagnostics``: False leaves out the diagnostics' ``pass_errors`` (every predictor at every pass of the
    run: seconds over a study), for a caller that reads only ``table`` (the study's recorded-acceptance replay);
    the table and per-task rows are the same either way.
    """
    from scipy.stats import ks_2samp

    from specedge.fidelity.contention import with_contention
    from specedge.fidelity.memo import built, store_key, trace_source, version_key
    from specedge.plan import Plan
    from specedge.replay import evaluate
    from specedge.serve.dataset import KIND, split_records
    from specedge.traces.store import open_store

    st = store if hasattr(store, "read") else open_store(store)
    run_id = run_id or latest_run(st)
    info = st.info(run_id)
    if info.kind != KIND:
        raise InputError(f"dataset {run_id!r} is a {info.kind} dataset, not a run")
    meta = info.metadata
    parts = split_records(st.read(run_id))
    task_rows = parts["task"].sort_values("task").reset_index(drop=True)
    k = len(task_rows)
    if acceptance == "observed":
        source = observed_acceptance(parts["round"], k, name=f"{run_id} (observed)")
    else:
        source = trace_source(st, acceptance)  # a recorded trace: built once per version (fidelity.memo)
    sc = run_scenario(meta, task_rows, source, store=st, fronthaul_delay_s=fronthaul_of(meta, fronthaul))
    plan = Plan.from_dict(meta["plan"], source=f"run {run_id!r} plan")
    predictors, traces, coverage, overhead, overhead_info, probe_info = run_predictors(
        st, run_id, meta, sc, parts, predictors, compute_traces, host_overhead)
    predictors, contention_info = with_contention(st, run_id, meta, sc, plan, predictors, overhead,
                                                  holdout=contention, seed=int(meta.get("seed", 0)))
    from specedge.fidelity.job import with_job_grid

    predictors, job_info = with_job_grid(st, sc, predictors, overhead) if job_grid else (predictors, {"source": "off"})
    measured = task_rows["completion_s"].to_numpy(np.float64)
    measured_ttft = task_rows["first_token_s"].to_numpy(np.float64)
    meas_makespan = float(measured.max())
    rows, per_task = [], []

    def add(name, pred, pred_ttft, rounds_match, note):
        err = _errors(pred, measured)
        ks = ks_2samp(pred, measured)
        rows.append({
            "predictor": name,
            "median_task_error": float(np.median(err)),
            "p90_task_error": float(np.percentile(err, 90)),
            "makespan_error": float(abs(pred.max() - meas_makespan) / meas_makespan),
            "mean_signed_task_error": float(np.mean((pred - measured) / measured)),
            "median_ttft_error": float(np.median(_errors(pred_ttft, measured_ttft))),
            "predicted_makespan_s": float(pred.max()),
            "measured_makespan_s": meas_makespan,
            "rounds_match": bool(rounds_match),
            "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
            "note": note,
        })
        per_task.append(pd.DataFrame({"task": task_rows["task"].to_numpy(), "predictor": name,
                                      "batch": task_rows["batch"].to_numpy(), "measured_s": measured,
                                      "predicted_s": pred, "error": err}))

    ready = None
    for p in predictors:
        res = evaluate(replace(sc, draft_compute=p.draft, verify_compute=p.verify), plan, seed=int(meta.get("seed", 0)))
        t = res.tasks
        if ready is None:
            ready = res.prepared.ready_s
            gap = np.abs(t["upload_s"].to_numpy() - task_rows["upload_s"].to_numpy()).max()
            if gap > 1e-9:
                raise InputError(f"run {run_id!r}: the rebuilt scenario's upload times differ from the run's by "
                                 f"{gap:.3g} s; the run cannot be replayed faithfully")
        match = np.array_equal(t["rounds"].to_numpy(), task_rows["round"].to_numpy())
        add(p.name, t["completion_s"].to_numpy(np.float64), t["first_token_s"].to_numpy(np.float64), match, p.note)
    stage = built(("stage_times", *version_key(st, run_id), plan.mode, float(sc.params.fronthaul_delay_s),
                   ready.tobytes()),  # the same for both acceptances of a run: once per run version; a copy out
                  lambda: stage_time_completion(parts["job"], task_rows, ready, plan.mode,
                                                sc.params.fronthaul_delay_s)).copy()
    add(STAGE_TIMES, stage, np.full(k, np.nan), True, "diagnostic: measured job durations through the recursion")
    diagnostics = {
        "acceptance": acceptance,
        "fronthaul_delay_s": sc.params.fronthaul_delay_s,
        "pipe_measured_before_run": meta.get("pipe"),
        "compute_traces": {"draft": traces[0], "verify": traces[1]},
        "grid_coverage": coverage,
        **({"pass_errors": pass_errors(parts["pass"], predictors).to_dict(orient="records")}
           if pass_diagnostics else {}),
        **built(("overheads", store_key(st), run_id, info.checksum),  # once per run version
                lambda: overheads(parts["job"], parts["pass"])),
        "upload_arrival_lag_median_s": float(np.median(task_rows["ready_s"] - task_rows["upload_s"])),
        "core_load": (meta.get("cpu_usage") or {}).get("cores"),
        "host_overhead": overhead_info,
        "contention": contention_info,
        "job_grid": job_info,
        "speed_probe": probe_info,
        "foreign_work": meta.get("foreign_work"),
    }
    noisy, foreign = run_noise(meta)
    run_summary = {
        "pair": meta.get("pair"),
        "plan": {"batch_sizes": [len(b) for b in plan.batches], "speculation_length": list(plan.speculation_length),
                 "mode": plan.mode},
        "num_tasks": k,
        "temperature": meta.get("temperature"),
        "load_average_before": meta.get("load_average_before"),
        "date": meta.get("date"),
        "noisy": noisy,
        "foreign_work": foreign,
        "plan_sha256": meta.get("plan_sha256"),
        "policy": meta.get("policy") or (meta.get("plan") or {}).get("meta", {}).get("policy"),
    }
    return FidelityResult(run_id=run_id, table=pd.DataFrame(rows), tasks=pd.concat(per_task, ignore_index=True),
                          diagnostics=diagnostics, run=run_summary)
