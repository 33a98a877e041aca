"""Several cells sharing a verifier, served by the online engine (:mod:`specedge.online`): one engine, N states.

Each cell c is an ordinary online run (its own scenario from :meth:`Topology.cell_scenario`: users, uplink band,
SBS device and draft; its own workload and online policy) held as an :class:`specedge.online.engine.EngineState`.
The only coupling between cells is the verifier: in one cell the engine computes a job's verification end as
``v = max(a + f, mbs_free) + t_v`` (:mod:`specedge.online`); here every MBS has one clock ``mbs_free`` shared by
its cells. The driver advances the cells one job at a time:

1. *peek*: each cell without a pending job runs its next job through the kernel with its MBS clock set to the
   shared one as it is now, which yields the job's ready time r = a + f (draft end plus fronthaul, exactly as the
   kernel adds them) and its verification time t_v (the kernel's own stage tables);
2. *choose*: the MBS's verifier policy (:mod:`specedge.multicell.scheduling`) picks one pending job among its
   cells (a cell's jobs reach the MBS in the order the cell issues them, as in one cell);
3. *resolve*: v = max(r, mbs_free) + t_v, the same expression the kernel evaluates; the job's verify end, its
   joiners' first-token times and its finishers' completion times are rewritten from the peeked v0 = r + t_v to v
   (with the kernel's own formulas), and mbs_free = v.

A cell's drafting never waits on other cells except through its own batches' verify ends, as in one cell; with
one cell and FCFS the result equals :func:`specedge.online.simulate` bit for bit (tests/multicell).
In the serial recursion (``sd-serial``, and AD serving, whose rounds start when the MBS is free) a round is formed
at the MBS time known when the cell's previous job was resolved; if other cells' jobs are verified before it, its
verification waits (v = max(r, mbs_free) + t_v) but requests that upload meanwhile join the cell's next round [A].
With one cell both times coincide, so the equality with the online simulator holds in every mode.

Per-cell metrics are :func:`specedge.online.metrics.summarize` of each cell's run; energy
(:mod:`specedge.multicell.energy`) is per node busy/idle over the common window, the users' transmit energy
p (u_k - a_k) and e_bit (D_up + D_down) per job on the fronthaul; per request, each request's share of every
job it took part in (by verified positions), its node's idle energy split equally, its own upload and its share
of the fronthaul bits (:func:`request_energy_j`; the shares are kept by both drivers as the jobs run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.errors import InputError
from specedge.online import engine as online_engine
from specedge.online import kernel
from specedge.multicell.energy import NodePower, fronthaul_energy_j, transmit_energy_j
from specedge.multicell.scheduling import VerifyQueue, get_verifier_policy

_SEED_CELL = 0x13C0  # workload stream of cell c: seed + c * this


@dataclass
class _Pending:
    m: int
    ready_s: float
    verify_s: float
    draft_s: float
    l: int
    members: int
    joiners: np.ndarray
    finishers: np.ndarray
    before: np.ndarray
    idle_at_s: float = 0.0
    #: the round's shape as the kernel costed it: joiners, their longest input, continuing members, their context
    shape: tuple = (0, 0, 0, 0.0)


@dataclass(eq=False)
class CellState:
    index: int
    mbs: int
    scenario: object
    state: online_engine.EngineState
    f_delay_s: float
    done: bool = False
    pending: _Pending | None = None
    sbs_busy_s: float = 0.0
    mbs_busy_s: float = 0.0
    fronthaul_bits: float = 0.0
    #: per request (queue order): its shares of verification seconds, drafting seconds and fronthaul bits
    shares: np.ndarray | None = None
    #: fronthaul bits per member of an SD round: per draft token, and the verdict
    member_bits: tuple = (0.0, 0.0)


def share_weights(l: int, n_old: int, joiner_inputs: np.ndarray) -> np.ndarray:
    """A round's members' shares of its busy time [A]: by the positions each is verified at, l + 1 for a
    continuing member and I_k + l + 1 for a joiner (AD rounds: 1 and I_k); normalised to sum to 1."""
    extra = l + 1.0 if l > 0 else 0.0
    w = np.concatenate((np.full(n_old, extra if l > 0 else 1.0), joiner_inputs.astype(np.float64) + extra))
    total = 0.0
    for x in w.tolist():  # in order, as the compiled driver adds them (numpy's pairwise sum may differ in the last bit)
        total += x
    return w / total


def _peek(cell: CellState, mbs_free: float) -> _Pending | None:
    st = cell.state
    a = st.args
    s_n, s_req, m_comm, l_hist = a[11], a[12], a[18], a[22]
    done_s = a[5]
    st_i, st_f = st.st_i, st.st_f
    n_before = s_n.copy()
    req_before = s_req.copy()
    comm_before = m_comm.copy()
    hist_before = l_hist.copy()
    pad_before = a[14].copy()
    head_before = int(st_i[0])
    members_before = int(st_i[6])
    st_f[1] = mbs_free
    st_f[2] = 0.0
    st_f[3] = 0.0
    status = online_engine.advance(st, max_jobs=1)
    if int(st_i[6]) == members_before and status == kernel.DONE:
        return None
    m = (int(st_i[2]) - 1) % s_n.size  # the kernel moves its cursor past the slot it just served
    l = int(np.flatnonzero(l_hist != hist_before)[0])
    f_l = cell.f_delay_s if l > 0 else 0.0
    ready = float(st_f[0]) + f_l
    old = req_before[m, : n_before[m]]
    joiners = np.arange(head_before, int(st_i[0]), dtype=np.int64)
    members = np.concatenate((old, joiners))
    before = np.concatenate((comm_before[m, : n_before[m]], np.zeros(joiners.size)))
    fin = done_s[members] != 0.0
    p = _Pending(m, ready, float(st_f[3]), float(st_f[2]), l, int(st_i[6]) - members_before, joiners,
                 members[fin], before[fin])
    n_old = int(n_before[m])
    ij = int(a[1][joiners].max()) if joiners.size else 0
    # the kernel's context of the continuing members: the slot's padded input (joiners included) + most committed
    p.shape = (int(joiners.size), ij, n_old,
               float(max(pad_before[m], ij) + comm_before[m, :n_old].max()) if n_old else 0.0)
    if cell.shares is not None:
        w = share_weights(l, n_old, a[1][joiners])
        cell.shares[members, 0] += w * p.verify_s
        cell.shares[members, 1] += w * p.draft_s
        if l > 0:
            cell.shares[members, 2] += l * cell.member_bits[0] + cell.member_bits[1]
    # the time the cell's SBS runs out of drafting if this job waits: the other busy slots' rounds can still be
    # drafted, about one drafting time each [A] (pipeline-aware policy)
    p.idle_at_s = ready + max(int(np.count_nonzero(s_n)) - 1, 0) * p.draft_s
    return p


def _resolve(cell: CellState, p: _Pending, mbs_free: float, payload, vocab: int, log) -> float:
    a = cell.state.args
    first_s, done_s, out, s_vend = a[4], a[5], a[2], a[16]
    downlink = a[-1]
    v = max(p.ready_s, mbs_free) + p.verify_s
    if log is not None:
        log.append((cell.index, p.ready_s, v - p.verify_s, v))
    s_vend[p.m] = v
    first_s[p.joiners] = v + downlink
    if p.finishers.size:
        done_s[p.finishers] = v + downlink * (out[p.finishers] - p.before)
    cell.sbs_busy_s += p.draft_s
    cell.mbs_busy_s += p.verify_s
    if p.l > 0 and payload is not None:
        cell.fronthaul_bits += float(payload.draft_bits(p.members, p.l, vocab) + payload.verdict_bits_total(p.members))
    return v


@dataclass(frozen=True, eq=False)
class MultiCellRun:
    """Per-cell online runs (:class:`specedge.online.engine.OnlineRun`) and the shared verifiers' busy times."""

    topology: object
    cells: tuple
    scenarios: tuple
    runs: tuple
    fronthaul_bits: tuple
    verifier_policy: str
    #: per MBS, every verification job as (cell, ready_s, start_s, end_s) when ``record=True``, else empty
    verify_log: tuple = ()
    #: per cell, per request (request order): its shares of verification s, drafting s and fronthaul bits
    request_shares: tuple = ()


