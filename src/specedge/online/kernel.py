"""The online engine's event loop, compiled with numba: slots visited round-robin, one stage job per visit.

State lives in plain arrays (:class:`specedge.online.engine.EngineState`) so that the loop can stop when it needs
the acceptance draws of requests not yet staged and resume where it stopped (see :mod:`specedge.online.engine`
for the model; this module is its inner loop only). Codes shared with :mod:`specedge.online.policies`:

admission ``adm[0]``: 0 FCFS, 1 size/age threshold (adm_f[0] = min group, adm_f[1] = max wait s),
2 memory-aware best fit, 3 plan (slot m takes the contiguous block plan_start[m] : plan_start[m] + plan_size[m]
once, at plan_ready[m]);
speculation ``lrule[0]``: 0 fixed l = lrule[1] (plan: per-slot plan_l), 1 goodput-driven (argmax over l = 1..lmax of
b L(l, alpha) / (t_draft + t_verify)), 2 off above load (l = lrule[1] while requests in system <= lrule_f[0],
else AD rounds), 3 SD/AD switch (l = lrule[1] or AD, whichever has the larger predicted goodput b L / max(t_draft, t_verify)
when the stages overlap, b / t_verify for AD), 4 plan.
"""

from __future__ import annotations

from numba import njit

NEED_STAGING = 1
DONE = 0
STEP = 2  # returned after ``max_jobs`` jobs (several cells sharing a verifier advance a job at a time)
STALLED = 3  # every batch empty, nobody admissible, and no later time at which that changes
_EPS = 1e-9


@njit(cache=True, inline="always")
def _interp(row, c):
    i = int(c)
    phi = c - i
    if phi == 0.0:
        return row[i]
    return (1.0 - phi) * row[i] + phi * row[i + 1]


@njit(cache=True)
def _decode_sum(cum_row, c0, n):
    if n <= 0:
        return 0.0
    i = int(c0)
    phi = c0 - i
    s0 = cum_row[i + n] - cum_row[i]
    if phi == 0.0:
        return s0
    return (1.0 - phi) * s0 + phi * (cum_row[i + 1 + n] - cum_row[i + 1])


@njit(cache=True)
def _stage_times(tb, bj, ij, bc, ctx, l, f_l):
    """(draft_s, verify_s) of a round: bj joiners padded to ij, bc continuing members at context ctx, length l."""
    d_p0, d_cum, v_p0, v_cont, d_host, v_host = tb
    td = 0.0
    tv = 0.0
    if l > 0:
        if bj > 0:
            td += d_p0[bj, ij] + _decode_sum(d_cum[bj], float(ij), l - 1)
            tv += v_p0[bj, ij + l + 1]
        if bc > 0:
            td += _decode_sum(d_cum[bc], ctx, l)
            tv += _interp(v_cont[bc, l], ctx)
        td += d_host[bj + bc, l]
    else:
        if bj > 0:
            tv += v_p0[bj, ij]
        if bc > 0:
            tv += _interp(v_cont[bc, 0], ctx)
    tv += v_host[bj + bc, l]
    return td, tv


@njit(cache=True)
def _choose_l(lrule, lrule_f, plan_l, m, tb, bj, ij, bc, ctx, ltab, in_system, pipelined):
    kind = lrule[0]
    if kind == 0:
        return lrule[1]
    if kind == 4:
        return plan_l[m]
    if kind == 2:
        return lrule[1] if in_system <= lrule_f[0] else 0
    b = bj + bc
    if kind == 1:
        best = 1
        best_g = -1.0
        for l in range(1, lrule[2] + 1):
            td, tv = _stage_times(tb, bj, ij, bc, ctx, l, 0.0)
            g = b * ltab[l] / (td + tv)
            if g > best_g:
                best_g = g
                best = l
        return best
    # kind 3: SD at lrule[1] vs AD, each judged by its bottleneck stage when the stages overlap (pipelined)
    l = lrule[1]
    td, tv = _stage_times(tb, bj, ij, bc, ctx, l, 0.0)
    cost = max(td, tv) if pipelined else td + tv
    g_sd = b * ltab[l] / cost
    td0, tv0 = _stage_times(tb, bj, ij, bc, ctx, 0, 0.0)
    g_ad = b * 1.0 / (td0 + tv0)
    return l if g_sd >= g_ad else 0


