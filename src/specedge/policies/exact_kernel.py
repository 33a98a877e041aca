"""The compiled recursion behind :mod:`specedge.policies.incremental` (kept apart so that numba's on-disk cache
survives edits to the Python around it). The per-job operations are :meth:`ExactMakespan._run`'s; see
:mod:`specedge.policies.incremental` for the layout and the early stop.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def gather(rows, td, tv, tail, off, nr, track_tail):
    """The base plan's stage times round-major: (rounds, batches) arrays, zero after a batch's last round, so
    that one round of the recursion reads memory in order."""
    m_n = rows.size
    n_max = 0
    for m in range(m_n):
        n_max = max(n_max, nr[rows[m]])
    bd = np.zeros((n_max, m_n))
    bv = np.zeros((n_max, m_n))
    bt = np.zeros((n_max if track_tail else 0, m_n))
    for m in range(m_n):
        u = rows[m]
        for n in range(nr[u]):
            bd[n, m] = td[off[u] + n]
            bv[n, m] = tv[off[u] + n]
            if track_tail:
                bt[n, m] = tail[off[u] + n]
    return bd, bv, bt


@njit(cache=True)
def round0_prefix(rows, bd, bv, bt, ready, f, pipelined, track_tail):
    """State before round-0 job m of the base plan, m = 0..M: SBS free a, MBS free b, makespan so far, and
    each batch's round-0 verify end."""
    m_n = rows.size
    a_chk = np.zeros(m_n + 1)
    b_chk = np.zeros(m_n + 1)
    ms_chk = np.full(m_n + 1, -np.inf)
    last = np.zeros(m_n)
    a = 0.0
    b = 0.0
    ms = -np.inf
    for m in range(m_n):
        a_chk[m], b_chk[m], ms_chk[m] = a, b, ms
        if pipelined:
            a = max(a, ready[rows[m]]) + bd[0, m]
            b = max(b, a + f) + bv[0, m]
        else:
            b = max(b, ready[rows[m]]) + (bd[0, m] + bv[0, m] + f)
        last[m] = b
        if track_tail:
            ms = max(ms, b + bt[0, m])
    a_chk[m_n], b_chk[m_n], ms_chk[m_n] = a, b, ms
    return a_chk, b_chk, ms_chk, last


@njit(cache=True)
def moves_makespans(rows, bd, bv, bt, a_chk, b_chk, ms_chk, last_chk, m0s, m1s, new_start, new_count, new_rows,
                    td, tv, tail, off, nr, ready, sum_d, sum_v, f, pipelined, track_tail, threshold, shared_bar):
    """Makespan of each move: the base plan (``rows``, round-major tables ``bd``/``bv``/``bt``) with batches
    m0s[p]:m1s[p] replaced by rows new_rows[new_start[p]:new_start[p] + new_count[p]]; +inf for a move stopped
    early (its lower bound exceeds the bar)."""
    m_base = rows.size
    p_n = m0s.size
    out = np.full(p_n, np.inf)
    bar = threshold
    max_new = 0
    for p in range(p_n):
        max_new = max(max_new, new_count[p])
    last = np.zeros(m_base + max_new)
    for p in range(p_n):
        m0, m1, k0, k = m0s[p], m1s[p], new_start[p], new_count[p]
        shift = k - (m1 - m0)
        m_n = m_base + shift
        rest_d = 0.0
        rest_v = 0.0
        n_max = 0
        for m in range(m_base):
            if m < m0 or m >= m1:
                u = rows[m]
                rest_d += sum_d[u]
                rest_v += sum_v[u]
                n_max = max(n_max, nr[u])
                if m < m0:
                    last[m] = last_chk[m]
                    rest_d -= bd[0, m]
                    rest_v -= bv[0, m]
                else:
                    last[m + shift] = ready[u]
        for q in range(k):
            u = new_rows[k0 + q]
            rest_d += sum_d[u]
            rest_v += sum_v[u]
            n_max = max(n_max, nr[u])
            last[m0 + q] = ready[u]
        a, b, ms = a_chk[m0], b_chk[m0], ms_chk[m0]
        stopped = False
        for n in range(n_max):
            fn = f if n > 0 else 0.0
            for m in range(m0 if n == 0 else 0, m_n):
                if m < m0 or m >= m0 + k:
                    mb = m if m < m0 else m - shift
                    if nr[rows[mb]] <= n:
                        continue
                    x = bd[n, mb]
                    y = bv[n, mb]
                    z = bt[n, mb] if track_tail else 0.0
                else:
                    u = new_rows[k0 + m - m0]
                    if nr[u] <= n:
                        continue
                    x = td[off[u] + n]
                    y = tv[off[u] + n]
                    z = tail[off[u] + n] if track_tail else 0.0
                r = last[m] + fn
                if pipelined:
                    a = max(a, r) + x
                    b = max(b, a + f) + y
                else:
                    b = max(b, r) + (x + y + f)
                last[m] = b
                rest_d -= x
                rest_v -= y
                if track_tail:
                    ms = max(ms, b + z)
            bound = max(b + rest_v, ms)
            if pipelined:
                bound = max(bound, a + rest_d + f)
            if bound > bar + 1e-10 * abs(bar):  # slack: the running sums round differently from the recursion
                stopped = True
                break
        if stopped:
            continue
        value = ms if track_tail else b
        out[p] = value
        if shared_bar and value < bar:
            bar = value
    return out