def simulate(topology, workloads, policy="fcfs", config=None, *, verifier_policy="fcfs", seed: int = 0,
             scenarios=None, record: bool = False, driver: str = "numba") -> MultiCellRun:
    """Serve one workload per cell (``workloads[c]``) with every cell's verification on its MBS.

    ``policy``: the online policy of every cell (name or instance); ``verifier_policy``: the MBSs' scheduling
    rule (:mod:`specedge.multicell.scheduling`). ``driver``: "numba" (:mod:`specedge.multicell.fast`, built-in
    verifier policies) or "python" (this module's loop, any policy; the reference). ``scenarios``: the cells'
    scenarios (default ``topology.cell_scenario(c, seed=seed, tasks=1)``).
    """
    config = config or online_engine.OnlineConfig()
    if len(workloads) != topology.num_cells:
        raise InputError(f"{len(workloads)} workloads for {topology.num_cells} cells")
    scs = scenarios or tuple(topology.cell_scenario(c, seed=seed, tasks=1) for c in range(topology.num_cells))
    vpol = get_verifier_policy(verifier_policy)
    empty = [topology.cells[c].name for c, w in enumerate(workloads) if w.num_requests == 0]
    if empty:
        raise InputError(f"cell(s) {', '.join(empty)} get no requests (association or workload); give every cell "
                         "some, or drop those cells from the topology")
    cells = []
    for c, (sc, w) in enumerate(zip(scs, workloads)):
        st = online_engine.prepare(sc, w, policy, config, seed=seed + c * _SEED_CELL)
        f = 0.0 if st.mode == "ad" else float(sc.params.fronthaul_delay_s)
        bits = (float(topology.payload.draft_bits(1.0, 1.0, sc.target.vocab_size)),
                float(topology.payload.verdict_bits))
        cells.append(CellState(c, topology.cells[c].mbs, sc, st, f, shares=np.zeros((w.num_requests, 3)),
                               member_bits=bits))
    logs = []
    from specedge.multicell.fast import POLICY_CODES, drive

    compiled = driver == "numba" and isinstance(verifier_policy, str) and verifier_policy in POLICY_CODES
    for mbs in range(len(topology.mbs)):
        group = [c for c in cells if c.mbs == mbs]
        if not group:  # an MBS no cell uses (cell-to-MBS association); it is off [A]
            logs.append([])
            continue
        if compiled:
            logs.append(drive(group, policy=verifier_policy, num_cells=topology.num_cells, payload=topology.payload,
                              record=record))
            continue
        log = [] if record else None
        logs.append(log if log is not None else [])
        index = np.array([c.index for c in group], dtype=np.int64)
        ready = np.zeros(len(group))
        verify = np.zeros(len(group))
        idle_at = np.zeros(len(group))
        has = np.zeros(len(group), dtype=bool)
        mbs_free = 0.0
        last = -1
        todo = list(range(len(group)))  # cells to peek: all at first, then the one just served
        while True:
            for g in todo:
                c = group[g]
                c.pending = _peek(c, mbs_free)
                if c.pending is None:
                    c.done = True
                    has[g] = False
                else:
                    has[g] = True
                    ready[g], verify[g], idle_at[g] = c.pending.ready_s, c.pending.verify_s, c.pending.idle_at_s
            waiting = np.flatnonzero(has)
            if waiting.size == 0:
                break
            if waiting.size == 1:
                g = int(waiting[0])
            else:
                q = VerifyQueue(index[waiting], ready[waiting], verify[waiting], idle_at[waiting], mbs_free, last,
                                topology.num_cells)
                g = int(waiting[int(vpol.choose(q))])
            pick = group[g]
            mbs_free = _resolve(pick, pick.pending, mbs_free, topology.payload, pick.scenario.target.vocab_size,
                                log)
            last = pick.index
            pick.pending = None
            todo = [g]
    runs = []
    shares = []
    for c in cells:
        st = c.state
        st.st_f[2] = c.sbs_busy_s
        st.st_f[3] = c.mbs_busy_s
        runs.append(online_engine.result(st))
        inv = np.empty_like(st.order)
        inv[st.order] = np.arange(st.order.size)
        shares.append(c.shares[inv])  # queue order -> request order
    return MultiCellRun(topology, tuple(range(len(cells))), tuple(scs), tuple(runs),
                        tuple(c.fronthaul_bits for c in cells), getattr(vpol, "policy_name", str(vpol)),
                        tuple(np.array(lg, dtype=np.float64).reshape(-1, 4) for lg in logs), tuple(shares))


