"""How well replay predicts a real serving run (issue 7): replay a run's plan with its observed acceptance and the
pair's compute predictors, and compare per-task latency and makespan with what the run measured.

- :func:`compare_run` (one run) -> :class:`FidelityResult`;
- :func:`fidelity_table` / :func:`fidelity_figure` / :func:`fidelity_report` (every run in the store) for reports;
- predictors: :func:`build_predictors` (affine, roofline, measured from compute traces), and ``measured-contention``
  (:mod:`specedge.fidelity.contention`: the measured grid calibrated on the pair's other quiet runs).
"""

from __future__ import annotations

from specedge.fidelity.compare import STAGE_TIMES, FidelityResult, ObservedAcceptance, compare_run, latest_run
from specedge.fidelity.predictors import PREDICTORS, PredictorPair, build_predictors

__all__ = ["PREDICTORS", "STAGE_TIMES", "FidelityResult", "ObservedAcceptance", "PredictorPair", "build_predictors",
           "compare_run", "fidelity_figure", "fidelity_report", "fidelity_table", "latest_run"]


def __getattr__(name: str):
    if name in ("fidelity_table", "fidelity_figure", "fidelity_report"):
        from specedge.fidelity import report

        return getattr(report, name)
    raise AttributeError(f"module 'specedge.fidelity' has no attribute {name!r}")
