"""The compiled recurrence behind :func:`specedge.policies.dp.solve` for affine predictors (kept apart so that
numba's on-disk cache survives edits to the Python around it).

Batches ending at e (inclusive) with t + 1 tasks, t < tmax[e]; O_max of such a batch is the running maximum of
the planning outputs e, e - 1, ..., e - t, which changes only at a few t (the suffix maxima): each change starts
the next (end, O_max) pair, whose stage times at b = 1 (``d1``, ``v1``) and slope in b (``dd``, ``dv``) the
caller evaluated once. The cost of (e, t, l) is then ``d1[p, l] + t * dd[p, l]`` (the same two float64
operations, in the same order, as the array expression it replaces, so the plans and costs are bit-identical),
combined per mode (0: max(D, V), 1: D + V, 2: V) and added to the DP value at e - t; the first minimum over t
wins (the smallest last batch, as ``np.argmin``). Nothing K x W is stored: O(K l) memory.
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
def affine_dp(out32, tmax, start, d1, dd, v1, dv, codes, batch_code):
    """The per-l DPs of the modes ``codes`` (f, arg: (modes, K + 1, l)) and, when ``batch_code`` >= 0, the DP
    whose transition takes the best l of each batch under that mode's cost (g (K + 1,), garg (2, K + 1): the
    last batch's t and l index). ``d1`` .. ``dv``: (pairs, l) stage times at b = 1 and their slopes in b.
    The loops over l are branch-free so that they vectorise."""
    k = out32.size
    nl = d1.shape[1]
    nm = codes.size
    f = np.full((nm, k + 1, nl), np.inf)
    arg = np.zeros((nm, k + 1, nl), dtype=np.int64)
    f[:, 0, :] = 0.0
    g = np.full(k + 1, np.inf)
    g[0] = 0.0
    garg = np.zeros((2, k + 1), dtype=np.int64)
    best = np.empty((nm, nl))
    best_t = np.zeros((nm, nl), dtype=np.int64)
    d = np.empty(nl)
    v = np.empty(nl)
    c = np.empty(nl)
    for e in range(k):
        best[:, :] = np.inf
        best_t[:, :] = 0
        g_best = np.inf
        g_t = 0
        g_l = 0
        cur = out32[e]
        p = start[e]
        for t in range(tmax[e]):
            if t > 0:
                val = out32[e - t]
                if val > cur:
                    cur = val
                    p += 1
            x = float(t)
            j = e - t
            for r in range(nl):
                d[r] = d1[p, r] + x * dd[p, r]
                v[r] = v1[p, r] + x * dv[p, r]
            for m in range(nm):
                code = codes[m]
                if code == 0:
                    for r in range(nl):
                        c[r] = max(d[r], v[r])
                elif code == 1:
                    for r in range(nl):
                        c[r] = d[r] + v[r]
                else:
                    for r in range(nl):
                        c[r] = v[r]
                for r in range(nl):
                    tot = f[m, j, r] + c[r]
                    sm = tot < best[m, r]
                    best[m, r] = tot if sm else best[m, r]
                    best_t[m, r] = t if sm else best_t[m, r]
            if batch_code >= 0:
                if batch_code == 0:
                    for r in range(nl):
                        c[r] = max(d[r], v[r])
                elif batch_code == 1:
                    for r in range(nl):
                        c[r] = d[r] + v[r]
                else:
                    for r in range(nl):
                        c[r] = v[r]
                c_min = np.inf
                l_min = 0
                for r in range(nl):
                    if c[r] < c_min:
                        c_min = c[r]
                        l_min = r
                tot = g[j] + c_min
                if tot < g_best:
                    g_best = tot
                    g_t = t
                    g_l = l_min
        f[:, e + 1, :] = best
        arg[:, e + 1, :] = best_t
        if batch_code >= 0:
            g[e + 1] = g_best
            garg[0, e + 1] = g_t
            garg[1, e + 1] = g_l
    return f, arg, g, garg
