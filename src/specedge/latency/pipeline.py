"""The two-stage serving recursion of docs/model.md section 5, and its two baselines.

Jobs are (round n, batch m) pairs served round-robin: (0, 1), (0, 2), ..., (0, M), (1, 1), ...; a batch that has
finished drops out of later rounds [A]. With ready time r_m of batch m (its inputs have arrived), draft time
td and verification time tv of each job, and a one-way fronthaul delay f [A, 0 in the paper]:

pipelined (SD with pipeline)::

    draft_end(j)  = max(draft_end(j - 1), verify_end(prev(j)) + f) + td(j)     (prev(j): same batch, round n - 1;
    verify_end(j) = max(draft_end(j) + f, verify_end(j - 1)) + tv(j)           for n = 0 use r_m instead)

serial (SD without pipeline: a job's drafting starts only after the previous job's verification)::

    draft_end(j)  = max(verify_end(j - 1), verify_end(prev(j)) + f) + td(j)
    verify_end(j) = draft_end(j) + f + tv(j)

autoregressive (AD: the target alone; no SBS stage, no fronthaul)::

    verify_end(j) = max(verify_end(j - 1), verify_end(prev(j))) + tv(j)

The job-array functions (:func:`run_jobs`) are the replay's core; :func:`pipelined`, :func:`serial` and
:func:`autoregressive` take per-batch, per-round matrices (NaN = no such round) for hand-built timelines and
optimizers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

@njit(cache=True)
def _pipelined_scalar(prev, ready, td, tv, f):
    """The pipelined recursion job by job (compiled; the same operations in the same order as the equations)."""
    n = td.size
    a_out = np.empty(n)
    b_out = np.empty(n)
    a = 0.0
    b = 0.0
    for j in range(n):
        p = prev[j]
        r = b_out[p] + f if p >= 0 else ready[j]
        a = (a if a > r else r) + td[j]
        s = a + f
        b = (s if s > b else b) + tv[j]
        a_out[j] = a
        b_out[j] = b
    return a_out, b_out


def _pipelined_cycles(prev, ready, td, tv, f, cycle_starts):
    """Same recursion, vectorised within each round-robin cycle (jobs of one round, batches in order). No longer
    used by :func:`run_jobs` (the compiled job loop is faster at every size); kept as a second implementation
    the tests compare with."""
    a_out = np.empty_like(td)
    b_out = np.empty_like(tv)
    a_free = 0.0
    b_free = 0.0
    bounds = np.r_[cycle_starts, td.size]
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        p = prev[lo:hi]
        r = np.where(p >= 0, b_out[p] + f, ready[lo:hi])
        t_d = td[lo:hi]
        cum_d = np.cumsum(t_d)
        a = cum_d + np.maximum(a_free, np.maximum.accumulate(r - cum_d + t_d))
        t_v = tv[lo:hi]
        cum_v = np.cumsum(t_v)
        b = cum_v + np.maximum(b_free, np.maximum.accumulate(a + f - cum_v + t_v))
        a_out[lo:hi] = a
        b_out[lo:hi] = b
        a_free = a[-1]
        b_free = b[-1]
    return a_out, b_out


@njit(cache=True)
def _serial_scalar(prev, ready, td, tv, f):
    """The serial recursion job by job (compiled)."""
    n = td.size
    a_out = np.empty(n)
    b_out = np.empty(n)
    b = 0.0
    for j in range(n):
        p = prev[j]
        r = b_out[p] + f if p >= 0 else ready[j]
        a = (b if b > r else r) + td[j]
        b = a + f + tv[j]
        a_out[j] = a
        b_out[j] = b
    return a_out, b_out


def _release_cummax(ready, prev, cost):
    """b_j = max(b_{j-1}, r_j) + cost_j when later rounds never wait on their own batch (r_j <= b_{j-1})."""
    r = np.where(prev >= 0, -np.inf, ready)
    cum = np.cumsum(cost)
    return cum + np.maximum(0.0, np.maximum.accumulate(r - cum + cost))


def run_jobs(mode: str, prev, ready, draft_s, verify_s, *, fronthaul_delay_s: float = 0.0, cycle_starts=None):
    """Run the recursion over jobs already in round-robin order.

    ``prev[j]``: index of the same batch's previous-round job, -1 for a first round; ``ready[j]``: the batch's
    ready time (read for first rounds only). ``cycle_starts``: accepted for compatibility, unused (the
    recursions are compiled job loops). Returns (draft_end_s, verify_end_s).
    """
    prev = np.asarray(prev, dtype=np.int64)
    ready = np.asarray(ready, dtype=np.float64)
    td = np.asarray(draft_s, dtype=np.float64)
    tv = np.asarray(verify_s, dtype=np.float64)
    f = float(fronthaul_delay_s)
    if td.size == 0:
        return td.copy(), tv.copy()
    if mode == "ad":
        b = _release_cummax(ready, prev, tv)
        return b - tv, b
    if mode == "sd-serial":
        if f == 0.0:
            b = _release_cummax(ready, prev, td + tv)
            return b - tv, b
        return _serial_scalar(prev, ready, td, tv, f)
    if mode == "sd-pipeline":
        return _pipelined_scalar(prev, ready, td, tv, f)
    raise ValueError(f"unknown mode {mode!r}")


# ----------------------------------------------------------------------------------- matrix interface
@dataclass(frozen=True)
class Timeline:
    """Per-batch, per-round end times (NaN where a batch has no such round) and the makespan."""

    draft_end_s: np.ndarray
    verify_end_s: np.ndarray

    @property
    def makespan_s(self) -> float:
        return float(np.nanmax(self.verify_end_s)) if self.verify_end_s.size else 0.0

    @property
    def batch_end_s(self) -> np.ndarray:
        return np.nanmax(self.verify_end_s, axis=1)


def _as_matrix(x, num_batches: int | None = None) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.ndim == 2:
        return x.astype(np.float64)
    rows = [np.asarray(r, dtype=np.float64).ravel() for r in x]
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for m, r in enumerate(rows):
        out[m, : r.size] = r
    return out


def _run_matrix(mode, ready_s, draft_s, verify_s, fronthaul_delay_s) -> Timeline:
    tv = _as_matrix(verify_s)
    td = np.zeros_like(tv) if draft_s is None else _as_matrix(draft_s)
    if td.shape != tv.shape:
        raise ValueError(f"draft_s has shape {td.shape} but verify_s has {tv.shape}")
    ready = np.broadcast_to(np.asarray(ready_s, dtype=np.float64), (tv.shape[0],))
    present = ~np.isnan(tv)
    # a batch's rounds must be contiguous from round 0
    if np.any(present[:, 1:] & ~present[:, :-1]):
        raise ValueError("each batch's rounds must be contiguous from round 0 (NaN only at the end)")
    rnd, bat = np.nonzero(present.T)
    index = np.full(tv.shape, -1, dtype=np.int64)
    index[bat, rnd] = np.arange(rnd.size)
    prev = np.where(rnd > 0, index[bat, np.maximum(rnd - 1, 0)], -1)
    cycle_starts = np.flatnonzero(np.r_[True, rnd[1:] != rnd[:-1]]) if rnd.size else np.zeros(0, np.int64)
    a, b = run_jobs(mode, prev, ready[bat], np.nan_to_num(td[bat, rnd]), tv[bat, rnd],
                    fronthaul_delay_s=fronthaul_delay_s, cycle_starts=cycle_starts)
    d_end = np.full(tv.shape, np.nan)
    v_end = np.full(tv.shape, np.nan)
    d_end[bat, rnd] = a
    v_end[bat, rnd] = b
    return Timeline(d_end, v_end)


def pipelined(ready_s, draft_s, verify_s, *, fronthaul_delay_s: float = 0.0) -> Timeline:
    """SD with pipeline. ``ready_s``: per batch (or one scalar); ``draft_s``/``verify_s``: an (M, N) array with NaN
    after a batch's last round, or a list of M per-round arrays."""
    return _run_matrix("sd-pipeline", ready_s, draft_s, verify_s, fronthaul_delay_s)


def serial(ready_s, draft_s, verify_s, *, fronthaul_delay_s: float = 0.0) -> Timeline:
    """SD without pipeline: no job's drafting overlaps another job's verification."""
    return _run_matrix("sd-serial", ready_s, draft_s, verify_s, fronthaul_delay_s)


def autoregressive(ready_s, verify_s) -> Timeline:
    """AD serving: the target alone, one pass per round, same round-robin batching."""
    return _run_matrix("ad", ready_s, None, verify_s, 0.0)
