"""The ``measured-job`` predictor: a job-shaped compute grid with its measured per-job wake-up term.

A job-shaped grid (:mod:`specedge.serve.job_grid`, ``grid_mode = "job"`` in the trace's metadata) times each
configuration the way a serving node runs its passes and measures, in the same run, how much a job's first pass
after a blocking wait costs over a warm one: t_wake(b) = w_a + w_s·b per job [A]. ``measured-job`` interpolates
the latest job-shaped grid of each model (like ``measured``) and adds to each node's per-job overhead that node's
wake-up term on top of the host overhead (:func:`specedge.serve.job_grid.plus`). Nothing is fitted to any run:
both grid and term come from the measurer. A run whose own compute traces are job-shaped gets the term on every
base predictor instead (:func:`trace_wake_ups`), since its passes were timed the same way.
"""

from __future__ import annotations

from dataclasses import replace

#: Name of the predictor this module adds.
NAME = "measured-job"


def job_trace(store, model: str) -> str | None:
    """The latest compute dataset of ``model`` measured job-shaped (metadata ``grid_mode == "job"``), or None."""
    found = [i for i in store.list() if i.kind == "compute" and i.metadata.get("model") == model
             and i.metadata.get("grid_mode") == "job"]
    return max(found, key=lambda i: (i.created, i.id)).id if found else None


def trace_wake_ups(store, traces) -> dict:
    """{"draft": JobOverhead or None, "verify": ...}: the wake-up term of each of a run's (draft, verify) compute
    traces (None for pass-shaped traces, which have none)."""
    from specedge.serve.job_grid import wake_up_overhead

    return {node: wake_up_overhead(store.info(t).metadata, source=f"wake-up term of {t}") if t else None
            for node, t in zip(("draft", "verify"), traces)}


def with_wake_ups(predictors, wake: dict):
    """Each predictor pair with each node's wake-up term added to its per-job overhead (unchanged where None)."""
    from specedge.latency.host_overhead import with_job_overhead
    from specedge.serve.job_grid import plus

    if not any(wake.values()):
        return predictors
    out = []
    for p in predictors:
        nodes = {n: (getattr(p, n) if wake[n] is None else
                     with_job_overhead(getattr(p, n), plus(getattr(getattr(p, n), "job_overhead", None), wake[n])))
                 for n in ("draft", "verify")}
        out.append(replace(p, draft=nodes["draft"], verify=nodes["verify"]))
    return out


def with_job_grid(store, sc, predictors, overhead) -> tuple[list, dict]:
    """``predictors`` plus ``measured-job`` when both models have a job-shaped grid in the store; else unchanged,
    with the reason. ``overhead``: each node's host overhead ({"draft", "verify"} or None)."""
    from specedge.fidelity.memo import measured_compute
    from specedge.fidelity.predictors import PredictorPair

    cards = {"draft": sc.draft, "verify": sc.target}
    ids = {node: job_trace(store, card.name) for node, card in cards.items()}
    if not all(ids.values()):
        return predictors, {"source": "none", "reason": "no job-shaped compute grid of both models in the store "
                                                        "(scripts/measure_fidelity.py --job-grids)"}
    preds = {node: measured_compute(store, ids[node], cards[node], allow_extrapolation=True, source=ids[node])
             for node in ids}  # built once per grid (fidelity.memo)
    host = overhead or {}
    from specedge.latency.host_overhead import with_job_overhead

    preds = {node: with_job_overhead(preds[node], host.get(node)) for node in preds}
    wake = trace_wake_ups(store, (ids["draft"], ids["verify"]))
    (pair,) = with_wake_ups([PredictorPair(NAME, preds["draft"], preds["verify"],
                                           "job-shaped grid + measured wake-up per job")], wake)
    return [*predictors, pair], {"source": "job grids", "traces": ids,
                                 "wake_up": {n: (None if w is None else {"a_s": w.a_s, "per_seq_s": w.per_seq_s})
                                             for n, w in wake.items()}}
