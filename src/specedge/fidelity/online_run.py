"""Predict a real online run with the online simulator and compare (``specedge fidelity RUN_ID`` on an online run).

The prediction (:func:`compare_online_run`):

1. the workload is rebuilt from the run itself: its arrival times (metadata ``online.arrival_s``), each request's
   input and output tokens and user distance, in arrival order; the scenario from the run's parameters
   (:func:`specedge.fidelity.compare.run_scenario`), so the simulator's upload ends equal the run's scheduled
   ones (checked to 1e-9 s);
2. acceptance: the run's own per-request accepted counts, request k's r-th verification round in the run being
   its round r in the simulator (``feed=`` :class:`specedge.online.engine.MatrixFeed`; at fixed l a round
   commits min(G, l) + 1 = the run's accepted + 1), so every remaining difference is timing and batching;
3. compute: the same predictors as a static run (:func:`specedge.fidelity.predictors.build_predictors` on the
   compute traces the run names), each with the per-job host overhead fitted as for static runs
   (:func:`specedge.fidelity.compare.host_overheads`);
4. the online engine (``prepare``/``advance``/``result``) with the run's policy, l, ``num_slots``,
   ``max_batch_size`` and uplink rule.

Errors, per predictor, as fractions: per request |predicted − measured| / measured of the end-to-end latency
(completion − arrival; median and p90 as ``median_task_error``/``p90_task_error``, the static JSON names) and of
the TTFT (first token − arrival; ``median_ttft_error``); ``makespan_error`` on the last completion since t0; the
two-sample KS test of predicted against measured e2e latencies; ``rounds_match`` (the simulator took as many
rounds per request as the run) and the mean verify batch size predicted vs measured (batching fidelity).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from specedge.errors import InputError


def latest_static_run(store=None) -> str:
    """The latest ``run`` dataset that is not an online run (what plan-based consumers compare)."""
    from specedge.errors import DatasetNotFoundError
    from specedge.traces.store import open_store

    st = store if hasattr(store, "list") else open_store(store)
    runs = [i for i in st.list() if i.kind == "run" and not i.metadata.get("online")]
    if not runs:
        raise DatasetNotFoundError(f"no static run dataset in the store {st.root}")
    return max(runs, key=lambda i: (i.created, i.id)).id


def online_workload(meta: dict, task_rows: pd.DataFrame):
    """The run's workload (request order = task order = arrival order)."""
    from specedge.online.workload import Workload

    online = meta.get("online") or {}
    arrival = np.asarray(online.get("arrival_s", []), dtype=np.float64)
    dist = np.asarray((meta.get("scenario") or {}).get("distance_m", []), dtype=np.float64)
    if arrival.size != len(task_rows) or dist.size != len(task_rows):
        raise InputError(f"run {meta.get('dataset')!r}: metadata lacks one arrival time and distance per request")
    return Workload(arrival, task_rows["input_tokens"].to_numpy(np.int64),
                    task_rows["output_tokens"].to_numpy(np.int64), dist, name=f"{meta.get('dataset')} (recorded)")


def accepted_matrix(rounds: pd.DataFrame, num_requests: int) -> np.ndarray:
    """g[k, r]: accepted drafts of request k in its r-th round of the run (rounds ordered by the slot's job)."""
    ordered = rounds.sort_values(["task", "round"], kind="stable")
    own = ordered.groupby("task").cumcount().to_numpy()
    tasks = ordered["task"].to_numpy(np.int64)
    if np.unique(tasks).size != num_requests:
        raise InputError(f"the run's rounds cover {np.unique(tasks).size} requests, it has {num_requests}")
    g = np.zeros((num_requests, int(own.max()) + 1), dtype=np.int64)
    g[tasks, own] = ordered["accepted"].to_numpy(np.int64)
    return g