def energy(run: MultiCellRun) -> dict:
    """Energy of a multi-cell run over its window (first arrival to last completion): see the module docstring.
    ``per_request_j``: one array per cell (request order) of each request's energy (:func:`request_energy_j`)."""
    start = min(float(r.workload.arrival_s.min()) for r in run.runs)
    end = max(float(r.completion_s.max()) for r in run.runs)
    window = end - start
    total = 0.0
    parts: dict = {}
    topo = run.topology
    for mbs in range(len(topo.mbs)):
        members = [i for i in run.cells if topo.cells[i].mbs == mbs]
        if not members:
            continue
        power = NodePower.from_card(run.scenarios[members[0]].verify_device)
        busy = sum(run.runs[i].mbs_busy_s for i in members)
        parts[f"mbs_{topo.mbs[mbs].name}_j"] = float(power.energy_j(window, min(busy, window)))
    for i in run.cells:
        sc, r = run.scenarios[i], run.runs[i]
        if topo.drafting == "sbs":
            power = NodePower.from_card(sc.draft_device)
            parts[f"sbs_{topo.cells[i].name}_j"] = float(power.energy_j(window, min(r.sbs_busy_s, window)))
        else:
            power = NodePower.from_card(sc.draft_device)
            parts[f"devices_{topo.cells[i].name}_j"] = (power.busy_w - power.idle_w) * r.sbs_busy_s
        parts[f"transmit_{topo.cells[i].name}_j"] = float(
            transmit_energy_j(sc.params.tx_power_w, r.upload_end_s - r.workload.arrival_s).sum())
    parts["fronthaul_j"] = float(fronthaul_energy_j(sum(run.fronthaul_bits), topo.fronthaul_j_per_bit))
    total = float(sum(parts.values()))
    tokens = float(sum(r.workload.output_tokens.sum() for r in run.runs))
    requests = sum(r.workload.num_requests for r in run.runs)
    return {"energy_j": total, "energy_j_per_token": total / tokens, "energy_j_per_request": total / requests,
            "energy_window_s": window, "energy_parts_j": parts,
            "per_request_j": request_energy_j(run, window) if run.request_shares else ()}


