"""The shared-verifier driver of :mod:`specedge.multicell.online`, compiled with numba (same peek / choose /
resolve steps, the built-in verifier policies only). It calls the online engine's own kernel
(:func:`specedge.online.kernel.run`) one job at a time from compiled code, so a job costs a kernel call instead of a
Python step; the Python driver stays the reference (tests/multicell: equal results, bit for bit).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.typed import List

from specedge.online import engine, kernel

#: built-in verifier policies by code (anything else runs through the Python driver)
POLICY_CODES = {"fcfs": 0, "round-robin": 1, "shortest-verify-first": 2, "pipeline-aware": 3}


@njit(cache=True)
def _key(policy, g, index, last, num_cells, pf):
    ready = pf[g, 0]
    cell = float(index[g])
    if policy == 0:
        return ready, cell, 0.0
    if policy == 1:
        return float((index[g] - last - 1) % num_cells), ready, 0.0
    if policy == 2:
        return pf[g, 1], ready, cell
    return pf[g, 3], ready, cell


@njit(cache=True)
def _less(a, b):
    if a[0] != b[0]:
        return a[0] < b[0]
    if a[1] != b[1]:
        return a[1] < b[1]
    return a[2] < b[2]


@njit(cache=True)
def run_group(cells, f_delay, bits_token, verdict_bits, policy, index, num_cells, pf, pi, has, need, done,
              fin, fin_before, fin_n, join, mbs, busy, fh, log, log_n, shares):
    """Advance a group of cells (one MBS) until all are done (returns -1) or cell g needs staging (returns g).

    pf[g] = (ready, verify, draft, idle_at), pi[g] = (slot, l, members) of cell g's pending job; mbs = (free, last);
    busy[g] = (drafting, verification) seconds; fh[g] = fronthaul bits; log rows (cell, ready, start, end);
    shares[g][k] += request k's (verification s, drafting s, bits) of each job (weights as
    :func:`specedge.multicell.online.share_weights`)."""
    ng = len(cells)
    one = 1
    while True:
        for g in range(ng):
            if not need[g] or done[g]:
                continue
            args = cells[g]
            s_n = args[11]
            s_req = args[12]
            m_comm = args[18]
            st_i = args[20]
            st_f = args[21]
            l_hist = args[22]
            done_s = args[5]
            n_before = s_n.copy()
            req_before = s_req.copy()
            comm_before = m_comm.copy()
            hist_before = l_hist.copy()
            head_before = st_i[0]
            members_before = st_i[6]
            st_f[1] = mbs[0]
            st_f[2] = 0.0
            st_f[3] = 0.0
            status = kernel.run(*args, one)
            if status == kernel.NEED_STAGING:
                return g
            if status != kernel.DONE and status != kernel.STEP:
                return -2 - g
            need[g] = False
            if st_i[6] == members_before and status == kernel.DONE:
                done[g] = True
                has[g] = False
                continue
            m = (st_i[2] - 1) % s_n.size
            lv = 0
            for j in range(l_hist.size):
                if l_hist[j] != hist_before[j]:
                    lv = j
                    break
            f_l = f_delay[g] if lv > 0 else 0.0
            ready = st_f[0] + f_l
            k = 0
            for i in range(n_before[m]):
                r = req_before[m, i]
                if done_s[r] != 0.0:
                    fin[g, k] = r
                    fin_before[g, k] = comm_before[m, i]
                    k += 1
            for r in range(head_before, st_i[0]):
                if done_s[r] != 0.0:
                    fin[g, k] = r
                    fin_before[g, k] = 0.0
                    k += 1
            fin_n[g] = k
            join[g, 0] = head_before
            join[g, 1] = st_i[0]
            busy_slots = 0
            for j in range(s_n.size):
                if s_n[j] != 0:
                    busy_slots += 1
            pf[g, 0] = ready
            pf[g, 1] = st_f[3]
            pf[g, 2] = st_f[2]
            pf[g, 3] = ready + max(busy_slots - 1, 0) * st_f[2]
            pi[g, 0] = m
            pi[g, 1] = lv
            pi[g, 2] = st_i[6] - members_before
            has[g] = True
            # per-request shares of this job (same weights and order of operations as the Python driver)
            inp = args[1]
            sh = shares[g]
            extra = lv + 1.0 if lv > 0 else 0.0
            wsum = 0.0
            for i in range(n_before[m]):
                wsum += extra if lv > 0 else 1.0
            for r in range(head_before, st_i[0]):
                wsum += float(inp[r]) + extra
            for i in range(n_before[m]):
                r = req_before[m, i]
                wi = (extra if lv > 0 else 1.0) / wsum
                sh[r, 0] += wi * st_f[3]
                sh[r, 1] += wi * st_f[2]
                if lv > 0:
                    sh[r, 2] += lv * bits_token[g] + verdict_bits
            for r in range(head_before, st_i[0]):
                wi = (float(inp[r]) + extra) / wsum
                sh[r, 0] += wi * st_f[3]
                sh[r, 1] += wi * st_f[2]
                if lv > 0:
                    sh[r, 2] += lv * bits_token[g] + verdict_bits
        best = -1
        waiting = 0
        for g in range(ng):
            if has[g]:
                waiting += 1
                if best < 0 or _less(_key(policy, g, index, int(mbs[1]), num_cells, pf),
                                     _key(policy, best, index, int(mbs[1]), num_cells, pf)):
                    best = g
        if best < 0:
            return -1
        args = cells[best]
        first_s = args[4]
        done_s = args[5]
        out = args[2]
        s_vend = args[16]
        downlink = args[-1]
        v = max(pf[best, 0], mbs[0]) + pf[best, 1]
        if log_n[0] < log.shape[0]:
            log[log_n[0], 0] = index[best]
            log[log_n[0], 1] = pf[best, 0]
            log[log_n[0], 2] = v - pf[best, 1]
            log[log_n[0], 3] = v
            log_n[0] += 1
        s_vend[pi[best, 0]] = v
        for r in range(join[best, 0], join[best, 1]):
            first_s[r] = v + downlink
        for i in range(fin_n[best]):
            r = fin[best, i]
            done_s[r] = v + downlink * (out[r] - fin_before[best, i])
        busy[best, 0] += pf[best, 2]
        busy[best, 1] += pf[best, 1]
        if pi[best, 1] > 0:
            b = float(pi[best, 2])
            fh[best] += b * float(pi[best, 1]) * bits_token[best] + b * verdict_bits
        mbs[0] = v
        mbs[1] = index[best]
        has[best] = False
        need[best] = True


def drive(group, *, policy: str, num_cells: int, payload, record: bool):
    """Run one MBS's cells (``CellState`` objects of :mod:`specedge.multicell.online`) through :func:`run_group`;
    stages acceptance draws in Python when a cell asks. Returns the log array (empty unless ``record``)."""
    ng = len(group)
    cells = List()
    for c in group:
        cells.append(c.state.args)
    bmax = max(c.state.args[12].shape[1] for c in group)
    pf = np.zeros((ng, 4))
    pi = np.zeros((ng, 3), np.int64)
    has = np.zeros(ng, np.bool_)
    need = np.ones(ng, np.bool_)
    done = np.zeros(ng, np.bool_)
    fin = np.zeros((ng, bmax), np.int64)
    fin_before = np.zeros((ng, bmax))
    fin_n = np.zeros(ng, np.int64)
    join = np.zeros((ng, 2), np.int64)
    mbs = np.array([0.0, -1.0])
    busy = np.zeros((ng, 2))
    fh = np.zeros(ng)
    cap = sum(c.state.workload.num_requests for c in group) * 2048 if record else 0
    log = np.zeros((cap, 4))
    log_n = np.zeros(1, np.int64)
    index = np.array([c.index for c in group], np.int64)
    f_delay = np.array([c.f_delay_s for c in group])
    bits_token = np.array([float(payload.draft_bits(1.0, 1.0, c.scenario.target.vocab_size)) for c in group])
    shares = List()
    for c in group:
        shares.append(c.shares)
    while True:
        g = run_group(cells, f_delay, bits_token, float(payload.verdict_bits), POLICY_CODES[policy], index,
                      int(num_cells), pf, pi, has, need, done, fin, fin_before, fin_n, join, mbs, busy, fh, log,
                      log_n, shares)
        if g == -1:
            break
        if g < -1:
            c = group[-2 - g]
            raise RuntimeError(f"online engine stalled in cell {c.index} at request {int(c.state.st_i[0])}: no "
                               "batch can run and admission never becomes possible")
        engine.stage(group[g].state)
    if record and log_n[0] >= cap:
        raise RuntimeError("verification log overflow")  # pragma: no cover - cap is 2048 jobs per request
    for j, c in enumerate(group):
        c.sbs_busy_s, c.mbs_busy_s, c.fronthaul_bits = float(busy[j, 0]), float(busy[j, 1]), float(fh[j])
    return log[: log_n[0]].copy()
