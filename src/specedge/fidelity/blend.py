"""``measured-blend``: the co-run and the alone compute grids weighted by the other node's replayed busy share.

Compute traces are measured co-running by default (both models at once, `specedge.serve.measure`, each core
busy), so they assume the other node is always busy. When the store also holds an *alone* grid of both models
(measured one after the other, ``--measure-mode alone``; `scripts/measure_fidelity.py --alone-grids` measures
one over the protocol's grid), a pass of a node whose partner is busy a share u of the time is predicted [A]

    t = t_alone + u·(t_corun − t_alone)

with u each node's replayed share (:func:`specedge.fidelity.contention.busy_fixed_point`), t_corun the run's own
(co-run) grid and t_alone the latest alone grid of the same model. Nothing is fitted to any run. Without an alone
grid of both models the predictor is not built (the diagnostics say so); :func:`grid_contention` compares the
two grids cell by cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BlendedCompute:
    """t_alone + other_busy·(t_corun − t_alone) per pass; carries a host overhead like the other predictors."""

    model: object
    alone: object = field(repr=False)
    corun: object = field(repr=False)
    other_busy: float = 1.0
    source: str = ""
    job_overhead: object = None

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        a = np.asarray(self.alone.latency_s(batch_size, new_tokens, context_tokens), dtype=np.float64)
        c = np.asarray(self.corun.latency_s(batch_size, new_tokens, context_tokens), dtype=np.float64)
        return a + self.other_busy * (c - a)


def alone_trace(store, model: str) -> str | None:
    """The latest compute dataset of ``model`` measured alone (metadata ``measure_mode == "alone"``), or None."""
    found = [i for i in store.list() if i.kind == "compute" and i.metadata.get("model") == model
             and i.metadata.get("measure_mode") == "alone"]
    return max(found, key=lambda i: (i.created, i.id)).id if found else None


def with_blend(store, sc, plan, predictors, base, overhead, *, seed: int = 0) -> tuple[list, dict]:
    """``predictors`` plus ``measured-blend`` over ``base`` (the co-run grid pair) when both models have an alone
    grid in the store; else unchanged, with the reason."""
    from specedge.fidelity.contention import busy_fixed_point
    from specedge.fidelity.memo import measured_compute
    from specedge.fidelity.predictors import PredictorPair

    ids = {node: alone_trace(store, getattr(base, node).model.name) for node in ("draft", "verify")}
    if not all(ids.values()):
        return predictors, {"source": "none", "reason": "no alone compute grid of both models in the store "
                                                        "(scripts/measure_fidelity.py --alone-grids)"}
    alone = {node: measured_compute(store, ids[node], getattr(base, node).model, allow_extrapolation=True,
                                    source=ids[node]) for node in ids}  # built once per grid (fidelity.memo)
    ovh = overhead or {node: getattr(getattr(base, node), "job_overhead", None) for node in ids}

    def make(u):
        return {node: BlendedCompute(getattr(base, node).model, alone[node], getattr(base, node), u[node],
                                     source=f"{ids[node]} (alone) + co-run grid", job_overhead=ovh[node])
                for node in ids}

    preds, u, history = busy_fixed_point(sc, plan, make, seed=seed)
    pair = PredictorPair("measured-blend", preds["draft"], preds["verify"],
                         "alone grid + u (co-run grid - alone grid), u replayed")
    return [*predictors, pair], {"source": "alone grids", "traces": ids, "other_busy": u, "iterations": history}


def grid_contention(corun: pd.DataFrame, alone: pd.DataFrame) -> pd.DataFrame:
    """Per phase, over the grid cells both traces measured (median latency per cell): cells, the median and the
    quartiles of t_corun / t_alone, and Σ t_corun / Σ t_alone (rows of one model each, compute-trace columns)."""
    keys = ["phase", "batch_size", "new_tokens", "context_tokens"]
    c = corun.groupby(keys)["latency_ms"].median()
    a = alone.groupby(keys)["latency_ms"].median()
    both = pd.concat({"corun": c, "alone": a}, axis=1, join="inner").reset_index()
    rows = []
    for phase, part in both.groupby("phase", sort=True):
        r = (part["corun"] / part["alone"]).to_numpy()
        rows.append({"phase": phase, "cells": int(len(part)), "median_ratio": float(np.median(r)),
                     "q25_ratio": float(np.percentile(r, 25)), "q75_ratio": float(np.percentile(r, 75)),
                     "sum_ratio": float(part["corun"].sum() / part["alone"].sum())})
    return pd.DataFrame(rows)
