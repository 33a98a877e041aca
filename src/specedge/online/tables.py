"""Stage-time tables: the scenario's compute predictors evaluated once on the grid the online kernel reads.

The kernel never calls a predictor; it reads, for b = 1..B_max sequences:

- ``p0[b, x]`` = latency(b, x, c = 0) for x = 0..X (prefill passes and first-round verification, x = I + l + 1);
- ``cont[b, l, c]`` = latency(b, l + 1, c) for l = 0..L_max and integer c = 0..C (l = 0 is the AD decode pass);
- ``cum[b, c]`` = sum over c' < c of latency(b, 1, c') on the draft model (sums of decode passes);
- ``host[b, l]`` = the predictor's per-job host overhead (``job_overhead`` [A], 0 when the scenario has none).

A context c between integers is read by linear interpolation [A]: exact for predictors affine in c (the paper's
affine model, and the ``fitted`` one), an interpolation of the interpolant for roofline and measured predictors.
A sum of n decode passes from a fractional c0 = i + phi is (1 - phi)(cum[i + n] - cum[i]) + phi (cum[i + 1 + n]
- cum[i + 1]), exact for the linear interpolant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class StageTables:
    """One node pair's tables (see the module docstring); index 0 of every b axis is an unused zero row."""

    d_p0: np.ndarray  # draft  latency(b, x, 0), (B+1, X+1)
    d_cum: np.ndarray  # draft  cumulative decode latency, (B+1, C+2)
    v_p0: np.ndarray  # verify latency(b, x, 0), (B+1, X+1)
    v_cont: np.ndarray  # verify latency(b, l+1, c), (B+1, L+1, C+2)
    d_host: np.ndarray  # (B+1, L+1)
    v_host: np.ndarray  # (B+1, L+1)
    max_batch: int
    max_x: int
    max_context: int
    max_l: int


def _host(pred, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The predictor's per-job host overhead through :mod:`specedge.latency.host_overhead` when it exists."""
    try:
        from specedge.latency.host_overhead import job_overhead_s
    except ImportError:  # older trees: no host overhead in the model
        return np.zeros(np.broadcast(b, x).shape)
    return np.broadcast_to(np.asarray(job_overhead_s(pred, b, x), dtype=np.float64), np.broadcast(b, x).shape).copy()


def build(draft_pred, verify_pred, *, max_batch: int, max_input: int, max_output: int, max_l: int) -> StageTables:
    """Evaluate both predictors on the grid needed for batches up to ``max_batch`` and these lengths."""
    bmax, lmax = int(max_batch), int(max_l)
    xmax = int(max_input) + lmax + 1
    cmax = int(max_input) + int(max_output) + lmax + 1
    b = np.arange(bmax + 1, dtype=np.float64)
    b[0] = 1.0  # row 0 is never read; keep predictors away from b = 0
    x = np.arange(xmax + 1, dtype=np.float64)
    c = np.arange(cmax + 2, dtype=np.float64)
    d_p0 = draft_pred.latency_s(b[:, None], np.maximum(x, 1.0)[None, :], 0.0)
    v_p0 = verify_pred.latency_s(b[:, None], np.maximum(x, 1.0)[None, :], 0.0)
    dec = draft_pred.latency_s(b[:, None], 1.0, c[None, :])
    d_cum = np.zeros((bmax + 1, cmax + 2))
    d_cum[:, 1:] = np.cumsum(dec[:, :-1], axis=1)
    ls = np.arange(lmax + 1, dtype=np.float64)
    v_cont = verify_pred.latency_s(b[:, None, None], ls[None, :, None] + 1.0, c[None, None, :])
    # host overhead: SD jobs pay it with x = l, AD jobs (l = 0) with x = 1 (specedge.latency.rounds)
    lx = np.where(ls == 0, 1.0, ls)
    d_host = _host(draft_pred, b[:, None], lx[None, :])
    d_host[:, 0] = 0.0  # an AD round has no drafting job
    v_host = _host(verify_pred, b[:, None], lx[None, :])
    for arr in (d_p0, v_p0, d_cum, v_cont, d_host, v_host):
        arr[0] = 0.0
    return StageTables(np.ascontiguousarray(d_p0, np.float64), d_cum, np.ascontiguousarray(v_p0, np.float64),
                       np.ascontiguousarray(v_cont, np.float64), d_host, v_host, bmax, xmax, cmax, lmax)
