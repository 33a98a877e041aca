"""asv track_ benchmarks: how well replay predicts the latest real run shipped in the repository's traces/.

Each benchmark replays that run (``specedge fidelity``: observed acceptance, the run's compute traces) with one
compute predictor and reports an error as a fraction, so a change to the latency model, the predictors or the
replay that makes predictions worse shows up in asv's history. A store with no run skips the suite.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's trace store (the shipped runs), independent of where asv installs specedge.
STORE = Path(__file__).resolve().parents[1] / "traces"
PREDICTORS = ["affine", "roofline", "measured"]


class FidelityLatestRun:
    """Per predictor: median and p90 per-task latency error and makespan error of the latest shipped run."""

    params = [PREDICTORS]
    param_names = ["predictor"]
    timeout = 600

    def setup_cache(self):
        from specedge.errors import DatasetNotFoundError
        from specedge.fidelity import compare_run

        try:
            result = compare_run(None, store=STORE)
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

        results = compare_runs(store=STORE)
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
