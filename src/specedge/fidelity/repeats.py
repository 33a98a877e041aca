"""Fidelity over many runs: repeats of one plan (the noise floor), prediction before running, and rank fidelity.

Runs are grouped by *scenario* (pair, preset, K, seed, temperature, overrides: the same tasks and prompts) and,
within a scenario, by *schedule* (:func:`specedge.fidelity.schedule.schedule_sha256`: batches, l per batch,
bandwidths, mode, with one-batch pipelined = serial), not by policy name or plan hash: the runs of one schedule are
repeats of one plan, whichever policies produced it; such a pooled plan is labelled with all of them
("dp-refined = sd-serial").

Within a scenario, runs are also grouped by *session*: the compute grid they name (:func:`session_label`). The
machine's speed drifts between sessions (:data:`MAX_GRID_AGE_S`), so a plan's noise floor, its errors and rank
fidelity are computed within one session; a run recorded more than ``MAX_GRID_AGE_S`` after its grid is *stale*
and, like a noisy run, left out of headline numbers while the plan has fresh quiet runs (still listed).

Noise floor of a plan measured R >= 2 times (per-task completion m_rk, makespan M_r = max_k m_rk), the error one
repeat makes against the repeats' mean, in the same units as a prediction error:

    task_spread     = median over r, k of |m_rk − mean_r m_rk| / mean_r m_rk
    makespan_spread = median over r of |M_r − mean M| / mean M        (and makespan_cv = std M / mean M, ddof 1)

Prediction before running: replay with the pair's *recorded* acceptance trace (tasks assigned to recorded requests
by replay's seeded rule) instead of the run's own rounds, so acceptance is predicted too; its errors are reported
per run and as the median over a plan's repeats.

Rank fidelity of a scenario with P >= 2 distinct plans (schedules): predicted makespan of each plan (median over
its repeats) against the measured one (median over its repeats), over the plans of one session (the one with
the most plans not left out as stale, then the latest); Kendall's τ (:func:`scipy.stats.kendalltau`, τ-b)
between the two and whether replay's best plan (smallest predicted makespan) is the measured best. Quiet runs only
when a plan has any; a plan measured only under noise is used and flagged. A scenario with fewer than
:data:`MIN_DISTINCT_PLANS` distinct plans is flagged (``distinct_plans``, ``too_few_plans``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from specedge.fidelity.compare import STAGE_TIMES, compare_run, named_traces, run_noise
from specedge.fidelity.schedule import joined_label, run_schedule

#: The compute predictor rank fidelity and headline numbers use unless told otherwise.
RANK_PREDICTOR = "measured"
#: Distinct plans (schedules) per pair that rank fidelity asks for (issue 10, item 4).
MIN_DISTINCT_PLANS = 6
#: [A] A run is *stale* when it was recorded more than this long after the compute grid it names (the later of its
#: two traces): its prediction then mixes the machine's drift into the model's error. On the project's 2-core VM the
#: same quiet plan ran 35 % faster at 14:40 than at 10:17 (stdlib ``no-batching``: 10.96 s against 6.94 / 7.06 s),
#: so a grid only describes the runs measured right after it (docs/fidelity.md, "Sessions").
MAX_GRID_AGE_S = 1800.0


def scenario_key(meta: dict) -> str:
    """A readable key of the tasks a run served (same key = same tasks, prompts and sampler)."""
    scen = meta.get("scenario") or {}
    over = {k: v for k, v in sorted((scen.get("overrides") or {}).items()) if "compute" not in k}
    text = f"{scen.get('preset', 'paper')} K={scen.get('num_tasks')} seed={scen.get('seed')} " \
           f"T={meta.get('temperature')}"
    return text + (f" {json.dumps(over, sort_keys=True)}" if over else "")


def plan_label(meta: dict) -> str:
    """The plan's policy name, or its shape ("plan 4×6 l=6", "plan 2×4 l=2 sd-serial") when it came from a plan
    file."""
    plan = meta.get("plan") or {}
    policy = meta.get("policy") or (plan.get("meta") or {}).get("policy")
    if policy:
        return str(policy)
    sizes = [len(b) for b in plan.get("batches", [])]
    ls = plan.get("speculation_length", [])
    ls = sorted(set(ls if isinstance(ls, list) else [ls]))
    batching = f"{len(sizes)}×{sizes[0]}" if sizes and len(set(sizes)) == 1 else "+".join(map(str, sizes))
    mode = plan.get("mode", "sd-pipeline")
    return f"plan {batching} l={','.join(map(str, ls))}" + ("" if mode == "sd-pipeline" else f" {mode}")


def session_label(traces: tuple) -> str:
    """A short name of the compute grid a run names (its session): the grid's timestamp when the trace ids carry
    one ("20261130T101516"), else the ids; "(newest)" for a run that names none."""
    import re

    ids = [t for t in traces if t]
    if not ids:
        return "(newest)"
    stamps = sorted({m.group(1) for t in ids for m in [re.search(r"(\d{8}T\d{6})", t)] if m})
    return ",".join(stamps) if stamps else " + ".join(ids)


def _seconds_between(later, earlier) -> float:
    try:
        return float((pd.Timestamp(later) - pd.Timestamp(earlier)).total_seconds())
    except (TypeError, ValueError):
        return float("nan")


def run_index(store, run_ids=None, *, max_grid_age_s: float = MAX_GRID_AGE_S) -> pd.DataFrame:
    """One row per run: run, pair, scenario, plan_sha256, schedule (hash), plan (label), noisy, foreign_work,
    makespan_s, created, session (:func:`session_label` of the grid it names), grid_age_s (run recorded minus
    grid recorded) and stale (grid_age_s > ``max_grid_age_s``)."""
    rows = []
    wanted = None if run_ids is None else set(run_ids)
    infos = list(store.list())
    created = {i.id: i.created for i in infos if i.kind == "compute"}
    for i in infos:
        if i.kind != "run" or i.metadata.get("online") or (wanted is not None and i.id not in wanted):
            continue
        meta = i.metadata
        noisy, foreign = run_noise(meta)
        traces = named_traces(meta)
        ages = [_seconds_between(i.created, created[t]) for t in traces if t in created]
        age = min(ages) if ages else float("nan")
        rows.append({"run": i.id, "pair": meta.get("pair"), "scenario": scenario_key(meta),
                     "plan_sha256": meta.get("plan_sha256"), "schedule": run_schedule(meta),
                     "plan": plan_label(meta), "noisy": noisy,
                     "foreign_work": foreign, "makespan_s": meta.get("makespan_s"), "created": i.created,
                     "session": session_label(traces), "grid_age_s": age,
                     "stale": bool(np.isfinite(age) and age > max_grid_age_s)})
    cols = ["run", "pair", "scenario", "plan_sha256", "schedule", "plan", "noisy", "foreign_work", "makespan_s",
            "created", "session", "grid_age_s", "stale"]
    return pd.DataFrame(rows, columns=cols).sort_values(["pair", "scenario", "plan", "run"]).reset_index(drop=True)


def usable_runs(part: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The runs a headline number uses, and which: quiet runs with a fresh grid ("fresh"), else quiet ones
    ("stale grid"), else all ("noisy")."""
    quiet = part[~part["noisy"]]
    fresh = quiet[~quiet["stale"]]
    if len(fresh):
        return fresh, "fresh"
    return (quiet, "stale grid") if len(quiet) else (part, "noisy")