def request_energy_j(run: MultiCellRun, window_s: float) -> tuple:
    """Each request's energy [A], one array per cell (request order): its shares of the busy increments of the
    passes it took part in ((P_busy - P_idle) x its share of each job's seconds, shares by verified positions,
    :func:`share_weights`), the idle energy of its MBS (and SBS) over the window split equally among the requests
    that node served, its own upload's transmit energy p (u_k - a_k), and e_bit x its share of the fronthaul bits.
    They sum to :func:`energy`'s total (tested)."""
    topo = run.topology
    out = []
    served = {}
    for i in run.cells:
        served[topo.cells[i].mbs] = served.get(topo.cells[i].mbs, 0) + run.runs[i].workload.num_requests
    for i in run.cells:
        sc, r, sh = run.scenarios[i], run.runs[i], run.request_shares[i]
        mbs = NodePower.from_card(sc.verify_device)
        draft = NodePower.from_card(sc.draft_device)
        e = (mbs.busy_w - mbs.idle_w) * sh[:, 0] + mbs.idle_w * window_s / served[topo.cells[i].mbs]
        e = e + (draft.busy_w - draft.idle_w) * sh[:, 1]
        if topo.drafting == "sbs":
            e = e + draft.idle_w * window_s / r.workload.num_requests
        e = e + transmit_energy_j(sc.params.tx_power_w, r.upload_end_s - r.workload.arrival_s)
        e = e + fronthaul_energy_j(sh[:, 2], topo.fronthaul_j_per_bit)
        out.append(e)
    return tuple(out)