def stage_time_times(parts: dict, task_rows: pd.DataFrame, fronthaul_delay_s: float = 0.0):
    """(first token, completion) per request from the pipeline recursion fed the run's *measured* job durations
    and its own batches (who was in which job), or None when the job records do not cover every round.

    Draft jobs in the order they ran; job (m, n) starts at max(SBS free, the slot's previous verify end + f when
    n > 0 (the draft node waits for it), its joiners' upload ends); verify end = max(draft end + f, MBS free) +
    the measured verify duration. What is left is the recursion, the pipe and scheduling gaps (as the static
    ``stage-times`` row)."""
    jobs, rounds = parts["job"], parts["round"]
    d = jobs[jobs["node"] == "draft"].set_index(["batch", "round"])
    v = jobs[jobs["node"] == "verify"].set_index(["batch", "round"])
    keys = rounds.groupby(["batch", "round"]).size().index
    if not (keys.isin(d.index).all() and keys.isin(v.index).all()) or d.index.duplicated().any():
        return None
    upload = task_rows.set_index("task")["upload_s"]
    first_job = rounds.sort_values("round").groupby("task")[["batch", "round"]].first()
    joiners_ready = upload.reindex(first_job.index).groupby([first_job["batch"], first_job["round"]]).max()
    f = float(fronthaul_delay_s)
    sbs = mbs = 0.0
    v_end: dict = {}
    for m, n in d.loc[keys].sort_values("start_s").index:
        start = max(sbs, float(joiners_ready.get((m, n), 0.0)))
        if n > 0 and (m, n - 1) in v_end:
            start = max(start, v_end[(m, n - 1)] + f)
        sbs = start + float(d.at[(m, n), "end_s"] - d.at[(m, n), "start_s"])
        mbs = max(sbs + f, mbs) + float(v.at[(m, n), "end_s"] - v.at[(m, n), "start_s"])
        v_end[(m, n)] = mbs
    ends = rounds.assign(v=[v_end[(m, n)] for m, n in zip(rounds["batch"], rounds["round"])])
    by_task = ends.sort_values("round").groupby("task")["v"]
    return by_task.first().reindex(task_rows["task"]).to_numpy(), by_task.last().reindex(task_rows["task"]).to_numpy()


def simulate_run(sc, workload, meta: dict, g: np.ndarray, seed: int = 0):
    """The online engine on the run's workload and settings, fed the run's accepted counts."""
    from specedge.online.engine import MatrixFeed, OnlineConfig, advance, prepare, result
    from specedge.online.policies import get_online_policy

    online = meta["online"]
    l = int(online["speculation_length"])
    c = online.get("config") or {}
    config = OnlineConfig(num_slots=int(c.get("num_slots", 2)), max_batch_size=int(c.get("max_batch_size", 32)),
                          uplink_rule=c.get("uplink_rule", "equal-share"), max_speculation_length=max(10, l))
    policy = get_online_policy(online.get("policy", "fcfs"), speculation_length=l)
    state = prepare(sc, workload, policy, config, seed=seed, feed=MatrixFeed(g))
    advance(state)
    return result(state)


