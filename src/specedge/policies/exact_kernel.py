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
def _job(a, b, ms, r, x, y, z, f, pipelined, track_tail):
    """One job of the recursion (:meth:`ExactMakespan._run`'s operations): SBS free ``a``, MBS free ``b`` and the
    makespan so far ``ms`` after a job released at ``r`` with draft ``x``, verify ``y`` and downlink tail ``z``."""
    if pipelined:
        a = max(a, r) + x
        b = max(b, a + f) + y
    else:
        b = max(b, r) + (x + y + f)
    if track_tail:
        ms = max(ms, b + z)
    return a, b, ms


#: The switch bound is computed for moves replacing at most this many batches by at most this many.
SWITCH_WINDOW = 8


@njit(cache=True)
def switch_bound(b, last, f, m0, m1, k0, k, new_rows, td, tv, off, nr, bd, bv, nrb, row_d, row_v, n_max, dr, vr):
    """A lower bound on a pipelined move's makespan after its round 0, from the round coupling: the first job of
    round T >= 1 is released f after its batch's round T - 1 verify ends, which is no earlier than the MBS
    free time ``b`` plus every verify of rounds 1 .. T - 2 (the MBS does them first, one at a time; for T = 1 it
    is known: ``last``); from that release the SBS must still draft every job of rounds T .. end, and the last
    one is verified at least f later. So the makespan is at least max over T of release_T + f + sum of D over
    rounds >= T + f. (The bound of :func:`moves_makespans`'s early stop misses the MBS idle that comes when the
    SBS is the bottleneck in the last rounds; this one sees it right after round 0.) ``dr``/``vr``: scratch of
    ``n_max`` entries for the move's per-round sums (the base plan's ``row_d``/``row_v`` with the window's
    batches replaced)."""
    n_base = row_d.size
    for t in range(n_max):
        dr[t] = row_d[t] if t < n_base else 0.0
        vr[t] = row_v[t] if t < n_base else 0.0
    for m in range(m0, m1):
        for t in range(nrb[m]):
            dr[t] -= bd[t, m]
            vr[t] -= bv[t, m]
    for q in range(k):
        u = new_rows[k0 + q]
        for t in range(nr[u]):
            dr[t] += td[off[u] + t]
            vr[t] += tv[off[u] + t]
    if n_max < 2:
        return -np.inf
    # the move's batch at each position m: rounds, and its verify time at round t (base column or new row)
    shift = k - (m1 - m0)
    m_n = nrb.size + shift
    first = -1  # T = 1: the first batch with a round 1, released at its known round-0 verify end
    for m in range(m_n):
        if _rounds_at(m, m0, k, k0, shift, nrb, nr, new_rows) > 1:
            first = m
            break
    v_last = 0.0  # the last job's verify (the last batch with a round n_max - 1)
    for m in range(m_n - 1, -1, -1):
        if _rounds_at(m, m0, k, k0, shift, nrb, nr, new_rows) >= n_max:
            v_last = _verify_at(m, n_max - 1, m0, k, k0, shift, bv, tv, off, new_rows)
            break
    rounds0 = _rounds_at(0, m0, k, k0, shift, nrb, nr, new_rows)
    suffix_d = 0.0
    for t in range(1, n_max):
        suffix_d += dr[t]
    best = last[first] + f + suffix_d + f + v_last
    # T >= 2: release >= b + verifies of rounds 1 .. T - 2 (+ batch 0's round T - 1 one when it is the first
    # job of round T) + f
    prefix_v = 0.0
    for t in range(2, n_max):
        suffix_d -= dr[t - 1]
        if t >= 3:
            prefix_v += vr[t - 2]
        if rounds0 > t:
            if m0 > 0:
                head = bv[t - 1, 0]
            elif k > 0:
                head = tv[off[new_rows[k0]] + t - 1]
            else:
                head = bv[t - 1, -shift]
        else:
            head = 0.0
        best = max(best, b + prefix_v + head + f + suffix_d + f + v_last)
    return best


@njit(cache=True)
def _rounds_at(m, m0, k, k0, shift, nrb, nr, new_rows):
    """Rounds of the batch at position m of a move's plan."""
    if m < m0:
        return nrb[m]
    if m < m0 + k:
        return nr[new_rows[k0 + m - m0]]
    return nrb[m - shift]


@njit(cache=True)
def _verify_at(m, t, m0, k, k0, shift, bv, tv, off, new_rows):
    """Round-t verify time of the batch at position m of a move's plan (t below its rounds)."""
    if m < m0:
        return bv[t, m]
    if m < m0 + k:
        return tv[off[new_rows[k0 + m - m0]] + t]
    return bv[t, m - shift]


