"""The compiled recurrence behind :func:`specedge.policies.dp.solve` for affine predictors (kept apart so that
numba's on-disk cache survives edits to the Python around it).

Batches ending at e (inclusive) with t + 1 tasks, t < tmax[e]; O_max of such a batch is the running maximum of
the planning outputs e, e - 1, ..., e - t, which changes only at a few t (the suffix maxima): each change starts
the next (end, O_max) pair, whose stage times at b = 1 (``d1``, ``v1``) and slope in b (``dd``, ``dv``) the
caller evaluated once. The cost of (e, t, l) is then ``d1[p, l] + t * dd[p, l]`` (the same two float64
operations, in the same order, as the array expression it replaces, so the plans and costs are bit-identical),
combined per mode (0: max(D, V), 1: D + V, 2: V) and added to the DP value at e - t; the first minimum over t
wins (the smallest last batch, as ``np.argmin``). Nothing K x W is stored: O(K l) memory.

The scan over t for one (end, l, mode) keeps 9 independent running minima (within a run of one O_max, blocks of
8 lengths, the s-th of each block in minimum s; what is left of each run in the ninth; each over increasing t)
and merges them at the end taking the smallest value and, among equal values, the smallest t: the same answer
as one running minimum with strict improvement, with shorter dependency chains (t + s is formed as float(t) + s,
exact for integers). The per-batch-l DP's cheapest l per length is taken during the scan of its mode (l in
increasing order, first on ties).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Mode codes of the compiled cost (the surrogates of :data:`specedge.policies.dp.SURROGATES`).
MODE_CODES = {"sd-pipeline": 0, "sd-serial": 1, "ad": 2}


@njit(cache=True)
def suffix_max_pairs(out32, width):
    """The distinct (end e, O_max) pairs over batch lengths 1..min(width, e + 1), in order of e then length:
    (start (K + 1,): pairs of end e are start[e]..start[e + 1] - 1, pair_end (P,), pair_omax (P,) float32)."""
    k = out32.size
    start = np.zeros(k + 1, dtype=np.int64)
    for e in range(k):
        cur = out32[e]
        n = 1
        for t in range(1, min(width, e + 1)):
            val = out32[e - t]
            if val > cur:
                cur = val
                n += 1
        start[e + 1] = start[e] + n
    pair_end = np.empty(start[k], dtype=np.int64)
    pair_omax = np.empty(start[k], dtype=np.float32)
    for e in range(k):
        p = start[e]
        cur = out32[e]
        pair_end[p] = e
        pair_omax[p] = cur
        for t in range(1, min(width, e + 1)):
            val = out32[e - t]
            if val > cur:
                cur = val
                p += 1
                pair_end[p] = e
                pair_omax[p] = cur
    return start, pair_end, pair_omax


@njit(cache=True)
def _cost(code, d, v):
    if code == 0:
        return d if d > v else v
    if code == 1:
        return d + v
    return v


@njit(cache=True)
def _scan(code, f_rev, base, seg_t, seg_p, ns, d1, dd, v1, dv, r, track, c_min, l_min):
    """min over t of f_rev[base + t] + cost(t) and its first t, over the segments of constant (end, O_max) pair;
    with ``track``, also the cheapest l at each t (c_min, l_min).

    Unrolled by hand on purpose: eight independent running minima over t mod 8 (merged at the end by value, then
    smallest t). The same loop with each step in a small compiled helper (even with ``inline="always"``) ran
    6x slower on SmolLM2 at K = 10^4 (paper-dp 3.0 s against 0.47 s, 2026-11-30, side by side on the idle
    machine), so the eight near-copies stay."""
    inf = np.inf
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = m8 = inf
    i0 = i1 = i2 = i3 = i4 = i5 = i6 = i7 = i8 = 0
    for q in range(ns):
        p = seg_p[q]
        a, b, c, s = d1[p, r], dd[p, r], v1[p, r], dv[p, r]
        t = seg_t[q]
        t_end = seg_t[q + 1]
        while t + 8 <= t_end:
            x = float(t)
            cost = _cost(code, a + (x) * b, c + (x) * s)
            if track and cost < c_min[t]:
                c_min[t] = cost
                l_min[t] = r
            y = f_rev[base + t] + cost
            if y < m0:
                m0 = y
                i0 = t
            cost = _cost(code, a + (x + 1.0) * b, c + (x + 1.0) * s)
            if track and cost < c_min[t + 1]:
                c_min[t + 1] = cost
                l_min[t + 1] = r
            y = f_rev[base + t + 1] + cost
            if y < m1:
                m1 = y
                i1 = t + 1
            cost = _cost(code, a + (x + 2.0) * b, c + (x + 2.0) * s)
            if track and cost < c_min[t + 2]:
                c_min[t + 2] = cost
                l_min[t + 2] = r
            y = f_rev[base + t + 2] + cost
            if y < m2:
                m2 = y
                i2 = t + 2
            cost = _cost(code, a + (x + 3.0) * b, c + (x + 3.0) * s)
            if track and cost < c_min[t + 3]:
                c_min[t + 3] = cost
                l_min[t + 3] = r
            y = f_rev[base + t + 3] + cost
            if y < m3:
                m3 = y
                i3 = t + 3
            cost = _cost(code, a + (x + 4.0) * b, c + (x + 4.0) * s)
            if track and cost < c_min[t + 4]:
                c_min[t + 4] = cost
                l_min[t + 4] = r
            y = f_rev[base + t + 4] + cost
            if y < m4:
                m4 = y
                i4 = t + 4
            cost = _cost(code, a + (x + 5.0) * b, c + (x + 5.0) * s)
            if track and cost < c_min[t + 5]:
                c_min[t + 5] = cost
                l_min[t + 5] = r
            y = f_rev[base + t + 5] + cost
            if y < m5:
                m5 = y
                i5 = t + 5
            cost = _cost(code, a + (x + 6.0) * b, c + (x + 6.0) * s)
            if track and cost < c_min[t + 6]:
                c_min[t + 6] = cost
                l_min[t + 6] = r
            y = f_rev[base + t + 6] + cost
            if y < m6:
                m6 = y
                i6 = t + 6
            cost = _cost(code, a + (x + 7.0) * b, c + (x + 7.0) * s)
            if track and cost < c_min[t + 7]:
                c_min[t + 7] = cost
                l_min[t + 7] = r
            y = f_rev[base + t + 7] + cost
            if y < m7:
                m7 = y
                i7 = t + 7
            t += 8
        while t < t_end:
            x = float(t)
            cost = _cost(code, a + x * b, c + x * s)
            if track and cost < c_min[t]:
                c_min[t] = cost
                l_min[t] = r
            y = f_rev[base + t] + cost
            if y < m8:
                m8 = y
                i8 = t
            t += 1
    best, first = m8, i8
    for m, i in ((m0, i0), (m1, i1), (m2, i2), (m3, i3), (m4, i4), (m5, i5), (m6, i6), (m7, i7)):
        if m < best or (m == best and i < first):
            best, first = m, i
    return best, first


@njit(cache=True)
def _segments(out32, e, n, start, seg_t, seg_p):
    """The lengths 0..n-1 of end e split where O_max changes: segment q is t in seg_t[q]..seg_t[q + 1] - 1 with
    pair seg_p[q]. Returns the number of segments."""
    cur = out32[e]
    p = start[e]
    ns = 0
    seg_t[0] = 0
    seg_p[0] = p
    for t in range(1, n):
        val = out32[e - t]
        if val > cur:
            cur = val
            p += 1
            ns += 1
            seg_t[ns] = t
            seg_p[ns] = p
    seg_t[ns + 1] = n
    return ns + 1


@njit(cache=True)
def affine_dp(out32, tmax, start, d1, dd, v1, dv, codes, batch_code):
    """The per-l DPs of the modes ``codes`` (f, arg: (modes, K + 1, l)) and, when ``batch_code`` >= 0 (which
    must be one of ``codes``), the DP whose transition takes the best l of each batch under that mode's cost
    (g (K + 1,), garg (2, K + 1): the last batch's t and l index). ``d1`` .. ``dv``: (pairs, l) stage times at
    b = 1 and their slopes in b."""
    k = out32.size
    nl = d1.shape[1]
    nm = codes.size
    track_m = -1
    for m in range(nm):
        if codes[m] == batch_code and track_m < 0:
            track_m = m
    if batch_code >= 0 and track_m < 0:
        raise ValueError("batch_code must be one of codes")
    w = 1
    for e in range(k):
        w = max(w, tmax[e])
    f_rev = np.full((nm, nl, k + 1), np.inf)  # f_rev[m, r, k - j] = f[m, j, r]: t runs forwards in memory
    f_rev[:, :, k] = 0.0
    arg = np.zeros((nm, k + 1, nl), dtype=np.int64)
    g_rev = np.full(k + 1, np.inf)
    g_rev[k] = 0.0
    garg = np.zeros((2, k + 1), dtype=np.int64)
    c_min = np.empty(w)
    l_min = np.zeros(w, dtype=np.int64)
    seg_t = np.empty(w + 1, dtype=np.int64)
    seg_p = np.empty(w + 1, dtype=np.int64)
    for e in range(k):
        n = tmax[e]
        ns = _segments(out32, e, n, start, seg_t, seg_p)
        base = k - e
        c_min[:n] = np.inf
        l_min[:n] = 0
        for r in range(nl):
            for m in range(nm):
                y, t = _scan(codes[m], f_rev[m, r], base, seg_t, seg_p, ns, d1, dd, v1, dv, r, m == track_m,
                             c_min, l_min)
                f_rev[m, r, base - 1] = y
                arg[m, e + 1, r] = t
        if batch_code >= 0:
            best = np.inf
            first = 0
            for t in range(n):
                y = g_rev[base + t] + c_min[t]
                if y < best:
                    best = y
                    first = t
            g_rev[base - 1] = best
            garg[0, e + 1] = first
            garg[1, e + 1] = l_min[first]
    f = np.empty((nm, k + 1, nl))
    for m in range(nm):
        for r in range(nl):
            for j in range(k + 1):
                f[m, j, r] = f_rev[m, r, k - j]
    return f, arg, g_rev[::-1].copy(), garg