def compare_online_run(run_id: str, *, store=None, predictors=None, compute_traces=None, fronthaul="scenario",
                       host_overhead="pair"):
    """Predict online run ``run_id`` with each compute predictor; a :class:`FidelityResult` (static contract)."""
    from scipy.stats import ks_2samp

    from specedge.fidelity.compare import (
        STAGE_TIMES,
        FidelityResult,
        fronthaul_of,
        run_predictors,
        overheads,
        pass_errors,
        run_noise,
        run_scenario,
    )
    from specedge.serve.dataset import split_records
    from specedge.traces.store import open_store

    st = store if hasattr(store, "read") else open_store(store)
    meta = st.info(run_id).metadata
    if not meta.get("online"):
        raise InputError(f"run {run_id!r} is not an online run")
    frame = st.read(run_id)
    parts = split_records(frame)
    task_rows = parts["task"].sort_values("task").reset_index(drop=True)
    n = len(task_rows)
    w = online_workload({**meta, "dataset": run_id}, task_rows)
    g = accepted_matrix(parts["round"], n)
    sc = run_scenario({**meta, "dataset": run_id}, task_rows, "expected", store=st,
                      fronthaul_delay_s=fronthaul_of(meta, fronthaul))
    predictors, traces, coverage, overhead, overhead_info, _ = run_predictors(
        st, run_id, meta, sc, parts, predictors, compute_traces, host_overhead)
    arrival = w.arrival_s
    meas_e2e = task_rows["completion_s"].to_numpy(np.float64) - arrival
    meas_ttft = task_rows["first_token_s"].to_numpy(np.float64) - arrival
    meas_makespan = float(task_rows["completion_s"].max())
    jobs = parts["job"]
    meas_batch = float(jobs.loc[jobs["node"] == "verify", "batch_size"].mean())
    rows, per_task = [], []

    def add(name, first, done, rounds_match, batch, note):
        e2e, ttft = done - arrival, first - arrival
        err = np.abs(e2e - meas_e2e) / meas_e2e
        ks = ks_2samp(e2e, meas_e2e)
        rows.append({
            "predictor": name, "median_task_error": float(np.median(err)),
            "p90_task_error": float(np.percentile(err, 90)),
            "makespan_error": float(abs(done.max() - meas_makespan) / meas_makespan),
            "mean_signed_task_error": float(np.mean((e2e - meas_e2e) / meas_e2e)),
            "median_ttft_error": float(np.median(np.abs(ttft - meas_ttft) / meas_ttft)),
            "predicted_makespan_s": float(done.max()), "measured_makespan_s": meas_makespan,
            "rounds_match": bool(rounds_match), "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "predicted_mean_batch_size": batch, "measured_mean_batch_size": meas_batch, "note": note,
        })
        per_task.append(pd.DataFrame({"task": task_rows["task"].to_numpy(), "predictor": name,
                                      "batch": task_rows["batch"].to_numpy(), "measured_s": meas_e2e,
                                      "predicted_s": e2e, "error": err, "measured_ttft_s": meas_ttft,
                                      "predicted_ttft_s": ttft}))

    for p in predictors:
        res = simulate_run(replace(sc, draft_compute=p.draft, verify_compute=p.verify), w, meta, g,
                           seed=int(meta.get("seed", 0)))
        gap = float(np.abs(res.upload_end_s - task_rows["upload_s"].to_numpy()).max())
        if gap > 1e-9:
            raise InputError(f"run {run_id!r}: the simulator's upload ends differ from the run's by {gap:.3g} s; "
                             "the run cannot be predicted faithfully")
        add(p.name, res.first_token_s, res.completion_s, np.array_equal(res.rounds, task_rows["round"].to_numpy()),
            float(res.member_rounds / max(res.jobs, 1)), p.note)
    staged = stage_time_times(parts, task_rows, sc.params.fronthaul_delay_s)
    if staged is not None:
        add(STAGE_TIMES, staged[0], staged[1], True, meas_batch,
            "diagnostic: measured job durations and the run's own batches through the recursion")
    noisy, foreign = run_noise(meta)
    online = meta["online"]
    diagnostics = {
        "acceptance": "observed", "fronthaul_delay_s": sc.params.fronthaul_delay_s,
        "pipe_measured_before_run": meta.get("pipe"),
        "compute_traces": {"draft": traces[0], "verify": traces[1]}, "grid_coverage": coverage,
        "pass_errors": pass_errors(parts["pass"], predictors).to_dict(orient="records"),
        **overheads(jobs, parts["pass"]),
        "upload_arrival_lag_median_s": float(np.median(task_rows["ready_s"] - task_rows["upload_s"])),
        "core_load": (meta.get("cpu_usage") or {}).get("cores"), "host_overhead": overhead_info,
        "foreign_work": meta.get("foreign_work"),
        "stage_times": "computed" if staged is not None else "not computed: job records do not cover every round",
    }
    summary = {
        "pair": meta.get("pair"), "online": True, "num_tasks": n, "temperature": meta.get("temperature"),
        "plan": {"batch_sizes": [int(online["config"].get("max_batch_size", 0))],
                 "speculation_length": [int(online["speculation_length"])], "mode": "sd-pipeline"},
        "policy": online.get("policy"), "workload": online.get("workload"), "config": online.get("config"),
        "load_average_before": meta.get("load_average_before"), "date": meta.get("date"),
        "noisy": noisy, "foreign_work": foreign,
    }
    return FidelityResult(run_id=run_id, table=pd.DataFrame(rows), tasks=pd.concat(per_task, ignore_index=True),
                          diagnostics=diagnostics, run=summary)
