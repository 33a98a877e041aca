"""How well the paper's affine-in-FLOPs compute model (docs/model.md §4) explains a measured compute trace.

For each phase and for all phases together: the least-squares fit of T = c1 · b · F(x, c) + c2
(:func:`specedge.latency.compute.fit_affine`), its R², the effective FLOP/s 1/c1, the fixed cost c2 and the
relative residuals; and a roofline fit T = max(a · b · F, m · bytes) + c2 (a, m, c2 ≥ 0, least squares), where
``bytes`` is the weights plus the batch's KV cache (:func:`specedge.latency.flops.pass_bytes`). A phase where the
roofline fits clearly better than the affine line is one where memory traffic, not FLOPs, sets the time.

This module reads specedge.latency; nothing in specedge.latency imports it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge.latency.cards import ModelCard
from specedge.latency.compute import fit_affine
from specedge.latency.flops import forward_flops, pass_bytes


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def fit_roofline(card: ModelCard, frame: pd.DataFrame, *, kv_bytes_per_value: float) -> dict:
    """Least-squares fit of T = max(a·b·F, m·bytes) + c2 (seconds); returns a, m, c2, R² and predictions."""
    from scipy.optimize import least_squares

    b = frame["batch_size"].to_numpy(np.float64)
    work = b * forward_flops(card, frame["new_tokens"].to_numpy(), frame["context_tokens"].to_numpy())
    moved = pass_bytes(card, b, frame["new_tokens"].to_numpy(), frame["context_tokens"].to_numpy(),
                       bytes_per_value=kv_bytes_per_value)
    y = frame["latency_ms"].to_numpy(np.float64) / 1e3
    ws, ms, ys = work.max(), moved.max(), max(y.max(), 1e-12)

    def model(theta):
        return np.maximum(theta[0] * work / ws, theta[1] * moved / ms) + theta[2]

    best = None
    for start in ([ys, ys / 10, y.min()], [ys / 10, ys, y.min()], [ys, ys, 0.0]):
        sol = least_squares(lambda t: (model(t) - y) / ys, start, bounds=(0.0, np.inf))
        if best is None or sol.cost < best.cost:
            best = sol
    pred = model(best.x)
    return {
        "a_s_per_flop": best.x[0] / ws,
        "m_s_per_byte": best.x[1] / ms,
        "c2_s": best.x[2],
        "r2": _r2(y, pred),
        "predicted_s": pred,
    }


def compute_fit_table(card: ModelCard, frame: pd.DataFrame, *, kv_bytes_per_value: float = 4.0) -> pd.DataFrame:
    """One row per phase (plus "all"): rows, affine R², 1/c1 in FLOP/s, c2 in ms, median and max |relative
    residual| of the affine fit (on the per-configuration median latency), roofline R², memory-bound share."""
    out = []
    groups = [(p, g) for p, g in frame.groupby("phase", sort=True)] + [("all", frame)]
    for phase, g in groups:
        fit = fit_affine(card, g, source=f"{phase} rows")
        roof = fit_roofline(card, g, kv_bytes_per_value=kv_bytes_per_value)
        keys = ["batch_size", "new_tokens", "context_tokens"]
        med = g.groupby(keys, as_index=False)["latency_ms"].median()
        b = med["batch_size"].to_numpy(np.float64)
        pred_ms = (fit.c1_s_per_flop * b * forward_flops(card, med["new_tokens"], med["context_tokens"]) + fit.c2_s) * 1e3
        rel = np.abs(pred_ms - med["latency_ms"].to_numpy()) / med["latency_ms"].to_numpy()
        work = b * forward_flops(card, med["new_tokens"], med["context_tokens"])
        moved = pass_bytes(card, b, med["new_tokens"], med["context_tokens"], bytes_per_value=kv_bytes_per_value)
        memory_bound = roof["m_s_per_byte"] * moved > roof["a_s_per_flop"] * work
        out.append(
            {
                "phase": phase,
                "rows": fit.num_rows,
                "configs": len(med),
                "affine_r2": fit.r2,
                "effective_flops_per_s": 1.0 / fit.c1_s_per_flop if fit.c1_s_per_flop > 0 else float("inf"),
                "c2_ms": fit.c2_s * 1e3,
                "median_abs_rel_residual": float(np.median(rel)),
                "max_abs_rel_residual": float(rel.max()),
                "roofline_r2": roof["r2"],
                "roofline_memory_bound_share": float(memory_bound.mean()),
            }
        )
    return pd.DataFrame(out)
