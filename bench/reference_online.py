"""A pure-Python, per-event reference of the online engine, written from docs/online.md, sharing no simulator code.

It is slow on purpose (one Python object per request, one predictor call per forward pass, a list scan per
admission) and exists to check :func:`specedge.online.simulate` (tests/online/test_reference.py) and to time it
against (bench/online.py). Scope: FCFS continuous batching and the size/age threshold, fixed l (l = 0: AD
rounds), pipelined or serial stages, equal-share or equal-finish uplink, acceptance from the expected rule or a
given matrix g[k][n] (request k in queue order, its own round n).
"""

from __future__ import annotations

import math

EPS = 1e-9


def uploads(arrival, work, rule):
    """Upload end per user, simulated event by event (arrivals sorted)."""
    n = len(arrival)
    end = [0.0] * n
    if rule == "equal-finish":
        # remaining work of the current busy period drains at rate 1; all of its users end together
        group, t_end = [], -math.inf
        for k in range(n):
            if arrival[k] > t_end and group:
                for j in group:
                    end[j] = t_end
                group = []
            t_end = max(t_end, arrival[k]) + work[k]
            group.append(k)
        for j in group:
            end[j] = t_end
        return end
    # equal share: advance time to the next arrival or the next finish, draining each active user's work at 1/n
    remaining = {}
    t = 0.0
    k = 0
    while k < n or remaining:
        nxt_arrival = arrival[k] if k < n else math.inf
        if remaining:
            j_min = min(remaining, key=lambda j: (remaining[j], j))
            t_fin = t + remaining[j_min] * len(remaining)
        else:
            t_fin = math.inf
        if nxt_arrival <= t_fin:
            dt = nxt_arrival - t
            for j in remaining:
                remaining[j] -= dt / len(remaining) if remaining else 0.0
            t = nxt_arrival
            remaining[k] = work[k]
            k += 1
        else:
            share = remaining[j_min]
            for j in list(remaining):
                remaining[j] -= share
            t = t_fin
            del remaining[j_min]
            end[j_min] = t
    return end


def _decode(pred, b, c0, n):
    return sum(float(pred.latency_s(b, 1.0, c0 + j)) for j in range(n))


def simulate(sc, arrival, inputs, outputs, upload_end, *, num_slots, max_batch, l, mode="sd-pipeline",
             g=None, min_group=1, max_wait_s=0.0, mem=None):
    """Per-request (start, first token, completion) in queue order (requests sorted by upload end by the caller)."""
    n = len(arrival)
    alpha = sc.alpha
    tokens_expected = (l + 1.0) if alpha == 1 else (1 - alpha ** (l + 1)) / (1 - alpha)
    f = sc.params.fronthaul_delay_s if l > 0 else 0.0
    slots = [{"members": [], "pad": 0.0, "opad": 0.0, "vend": 0.0} for _ in range(num_slots)]
    result = [[0.0, 0.0, 0.0] for _ in range(n)]
    sbs = mbs = 0.0
    head = done = cursor = skips = 0
    while done < n:
        s = slots[cursor]
        t = sbs if mode == "sd-pipeline" else mbs
        if s["members"]:
            t = max(t, s["vend"] + f)
        joiners = []
        waiting = [k for k in range(head, n) if upload_end[k] <= t]
        if len(s["members"]) < max_batch and waiting:
            if len(waiting) >= min_group or t - upload_end[head] >= max_wait_s:
                for k in waiting[: max_batch - len(s["members"])]:
                    pad = max(s["pad"], inputs[k]) if (s["members"] or joiners) else inputs[k]
                    opad = max(s["opad"], outputs[k]) if (s["members"] or joiners) else outputs[k]
                    size = len(s["members"]) + len(joiners) + 1
                    if mem is not None and mem[0] + mem[1] * size * (pad + opad) > mem[2]:
                        break
                    s["pad"], s["opad"] = pad, opad
                    joiners.append(k)
        if not s["members"] and not joiners:
            skips += 1
            if skips >= num_slots:
                nxt = upload_end[head]
                if min_group > 1:
                    nxt = upload_end[head] + max_wait_s
                    if head + min_group - 1 < n:
                        nxt = min(nxt, upload_end[head + min_group - 1])
                sbs, mbs, skips = max(sbs, nxt), max(mbs, nxt), 0
            cursor = (cursor + 1) % num_slots
            continue
        skips = 0
        head += len(joiners)
        cont = s["members"]
        bj, bc = len(joiners), len(cont)
        ij = max((inputs[k] for k in joiners), default=0)
        ctx = s["pad"] + max((m["committed"] for m in cont), default=0.0)
        td = tv = 0.0
        dp, vp = sc.draft_compute, sc.verify_compute
        if l > 0:
            if bj:
                td += float(dp.latency_s(bj, ij, 0.0)) + _decode(dp, bj, ij, l - 1)
                tv += float(vp.latency_s(bj, ij + l + 1, 0.0))
            if bc:
                td += _decode(dp, bc, ctx, l)
                tv += float(vp.latency_s(bc, l + 1, ctx))
        else:
            if bj:
                tv += float(vp.latency_s(bj, ij, 0.0))
            if bc:
                tv += float(vp.latency_s(bc, 1.0, ctx))
        if mode == "sd-pipeline":
            a = max(sbs, t) + td
            v = max(a + f, mbs) + tv
        else:
            a = max(mbs, t) + td
            v = a + f + tv
        sbs, mbs = a, v
        s["vend"] = v
        for k in joiners:
            result[k][0] = t
            cont.append({"k": k, "committed": 0.0, "round": 0})
        still = []
        for m in cont:
            k = m["k"]
            if l == 0:
                got = 1.0
            elif g is not None:
                got = min(g[k][m["round"]], l) + 1.0
            else:
                got = tokens_expected
            if m["round"] == 0:
                result[k][1] = v
            m["committed"] += got
            m["round"] += 1
            if m["committed"] >= outputs[k] - EPS:
                result[k][2] = v
                done += 1
            else:
                still.append(m)
        s["members"] = still
        if not still:
            s["pad"] = s["opad"] = 0.0
        cursor = (cursor + 1) % num_slots
    return result
