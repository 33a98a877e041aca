"""asv track_ benchmarks: how well replay predicts the real runs shipped in the repository's traces/ (the latest run,
every run, and the issue-10 protocol: quiet runs only, noise floor, prediction before running, rank fidelity).

Each benchmark replays that run (``specedge fidelity``: observed acceptance, the run's compute traces) with one
compute predictor and reports an error as a fraction, so a change to the latency model, the predictors or the
replay that makes predictions worse shows up in asv's history. A store with no run skips the suite.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's trace store (the shipped runs), independent of where asv installs specedge.
STORE = Path(__file__).resolve().parents[1] / "traces"
PREDICTORS = ["affine", "roofline", "measured"]
#: Runs the whole-store suites compare (None: every run in the store); tests/test_asv.py sets a few so that its
#: one-call run of every suite stays short.
RUN_IDS = None


class FidelityLatestRun:
    """Per predictor: median and p90 per-task latency error and makespan error of the latest shipped run."""

    params = [PREDICTORS]
    param_names = ["predictor"]
    timeout = 600

    def setup_cache(self):
        from specedge.errors import DatasetNotFoundError
        from specedge.fidelity import compare_run

        from specedge.fidelity.online_run import latest_static_run

        try:
            result = compare_run(latest_static_run(STORE), store=STORE)  # online runs are tracked elsewhere
        except DatasetNotFoundError as exc:  # no shipped run: nothing to track
            raise NotImplementedError(str(exc)) from None
        return {"run": result.run_id, "table": result.table.set_index("predictor").to_dict(orient="index")}

    def track_median_task_error(self, cache, predictor):
        return cache["table"][predictor]["median_task_error"]

    track_median_task_error.unit = "fraction"

    def track_p90_task_error(self, cache, predictor):
        return cache["table"][predictor]["p90_task_error"]

    track_p90_task_error.unit = "fraction"

    def track_makespan_error(self, cache, predictor):
        return cache["table"][predictor]["makespan_error"]

    track_makespan_error.unit = "fraction"


class FidelityAllShippedRuns:
    """Over every shipped run (plans and pairs): the worst per-run median task error and makespan error of the
    best predictor of each run."""

    timeout = 1200

    def setup_cache(self):
        from specedge.fidelity.report import compare_runs

        results = compare_runs(RUN_IDS, store=STORE)
        if not results:
            raise NotImplementedError("no run dataset in the shipped store")
        best = [r.table.set_index("predictor").loc[r.best()] for r in results]
        return {"median": max(b["median_task_error"] for b in best),
                "makespan": max(b["makespan_error"] for b in best)}

    def track_worst_best_predictor_median_task_error(self, cache):
        return cache["median"]

    track_worst_best_predictor_median_task_error.unit = "fraction"

    def track_worst_best_predictor_makespan_error(self, cache):
        return cache["makespan"]

    track_worst_best_predictor_makespan_error.unit = "fraction"


class FidelityProtocol:
    """Issue 10: over the shipped runs measured on a quiet machine (foreign work <= 5%), per pair: the worst plan's
    median error of its best predictor (median over quiet repeats), the worst makespan error, the noise floor,
    the makespan error when predicting before running (recorded acceptance), and rank fidelity (Kendall's tau of
    the measured predictor's makespans over the pair's distinct plans, and how many there are). A plan is a
    schedule: runs of one schedule from several policies are pooled as its repeats (specedge.fidelity.schedule).
    NaN where a pair has no quiet run."""

    params = [["stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", "smollm2-draft-7.1m/smollm2-135m"]]
    param_names = ["pair"]
    timeout = 1800

    def setup_cache(self):
        from specedge.fidelity.repeats import FidelityStudy

        study = FidelityStudy(STORE, RUN_IDS)
        if not len(study.index):
            raise NotImplementedError("no run dataset in the shipped store")
        plans = study.plan_rows()
        out = {}
        for pair, part in plans.groupby("pair"):
            quiet = part[~part["noisy"]]
            out[pair] = {"median": float(quiet["median_task_error"].max()) if len(quiet) else float("nan"),
                         "makespan": float(quiet["makespan_error"].max()) if len(quiet) else float("nan"),
                         "floor": float(quiet["makespan_spread"].median()) if len(quiet) else float("nan"),
                         "recorded": float(quiet["recorded_makespan_error"].median()) if len(quiet)
                         else float("nan")}
        for entry in study.rank():
            tau = entry["kendall_tau"]
            out.setdefault(entry["pair"], {})["tau"] = float("nan") if tau is None else tau
            out[entry["pair"]]["distinct_plans"] = float(entry["distinct_plans"])
        return out

    def _get(self, cache, pair, key):
        return cache.get(pair, {}).get(key, float("nan"))

    def track_worst_quiet_median_task_error(self, cache, pair):
        return self._get(cache, pair, "median")

    track_worst_quiet_median_task_error.unit = "fraction"

    def track_worst_quiet_makespan_error(self, cache, pair):
        return self._get(cache, pair, "makespan")

    track_worst_quiet_makespan_error.unit = "fraction"

    def track_makespan_noise_floor(self, cache, pair):
        return self._get(cache, pair, "floor")

    track_makespan_noise_floor.unit = "fraction"

    def track_recorded_acceptance_makespan_error(self, cache, pair):
        return self._get(cache, pair, "recorded")

    track_recorded_acceptance_makespan_error.unit = "fraction"

    def track_rank_kendall_tau(self, cache, pair):
        return self._get(cache, pair, "tau")

    track_rank_kendall_tau.unit = "tau"

    def track_rank_distinct_plans(self, cache, pair):
        return self._get(cache, pair, "distinct_plans")

    track_rank_distinct_plans.unit = "plans"