@njit(cache=True)
def _count_uploaded(up_end, head, t):
    """Number of queued requests (from head, sorted by upload end) whose upload has ended by t."""
    lo = head
    hi = up_end.size
    while lo < hi:
        mid = (lo + hi) // 2
        if up_end[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - head


@njit(cache=True)
def _fits(mem, n, pad, omax, inp, out):
    """Paper memory rule for a slot of n + 1 members at padded length max(pad, I) + max(O_max, O)."""
    length = max(pad, float(inp)) + max(omax, float(out))
    return mem[0] + mem[1] * (n + 1) * length <= mem[2]


@njit(cache=True)
def run(up_end, inp, out,  # requests in queue order
        start_s, first_s, done_s, rounds, slot_of,  # per-request outputs
        stage_g, pool_g, pool_free,  # acceptance rows
        s_n, s_req, s_row, s_pad, s_omax, s_vend, s_started, m_comm, m_round,  # slot state
        st_i, st_f, l_hist,  # scalars and counters
        adm, adm_f, lrule, lrule_f, plan_start, plan_size, plan_ready, plan_l,  # policy
        tb, ltab, use_g, mem, mode, f_delay, downlink, max_jobs=-1):
    """Run until every request is done (returns 0), staging is needed (returns 1) or, with ``max_jobs`` > 0, that
    many jobs have run (returns 2). See the module docstring."""
    n_req = up_end.size
    n_slots = s_n.size
    bmax = s_req.shape[1]
    width = stage_g.shape[0]
    # scalars: head, completed, cursor, staged_upto, skips, jobs, sum_b
    head = st_i[0]
    completed = st_i[1]
    cursor = st_i[2]
    staged_upto = st_i[3]
    skips = st_i[4]
    sbs_free = st_f[0]
    mbs_free = st_f[1]
    status = DONE
    job_limit = st_i[5] + max_jobs if max_jobs > 0 else -1
    lookahead = 1
    if adm[0] == 1 and adm_f[0] > 1:
        lookahead = int(adm_f[0])  # the threshold rule must see a whole group, or it would wait for ever
    while completed < n_req:
        if staged_upto < n_req and head + lookahead > staged_upto:
            status = NEED_STAGING
            break
        m = cursor
        n = s_n[m]
        t_free = sbs_free if mode != 1 else mbs_free
        t = t_free
        if n > 0 and s_vend[m] + f_delay > t:
            t = s_vend[m] + f_delay
        # ---------------------------------------------------------------- admission
        n_join = 0
        if adm[0] == 3:
            if s_started[m] == 0:
                if head + plan_size[m] > staged_upto:
                    status = NEED_STAGING
                    break
                s_started[m] = 1
                if plan_ready[m] > t:
                    t = plan_ready[m]
                n_join = plan_size[m]
        elif n < bmax and head < n_req:
            avail = _count_uploaded(up_end, head, t)
            room = bmax - n
            if min(avail, room) > staged_upto - head and staged_upto < n_req:
                status = NEED_STAGING  # stage more rather than let the staging width change who joins
                break
            if adm[0] == 1 and avail > 0:
                if avail < adm_f[0] and t - up_end[head] < adm_f[1]:
                    avail = 0
            if adm[0] == 2 and avail > 0:
                # best fit: the head joins the slot whose padded KV grows least (ties: this slot)
                k = head
                grow_here = ((n + 1) * (max(s_pad[m], float(inp[k])) + max(s_omax[m], float(out[k])))
                             - n * (s_pad[m] + s_omax[m]))
                for o in range(n_slots):
                    if o != m and s_n[o] < bmax and s_n[o] > 0:
                        g_o = ((s_n[o] + 1) * (max(s_pad[o], float(inp[k])) + max(s_omax[o], float(out[k])))
                               - s_n[o] * (s_pad[o] + s_omax[o]))
                        if g_o < grow_here and _fits(mem, s_n[o], s_pad[o], s_omax[o], inp[k], out[k]):
                            avail = 0
                            break
            while n_join < avail and n_join < room:
                k = head + n_join
                pad = s_pad[m] if n + n_join > 0 else 0.0
                omax = s_omax[m] if n + n_join > 0 else 0.0
                if not _fits(mem, n + n_join, pad, omax, inp[k], out[k]):
                    break
                # provisional: record the padding growth so the next candidate sees it
                s_pad[m] = max(pad, float(inp[k]))
                s_omax[m] = max(omax, float(out[k]))
                n_join += 1
        if n == 0 and n_join == 0:
            skips += 1
            if adm[0] != 3 and skips >= n_slots:
                # every slot is empty and nobody can join now: the SBS idles until admission becomes possible
                if head < n_req:
                    t_next = up_end[head]
                    if adm[0] == 1:
                        k2 = head + int(adm_f[0]) - 1
                        t_next = up_end[head] + adm_f[1]
                        if k2 < n_req and up_end[k2] < t_next:
                            t_next = up_end[k2]
                    if t_next <= (sbs_free if mode != 1 else mbs_free):
                        status = STALLED  # nothing can run and time cannot advance: a policy or engine bug
                        break
                    if t_next > sbs_free:
                        sbs_free = t_next
                    if t_next > mbs_free:
                        mbs_free = t_next
                skips = 0
            cursor = (m + 1) % n_slots
            continue
        skips = 0
        # join: members appended after the continuing ones
        for j in range(n_join):
            k = head + j
            row = pool_free[st_i[7]]
            st_i[7] -= 1
            if use_g:
                pool_g[row, :] = stage_g[k % width, :]
            s_req[m, n + j] = k
            s_row[m, n + j] = row
            m_comm[m, n + j] = 0.0
            m_round[m, n + j] = 0
            start_s[k] = t
            slot_of[k] = m
            if adm[0] == 3:
                if inp[k] > s_pad[m]:
                    s_pad[m] = float(inp[k])
                if out[k] > s_omax[m]:
                    s_omax[m] = float(out[k])
        head += n_join
        n_total = n + n_join
        # ---------------------------------------------------------------- the round
        ij = 0
        cmax = 0.0
        for i in range(n, n_total):
            if inp[s_req[m, i]] > ij:
                ij = inp[s_req[m, i]]
        for i in range(n):
            if m_comm[m, i] > cmax:
                cmax = m_comm[m, i]
        ctx = s_pad[m] + cmax
        in_system = head - completed + _count_uploaded(up_end, head, t)
        l = _choose_l(lrule, lrule_f, plan_l, m, tb, n_join, ij, n, ctx, ltab, in_system, mode != 1)
        td, tv = _stage_times(tb, n_join, ij, n, ctx, l, 0.0)
        f_l = f_delay if l > 0 else 0.0
        # two-stage recursion (mode 0 pipelined, 1 serial; AD rounds have no drafting job)
        if mode == 1:
            a = max(mbs_free, t) + td
            v = a + f_l + tv
        else:
            a = max(sbs_free, t) + td
            v = max(a + f_l, mbs_free) + tv
        sbs_free = a
        mbs_free = v
        s_vend[m] = v
        st_f[2] += td
        st_f[3] += tv
        st_i[5] += 1
        st_i[6] += n_total
        l_hist[l] += 1
        # ---------------------------------------------------------------- commit tokens, finish members
        i = 0
        while i < n_total:
            k = s_req[m, i]
            r = m_round[m, i]
            before = m_comm[m, i]
            if l == 0:
                tok = 1.0
            elif use_g:
                g = pool_g[s_row[m, i], r]
                tok = float(min(g, l) + 1)
            else:
                tok = ltab[l]
            comm = before + tok
            if r == 0:
                first_s[k] = v + downlink
            m_round[m, i] = r + 1
            if comm >= out[k] - _EPS:
                done_s[k] = v + downlink * (out[k] - before)
                rounds[k] = r + 1
                completed += 1
                st_i[7] += 1
                pool_free[st_i[7]] = s_row[m, i]
                last = n_total - 1
                s_req[m, i] = s_req[m, last]
                s_row[m, i] = s_row[m, last]
                m_comm[m, i] = m_comm[m, last]
                m_round[m, i] = m_round[m, last]
                n_total -= 1
                continue
            m_comm[m, i] = comm
            i += 1
        s_n[m] = n_total
        if n_total == 0:
            s_pad[m] = 0.0
            s_omax[m] = 0.0
        cursor = (m + 1) % n_slots
        if job_limit >= 0 and st_i[5] >= job_limit and completed < n_req:
            status = STEP
            break
    st_i[0] = head
    st_i[1] = completed
    st_i[2] = cursor
    st_i[4] = skips
    st_f[0] = sbs_free
    st_f[1] = mbs_free
    return status
