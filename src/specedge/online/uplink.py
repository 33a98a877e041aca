"""The shared uplink when users arrive over time: bandwidth re-allocated among the users uploading at each moment.

User k arrives at a_k with D_k bits and spectral efficiency eta_k (:mod:`specedge.latency.network`); the work it
brings, in seconds of the whole band B, is w_k = D_k / (eta_k B). Rules (``uplink_rule``):

- ``equal-finish`` [P per epoch, A over time]: at every arrival the band is re-split by the paper's closed form
  b_k = B (R_k / eta_k) / sum_j (R_j / eta_j) over the remaining bits R_j of the users still uploading, so all
  of them finish together. Remaining work then drains at rate 1 and an arrival adds w_k, so every user of a busy
  period finishes at its end: e_k = max(e_{k-1}, a_k) + w_k (a Lindley recursion, vectorised as
  e_k = S_k + max_{j<=k}(a_j - S_{j-1}) with S the cumulative work), a busy period starting where a_k > e_{k-1}.
  With every arrival at 0 this is T_up* = sum_k w_k, the paper's optimum.
- ``equal-share`` [A]: processor sharing, b_k = B / n(t) for the n(t) users uploading. With the virtual time
  V(t) = integral of dt / n(t), user k finishes when V reaches V(a_k) + D_k / (eta_k B) ... per user band B/n, so
  its finish tags are ordered by V(a_k) + w_k; an event loop over arrivals and finishes (heap of tags).
- ``fixed`` [A]: user k keeps a given band b_k (a plan's allocation): T_k = a_k + D_k / (b_k eta_k).
"""

from __future__ import annotations

import heapq

import numpy as np

from specedge.errors import InputError

UPLINK_RULES = ("equal-finish", "equal-share", "fixed")


def work_s(payload_bits, spectral_efficiency, bandwidth_hz: float) -> np.ndarray:
    """w_k = D_k / (eta_k B): seconds the whole band needs for user k's payload."""
    return np.asarray(payload_bits, np.float64) / (np.asarray(spectral_efficiency, np.float64) * float(bandwidth_hz))


def equal_finish_end_s(arrival_s, work) -> np.ndarray:
    """Upload end of every user under the closed form re-applied at each arrival (arrivals sorted)."""
    a = np.asarray(arrival_s, np.float64)
    w = np.asarray(work, np.float64)
    if a.size == 0:
        return a.copy()
    s = np.cumsum(w)
    s_prev = s - w
    e = s + np.maximum.accumulate(a - s_prev)
    new_period = np.r_[True, a[1:] > e[:-1]]
    period = np.cumsum(new_period) - 1
    last = np.r_[np.flatnonzero(new_period)[1:] - 1, a.size - 1]
    return e[last][period]


def equal_share_end_s(arrival_s, work) -> np.ndarray:
    """Processor sharing of the band among the users uploading (arrivals sorted); event loop over a heap."""
    a = np.asarray(arrival_s, np.float64).tolist()
    w = np.asarray(work, np.float64).tolist()
    n = len(a)
    end = [0.0] * n
    heap: list[tuple[float, int]] = []  # (virtual finish tag, user)
    t = 0.0  # real time of the last event
    v = 0.0  # virtual time at t: per-user share integral, in seconds of the whole band
    i = 0
    while i < n or heap:
        active = len(heap)
        if heap:
            tag, k = heap[0]
            t_finish = t + (tag - v) * active
        else:
            t_finish = float("inf")
        if i < n and a[i] <= t_finish:
            if active:
                v += (a[i] - t) / active
            t = a[i]
            heapq.heappush(heap, (v + w[i], i))
            i += 1
        else:
            heapq.heappop(heap)
            v = tag
            t = t_finish
            end[k] = t
    return np.asarray(end)


def upload_end_s(rule: str, arrival_s, payload_bits, spectral_efficiency, bandwidth_hz: float,
                 fixed_bandwidth_hz=None) -> np.ndarray:
    """Upload end time of every user under ``rule`` (see the module docstring); arrivals must be sorted."""
    if rule == "fixed":
        if fixed_bandwidth_hz is None:
            raise InputError("uplink rule 'fixed' needs a per-user bandwidth (a plan's bandwidth_hz)")
        bw = np.asarray(fixed_bandwidth_hz, np.float64)
        if np.any(~(bw > 0)):
            raise InputError("uplink rule 'fixed': every user's bandwidth must be > 0 Hz")
        return np.asarray(arrival_s, np.float64) + np.asarray(payload_bits, np.float64) / (
            bw * np.asarray(spectral_efficiency, np.float64))
    w = work_s(payload_bits, spectral_efficiency, bandwidth_hz)
    if rule == "equal-finish":
        return equal_finish_end_s(arrival_s, w)
    if rule == "equal-share":
        return equal_share_end_s(arrival_s, w)
    raise InputError(f"unknown uplink rule {rule!r}; known: {', '.join(UPLINK_RULES)}")