def merged_run(run: MultiCellRun) -> online_engine.OnlineRun:
    """All cells' requests as one :class:`OnlineRun` (sorted by arrival) for the online metrics: SBS busy time is
    the mean over cells (so ``sbs_utilisation`` is the mean cell's) and MBS busy time the mean over MBSs [A]."""
    from specedge.online.workload import Workload

    runs = run.runs
    arrival = np.concatenate([r.workload.arrival_s for r in runs])
    order = np.argsort(arrival, kind="stable")
    cat = lambda f: np.concatenate([getattr(r, f) for r in runs])[order]  # noqa: E731
    wcat = lambda f: np.concatenate([getattr(r.workload, f) for r in runs])[order]  # noqa: E731
    w = Workload(arrival[order], wcat("input_tokens"), wcat("output_tokens"), wcat("distance_m"),
                 name=f"{len(runs)} cells: {runs[0].workload.name}")
    hist_len = max(r.l_histogram.size for r in runs)
    hist = np.zeros(hist_len, np.int64)
    for r in runs:
        hist[: r.l_histogram.size] += r.l_histogram
    return online_engine.OnlineRun(
        workload=w, config=runs[0].config, policy=runs[0].policy, upload_end_s=cat("upload_end_s"),
        start_s=cat("start_s"), first_token_s=cat("first_token_s"), completion_s=cat("completion_s"),
        rounds=cat("rounds"), slot=cat("slot"), sbs_busy_s=float(np.mean([r.sbs_busy_s for r in runs])),
        mbs_busy_s=float(sum(r.mbs_busy_s for r in runs) / len(run.topology.mbs)),
        jobs=int(sum(r.jobs for r in runs)), member_rounds=int(sum(r.member_rounds for r in runs)),
        l_histogram=hist)


def summary(run: MultiCellRun) -> dict:
    """The online JSON of all cells together, plus ``cells`` (per-cell metrics) and the energy figures."""
    from specedge.online.metrics import summarize

    out = summarize(merged_run(run))
    cells = []
    for i, r in enumerate(run.runs):
        s = summarize(r)
        spec = run.topology.cells[i]
        cells.append({"cell": spec.name, "sbs_device": spec.sbs_device, "draft_model": spec.draft_model,
                      "requests": s["requests"], "goodput_rps": s["goodput_rps"], "e2e_p99_s": s["e2e_p99_s"],
                      "ttft_p99_s": s["ttft_p99_s"], "tpot_p50_s": s["tpot_p50_s"],
                      "throughput_tokens_per_s": s["throughput_tokens_per_s"],
                      "slo_attainment": s["slo_attainment"], "sbs_utilisation": s["sbs_utilisation"]})
    e = energy(run)
    out.update({"num_cells": len(run.runs), "verifier_policy": run.verifier_policy, "cells": cells,
                "energy_j_per_token": e["energy_j_per_token"], "energy_j_per_request": e["energy_j_per_request"],
                "energy_j": e["energy_j"], "energy_parts_j": e["energy_parts_j"]})
    if e["per_request_j"]:
        per_req = np.concatenate(e["per_request_j"])
        per_tok = per_req / np.concatenate([r.workload.output_tokens for r in run.runs])
        out.update({"energy_j_per_request_p50": float(np.percentile(per_req, 50)),
                    "energy_j_per_request_p90": float(np.percentile(per_req, 90)),
                    "energy_j_per_token_p50": float(np.percentile(per_tok, 50)),
                    "energy_j_per_token_p90": float(np.percentile(per_tok, 90))})
    return out


def workloads(topology, *, arrivals: str = "poisson", rate_rps: float = 1.0, num_requests: int = 100,
              cv: float = 1.0, seed: int = 0, scenarios=None) -> tuple:
    """One synthetic workload per cell, each at ``rate_rps`` with ``num_requests`` requests [A: rate and count per
    cell], users placed in the cell's own disk; cell c draws from seed + c * 0x13C0 (cell 0: ``seed``)."""
    from specedge.online import workload as wl

    scs = scenarios or tuple(topology.cell_scenario(c, seed=seed, tasks=1) for c in range(topology.num_cells))
    return tuple(wl.synthetic(sc.params, arrivals=arrivals, rate_rps=rate_rps, num_requests=num_requests, cv=cv,
                              seed=seed + c * _SEED_CELL) for c, sc in enumerate(scs))