def noise_floor(completions: np.ndarray) -> dict:
    """Spread of R repeats of one plan from their per-task completion times (R x K; see the module docstring)."""
    m = np.asarray(completions, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2:
        return {"repeats": int(m.shape[0]) if m.ndim == 2 else 0, "task_spread": float("nan"),
                "makespan_spread": float("nan"), "makespan_cv": float("nan")}
    mean = m.mean(axis=0)
    spans = m.max(axis=1)
    return {"repeats": int(m.shape[0]),
            "task_spread": float(np.median(np.abs(m - mean) / mean)),
            "makespan_spread": float(np.median(np.abs(spans - spans.mean()) / spans.mean())),
            "makespan_cv": float(spans.std(ddof=1) / spans.mean())}


def run_completions(store, run_id: str, known: np.ndarray | None = None) -> np.ndarray:
    """``run_id``'s task completion times (s, in task order, read-only), read from its ``task`` records once per
    run version (:func:`specedge.fidelity.memo.built`); ``known``: the same array computed elsewhere (a report's
    worker), taken instead of reading the run."""
    from specedge.fidelity.memo import built, version_key
    from specedge.serve.dataset import split_records

    def completions():
        if known is not None:
            out = np.array(known, dtype=np.float64)
        else:
            tasks = split_records(store.read(run_id))["task"].sort_values("task")
            out = tasks["completion_s"].to_numpy(np.float64).copy()
        out.setflags(write=False)  # shared
        return out

    return built(("task_completion", *version_key(store, run_id)), completions)


def plan_noise_floor(store, run_ids) -> dict:
    """:func:`noise_floor` of the given runs of one plan, from their task completions (:func:`run_completions`)."""
    rows = [run_completions(store, rid) for rid in run_ids]
    if len({r.size for r in rows}) > 1:
        raise ValueError("the repeats of a plan served different numbers of tasks")
    return noise_floor(np.vstack(rows)) if rows else noise_floor(np.zeros((0, 0)))


def recorded_acceptance_id(store, meta: dict) -> str | None:
    """The pair's latest recorded acceptance dataset at the run's temperature, or None."""
    found = [i for i in store.list() if i.kind == "acceptance" and i.source == "recorded"
             and i.metadata.get("draft_model") == meta.get("draft_model")
             and i.metadata.get("target_model") == meta.get("target_model")
             and float(i.metadata.get("temperature", -1)) == float(meta.get("temperature") or 0.0)]
    return max(found, key=lambda i: (i.created, i.id)).id if found else None


def predict_before_running(run_id: str, *, store, host_overhead="pair", pass_diagnostics: bool = True):
    """:func:`compare_run` with the pair's recorded acceptance (None when the pair has no recorded trace);
    ``pass_diagnostics``: passed on (the study reads only the table, so it leaves the pass errors out)."""
    meta = store.info(run_id).metadata
    acc = recorded_acceptance_id(store, meta)
    if acc is None:
        return None
    return compare_run(run_id, store=store, acceptance=acc, host_overhead=host_overhead,
                       pass_diagnostics=pass_diagnostics)


def _open(store):
    from specedge.traces.store import open_store

    return store if hasattr(store, "read") else open_store(store)


def study_results(store=None, run_ids=None, **kwargs) -> tuple[dict, dict, dict]:
    """(results, recorded, completions) of a :class:`FidelityStudy` of ``store`` (a path, picklable): what a report
    computes in a worker process while it writes other sections, then hands to ``FidelityStudy(precomputed=...)``;
    completions (:func:`run_completions` per run) spare the main process reading every run again for the noise
    floors."""
    study = FidelityStudy(store, run_ids, **kwargs)
    return study.results, study.recorded, {rid: run_completions(study.store, rid) for rid in study.index["run"]}


class FidelityStudy:
    """Every run of a store compared once (observed acceptance) and once before running (recorded acceptance),
    cached, with the per-plan and per-scenario views of the module docstring."""

    def __init__(self, store=None, run_ids=None, *, host_overhead="pair", recorded: bool = True,
                 precomputed: tuple | None = None, **compare):
        """``compare``: further keyword arguments of :func:`compare_run` (e.g. ``predictors``). ``precomputed``:
        the (results, recorded[, completions]) of :func:`study_results` on the same store, run ids and settings
        (computed in another process, say), taken as they are."""
        from specedge.fidelity.memo import snapshot

        self.store = snapshot(_open(store))  # each dataset listed, looked up and decoded once (fidelity.memo)
        self.index = run_index(self.store, run_ids)
        self.host_overhead = host_overhead
        if precomputed is not None:
            self.results, self.recorded, *completions = precomputed
            missing = sorted(set(self.index["run"]) - set(self.results))
            if missing:
                raise ValueError(f"precomputed fidelity results lack run(s) {missing[:3]}")
            for rid, known in (completions[0] if completions else {}).items():
                run_completions(self.store, rid, known)
            return
        self.results = {rid: compare_run(rid, store=self.store, host_overhead=host_overhead, **compare)
                        for rid in self.index["run"]}
        self.recorded = {}
        if recorded:
            for rid in self.index["run"]:
                res = predict_before_running(rid, store=self.store, host_overhead=host_overhead,
                                             pass_diagnostics=False)  # only .table is read
                if res is not None:
                    self.recorded[rid] = res

    # ------------------------------------------------------------------------------------------- per run
    def run_rows(self, predictor: str | None = None) -> pd.DataFrame:
        """One row per run: its best (or the named) predictor's errors, KS, the recorded-acceptance errors."""
        rows = []
        for row in self.index.itertuples():
            res = self.results[row.run]
            name = predictor or res.best()
            if name not in set(res.table["predictor"]):
                from specedge.errors import InputError

                raise InputError(f"predictor {name!r} was not evaluated for run {row.run!r} (it has "
                                 f"{', '.join(res.table['predictor'])}); measured-blend needs alone grids, "
                                 "measured-job job-shaped grids (scripts/measure_fidelity.py --alone-grids / "
                                 "--job-grids), measured-probed a run and grids recorded with the speed probe")
            t = res.table.set_index("predictor").loc[name]
            rec = self.recorded.get(row.run)
            r = rec.table.set_index("predictor").loc[name] if rec is not None else None
            rows.append({"run": row.run, "pair": row.pair, "scenario": row.scenario, "plan": row.plan,
                         "plan_sha256": row.plan_sha256, "schedule": row.schedule, "noisy": row.noisy,
                         "foreign_work": row.foreign_work, "session": row.session, "grid_age_s": row.grid_age_s,
                         "stale": row.stale,
                         "predictor": name, "median_task_error": t["median_task_error"],
                         "p90_task_error": t["p90_task_error"], "makespan_error": t["makespan_error"],
                         "ks_statistic": t["ks_statistic"], "ks_pvalue": t["ks_pvalue"],
                         "predicted_makespan_s": t["predicted_makespan_s"],
                         "measured_makespan_s": t["measured_makespan_s"],
                         "recorded_makespan_error": np.nan if r is None else r["makespan_error"],
                         "recorded_median_task_error": np.nan if r is None else r["median_task_error"],
                         "recorded_predicted_makespan_s": np.nan if r is None else r["predicted_makespan_s"],
                         "stage_times_median_task_error": res.table.set_index("predictor").loc[
                             STAGE_TIMES, "median_task_error"]})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------------------------------ per plan
    def plan_rows(self, predictor: str | None = None) -> pd.DataFrame:
        """One row per (pair, scenario, session, schedule): repeats (quiet of all; stale of those), the noise floor
        of the used repeats (:func:`usable_runs`; all when fewer than two), and the median over the used repeats of
        each error; ``plan`` names every policy whose runs were pooled ("dp-refined = sd-serial"), ``plan_sha256``
        their plan hashes. A session is one compute grid and the runs measured with it: a plan's floor and errors
        never mix sessions, whose machine speed may differ (:data:`MAX_GRID_AGE_S`)."""
        runs = self.run_rows(predictor)
        rows = []
        keys = ["pair", "scenario", "session", "schedule"]
        for (pair, scen, session, sched), part in runs.groupby(keys, sort=True, dropna=False):
            quiet = part[~part["noisy"]]
            used, status = usable_runs(part)
            floor_runs = used if len(used) >= 2 else part
            floor = plan_noise_floor(self.store, list(floor_runs["run"]))
            rows.append({"pair": pair, "scenario": scen, "session": session, "plan": joined_label(part["plan"]),
                         "plan_sha256": ",".join(sorted(set(map(str, part["plan_sha256"])))),
                         "schedule_sha256": sched,
                         "repeats": len(part), "quiet_repeats": len(quiet), "noisy": len(quiet) == 0,
                         "stale_repeats": int(quiet["stale"].sum()), "runs_used": status,
                         "task_spread": floor["task_spread"], "makespan_spread": floor["makespan_spread"],
                         "makespan_cv": floor["makespan_cv"], "floor_from_noisy": bool(floor_runs["noisy"].any()),
                         "floor_from_stale": bool(floor_runs["stale"].any()),
                         **{c: float(used[c].median()) for c in
                            ("median_task_error", "makespan_error", "ks_statistic", "ks_pvalue",
                             "recorded_makespan_error", "recorded_median_task_error", "predicted_makespan_s",
                             "measured_makespan_s", "recorded_predicted_makespan_s")},
                         "run_ids": list(used["run"])})
        out = pd.DataFrame(rows)
        if len(out):  # two schedules with one label (a policy that changed between runs): tell them apart
            twin = out.duplicated(["pair", "scenario", "session", "plan"], keep=False)
            out.loc[twin, "plan"] = out.loc[twin, "plan"] + " [" + out.loc[twin, "schedule_sha256"].str[:8] + "]"
        return out

    # -------------------------------------------------------------------------------------------- rank
    def rank(self, predictor: str = RANK_PREDICTOR) -> list[dict]:
        """Per pair, the scenario with the most distinct plans: the contract of ``specedge fidelity --rank --json``
        (a plan = a schedule; runs of one schedule from several policies are pooled), with the measurement's own
        rank noise (:func:`specedge.fidelity.ranknoise.rank_noise`: ``repeat_tau``, ``kendall_tau_resolved`` over
        the plan pairs the quiet repeats resolve; :func:`~specedge.fidelity.ranknoise.best_choice`: ``regret`` of
        replay's best plan, ``best_gap`` and whether the repeats resolve them)."""
        from scipy.stats import kendalltau

        from specedge.fidelity.ranknoise import best_choice, rank_noise

        plans = self.plan_rows(predictor)
        runs = self.run_rows(predictor).set_index("run")
        index = getattr(self, "index", None)  # absent only in a study built by hand (tests): runs keep their order
        created = dict(zip(index["run"], index["created"])) if index is not None else {}
        out = []
        for pair, part in plans.groupby("pair", sort=True):
            ranked = part[part["runs_used"] != "stale grid"]
            ranked = ranked if len(ranked) else part
            counts = ranked.groupby(["scenario", "session"]).size().reset_index(name="n")
            best = counts.sort_values(["n", "session"], ascending=False).iloc[0]  # most plans, then latest grid
            scen, session = best["scenario"], best["session"]
            mine = part[(part["scenario"] == scen) & (part["session"] == session)]
            group = ranked[(ranked["scenario"] == scen) & (ranked["session"] == session)]
            group = group.sort_values("measured_makespan_s")
            left_out = sorted(set(mine["plan"]) - set(group["plan"]))
            pred = group["predicted_makespan_s"].to_numpy()
            meas = group["measured_makespan_s"].to_numpy()
            rec = group["recorded_predicted_makespan_s"].to_numpy()
            tau = float(kendalltau(pred, meas).statistic) if len(group) >= 2 else float("nan")
            tau_rec = (float(kendalltau(rec, meas).statistic) if len(group) >= 2 and np.isfinite(rec).all()
                       else float("nan"))
            entry = {
                "pair": pair, "scenario": scen, "session": session, "distinct_plans": int(len(group)),
                "left_out_stale_grid": left_out,
                "too_few_plans": bool(len(group) < MIN_DISTINCT_PLANS),
                "plans": [{"policy": r.plan, "run_ids": list(r.run_ids), "schedule_sha256": r.schedule_sha256,
                           "predicted_makespan_s": float(r.predicted_makespan_s),
                           "measured_makespan_s": float(r.measured_makespan_s),
                           "predicted_from_recorded_acceptance_s": _num(r.recorded_predicted_makespan_s),
                           "noisy": bool(r.noisy)} for r in group.itertuples()],
                "kendall_tau": _num(tau),
                "same_best": bool(len(group) and np.argmin(pred) == np.argmin(meas)),
                "kendall_tau_recorded_acceptance": _num(tau_rec),
                "same_best_recorded_acceptance": (bool(np.argmin(rec) == np.argmin(meas))
                                                  if len(group) and np.isfinite(rec).all() else None),
                "predictor": predictor, "acceptance": "observed (run's own rounds)",
                "noisy_plans": int(group["noisy"].sum()),
            }
            # the measurement's own rank noise over each plan's quiet repeats, and what replay's choice of best costs
            # (specedge.fidelity.ranknoise)
            quiet = [[(created.get(rid, 0), runs.at[rid, "measured_makespan_s"]) for rid in r.run_ids
                      if not runs.at[rid, "noisy"]] for r in group.itertuples()]
            entry.update(rank_noise(quiet, pred))
            entry.update(best_choice(quiet, pred, meas, list(group["plan"])))
            out.append(entry)
        return out


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def rank_fidelity(store=None, *, predictor: str = RANK_PREDICTOR, host_overhead="pair") -> list[dict]:
    """``specedge fidelity --rank --json``: :meth:`FidelityStudy.rank` over every run in the store."""
    return FidelityStudy(store, host_overhead=host_overhead).rank(predictor)


def noise_floor_of(store, run_id: str) -> dict:
    """The noise floor of ``run_id``'s schedule (:func:`noise_floor`) over its repeats in the store: the quiet ones
    when at least two are quiet, else all; with the run ids used and whether any of them is noisy."""
    st = _open(store)
    index = run_index(st)
    me = index[index["run"] == run_id]
    if me.empty:
        return {"repeats": 0, "run_ids": []}
    row = me.iloc[0]
    same = index[(index["pair"] == row["pair"]) & (index["scenario"] == row["scenario"])
                 & (index["session"] == row["session"]) & (index["schedule"] == row["schedule"])]
    used, _ = usable_runs(same)
    used = used if len(used) >= 2 else same
    floor = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for k, v in plan_noise_floor(st, list(used["run"])).items()}
    return {**floor, "run_ids": list(used["run"]), "session": row["session"],
            "from_noisy_runs": bool(used["noisy"].any()), "from_stale_grid": bool(used["stale"].any())}
