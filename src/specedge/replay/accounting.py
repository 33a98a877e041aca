"""Per-task round accounting of the replay, compiled: tokens committed per (round, task), each task's round count,
and per (round, batch) the live members and the padded context, without (rounds x tasks) intermediate arrays.

For position k (tasks grouped by batch) in round n with speculation length l = l[n, batch(k)], the tokens
committed are ``min(G[n, task(k)], l) + 1`` (sampled sources; an extrapolated round when l > cap[n, task(k)]),
``L(l, alpha)`` (expected) or 1 (AD). A task is live in round n while the tokens committed before it are below its
output (minus ``eps``), exactly as :func:`specedge.replay.core.simulate` defined it with cumulative sums: the
same additions in the same order, so the results are identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SAMPLED, EXPECTED, ONE_TOKEN, TRACE = 0, 1, 2, 3


@njit(cache=True)
def account(kind, g, cap, l_rm, tokens_by_l, batch_of, order, output, eps, trace_start, accepted, drafted, no_cap):
    """``kind`` TRACE: a recorded source replayed without uniforms, read in place: task t in round n replays
    stream row (trace_start[t] + n) mod len, G = accepted, cap = drafted when fully accepted else ``no_cap`` (the
    values :meth:`TraceAcceptance.draw` gives, without its (rounds x tasks) arrays). Returns (rounds per position, tokens after the last round, tokens before it, extrapolated rounds, live
    members per (round, batch), most tokens committed by a live member before each (round, batch), whether
    every task finished within ``l_rm.shape[0]`` rounds)."""
    r_n, m_n = l_rm.shape
    k_n = output.size
    cum = np.zeros(k_n)
    before_last = np.zeros(k_n)
    n_rounds = np.zeros(k_n, dtype=np.int64)
    extrap = np.zeros(k_n, dtype=np.int64)
    done = np.zeros(k_n, dtype=np.bool_)
    batch_size = np.zeros((r_n, m_n), dtype=np.int64)
    ctx_extra = np.zeros((r_n, m_n))
    left = k_n
    for n in range(r_n):
        if left == 0:
            break
        for k in range(k_n):
            if done[k]:
                continue
            b = batch_of[k]
            l = l_rm[n, b]
            if kind == SAMPLED or kind == TRACE:
                t = order[k]
                if kind == SAMPLED:
                    x = g[n, t]
                    y = cap[n, t]
                else:
                    row = (trace_start[t] + n) % accepted.size
                    x = accepted[row]
                    y = drafted[row] if x == drafted[row] else no_cap
                c = float((x if x < l else l) + 1)
                if l > y:
                    extrap[k] += 1
            elif kind == EXPECTED:
                c = tokens_by_l[l]
            else:
                c = 1.0
            before = cum[k]
            batch_size[n, b] += 1
            if before > ctx_extra[n, b]:
                ctx_extra[n, b] = before
            cum[k] = before + c
            before_last[k] = before
            n_rounds[k] = n + 1
            if not cum[k] < output[k] - eps:
                done[k] = True
                left -= 1
    return n_rounds, cum, before_last, extrap, batch_size, ctx_extra, left == 0