@njit(cache=True)
def moves_makespans(rows, bd, bv, bt, a_chk, b_chk, ms_chk, last_chk, row_d, row_v, m0s, m1s, new_start, new_count,
                    new_rows, td, tv, tail, off, nr, ready, sum_d, sum_v, f, pipelined, track_tail, threshold,
                    shared_bar):
    """Makespan of each move: the base plan (``rows``, round-major tables ``bd``/``bv``/``bt``) with batches
    m0s[p]:m1s[p] replaced by rows new_rows[new_start[p]:new_start[p] + new_count[p]]; +inf for a move stopped
    early (its lower bound exceeds the bar). A round runs as three loops (the base batches before the window, the
    new batches, the base batches after it): the jobs of one loop over the new plan, in the same order."""
    m_base = rows.size
    p_n = m0s.size
    out = np.full(p_n, np.inf)
    bar = threshold
    max_new = 0
    for p in range(p_n):
        max_new = max(max_new, new_count[p])
    last = np.zeros(m_base + max_new)
    nrb = np.empty(m_base, dtype=np.int64)  # rounds of each base batch
    n_all = 0
    for m in range(m_base):
        nrb[m] = nr[rows[m]]
        n_all = max(n_all, nrb[m])
    for p in range(p_n):
        for q in range(new_count[p]):
            n_all = max(n_all, nr[new_rows[new_start[p] + q]])
    dr = np.zeros(n_all)  # the switch bound's scratch
    vr = np.zeros(n_all)
    for p in range(p_n):
        m0, m1, k0, k = m0s[p], m1s[p], new_start[p], new_count[p]
        shift = k - (m1 - m0)
        rest_d = 0.0
        rest_v = 0.0
        n_max = 0
        for m in range(m_base):
            if m < m0 or m >= m1:
                u = rows[m]
                rest_d += sum_d[u]
                rest_v += sum_v[u]
                n_max = max(n_max, nrb[m])
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
            g = f if n > 0 else 0.0
            for m in range(m0 if n == 0 else 0, m0):
                if nrb[m] > n:
                    x, y = bd[n, m], bv[n, m]
                    a, b, ms = _job(a, b, ms, last[m] + g, x, y, bt[n, m] if track_tail else 0.0, f, pipelined,
                                    track_tail)
                    last[m] = b
                    rest_d -= x
                    rest_v -= y
            for q in range(k):
                u = new_rows[k0 + q]
                if nr[u] > n:
                    at = off[u] + n
                    x, y = td[at], tv[at]
                    a, b, ms = _job(a, b, ms, last[m0 + q] + g, x, y, tail[at] if track_tail else 0.0, f,
                                    pipelined, track_tail)
                    last[m0 + q] = b
                    rest_d -= x
                    rest_v -= y
            for mb in range(m1, m_base):
                if nrb[mb] > n:
                    x, y = bd[n, mb], bv[n, mb]
                    a, b, ms = _job(a, b, ms, last[mb + shift] + g, x, y, bt[n, mb] if track_tail else 0.0, f,
                                    pipelined, track_tail)
                    last[mb + shift] = b
                    rest_d -= x
                    rest_v -= y
            bound = max(b + rest_v, ms)
            if pipelined:
                bound = max(bound, a + rest_d + f)
            if (n == 0 and pipelined and n_max > 1 and m1 - m0 <= SWITCH_WINDOW and k <= SWITCH_WINDOW
                    and not bound > bar + 1e-10 * abs(bar)):
                bound = max(bound, switch_bound(b, last, f, m0, m1, k0, k, new_rows, td, tv, off, nr, bd, bv, nrb,
                                                row_d, row_v, n_max, dr, vr))
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


@njit(cache=True)
def live_cells(js, is_, task_rounds, inputs, upload, before, all_uploads, t_up, outputs, downlink_s, track_tail):
    """The live (batch, round) cells of batches js[s]:is_[s] of the task order (:meth:`ExactMakespan._add`):
    per batch its rounds, padded input length and ready time; per cell, batch by batch and rounds ascending,
    the live members b (members with more than r rounds), the context imax + before[r], imax, whether it is the
    first round, and the downlink tail (the most any member finishing in that round still downloads; -inf when
    none finishes). Maxima are exact, and the context and the tail are the numpy expressions' operations."""
    s_n = js.size
    nr = np.zeros(s_n, dtype=np.int64)
    imax = np.empty(s_n)
    ready = np.empty(s_n)
    total = 0
    for s in range(s_n):
        rounds, i_max, r_max = 0, -np.inf, -np.inf
        for t in range(js[s], is_[s]):
            rounds = max(rounds, task_rounds[t])
            i_max = max(i_max, inputs[t])
            r_max = max(r_max, upload[t])
        nr[s], imax[s], ready[s] = rounds, i_max, t_up if all_uploads else r_max
        total += rounds
    b = np.zeros(total, dtype=np.int64)
    ctx = np.empty(total)
    cell_imax = np.empty(total)
    first = np.zeros(total, dtype=np.bool_)
    tail = np.full(total if track_tail else 0, -np.inf)
    at = 0
    for s in range(s_n):
        for t in range(js[s], is_[s]):
            r = task_rounds[t] - 1  # the member's last round
            b[at + r] += 1
            if track_tail:
                tail[at + r] = max(tail[at + r], downlink_s * (outputs[t] - before[r]))
        for r in range(nr[s] - 2, -1, -1):
            b[at + r] += b[at + r + 1]
        for r in range(nr[s]):
            ctx[at + r] = imax[s] + before[r]
            cell_imax[at + r] = imax[s]
        first[at] = True
        at += nr[s]
    return nr, imax, ready, b, ctx, cell_imax, first, tail
