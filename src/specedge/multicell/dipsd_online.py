"""DiP-SD's comparison on the online engine: every user is a cell of :mod:`specedge.multicell.online` (its own
device, draft length l_k, acceptance alpha_k, link delay), and the server verifies whole DiP-SD batches.

The steady-state objective of :mod:`specedge.multicell.dipsd` picks (M, batch_of, l); here the same choice is
served request by request [A where tagged]:

- user k: one online engine state (:func:`specedge.online.engine.prepare`) with one slot and batches of one (a
  user has one sequence at a time), fixed l_k (the ``fcfs`` online policy), ``R`` requests of I input and O
  output tokens all arriving at 0 [A: a saturated user; I + O/2 = the objective's context], its prompt uploaded
  over its own band; drafting runs on its own device (the cell's "SBS" card); the fronthaul delay is its radio
  link's, paid up and down; the few hundred bits of drafts and verdict are not timed [A: < 0.1 ms at 5 Mb/s];
- the server: when it is free it verifies the DiP-SD batch whose members' drafts are all in and arrived first
  (``max`` of their ready times; ties: lower batch), in one padded pass at the batch's longest l, costed by the
  kernel's own stage-time rule (:func:`specedge.online.kernel._stage_times`) on the server's tables at the
  batch's size: joiners' prefills at their longest input plus continuing members at their largest context
  [A: the kernel's rule for one batch, applied across users]. v = max(max_k r_k, server free) + t_v; each
  member's verify end, first token and completions are rewritten from v as in :mod:`specedge.multicell.online`;
- baselines on the same engine: ``ad`` (the server alone, requests one at a time) and ``ad-greedy`` (the server
  alone, K requests in one continuous batch), through :func:`specedge.online.simulate` with the ``ad`` policy;
  ``sd-greedy`` is this driver with one batch of every user at the best common l.

Throughput: ``throughput_tokens_per_s`` = all output tokens / makespan, and ``user_rate_tokens_per_s`` = the sum
over users of R O / (user k's last completion) [A: the online counterpart of the objective's sum over users;
a makespan counts the idle tail after the faster users finish].
"""

from __future__ import annotations

import numpy as np

from specedge.online import engine as online_engine
from specedge.online import kernel, tables
from specedge.online.policies import FCFS
from specedge.online.workload import Workload


def _workload(requests: int, input_tokens: int, output_tokens: int, name: str) -> Workload:
    n = int(requests)
    return Workload(np.zeros(n), np.full(n, int(input_tokens)), np.full(n, int(output_tokens)), np.full(n, 50.0),
                    name=name)


def serve_batches(topology, batch_of, l, *, requests: int = 8, input_tokens: int = 448, output_tokens: int = 128,
                  acceptance: str = "expected", seed: int = 0, log: list | None = None) -> dict:
    """Serve K = len(l) users of a ``drafting = "user"`` topology with DiP-SD batches ``batch_of`` (batch per
    user) and per-user lengths ``l``; returns throughput, per-user completions and busy times."""
    from specedge.multicell.online import CellState, _peek

    batch_of = np.asarray(batch_of, dtype=np.int64)
    l = np.asarray(l, dtype=np.int64)
    k = l.size
    topo = topology.with_num_cells(k)
    lmax = int(l.max())
    config = online_engine.OnlineConfig(num_slots=1, max_batch_size=1, max_speculation_length=max(lmax, 1))
    cells = []
    for c in range(k):
        sc = topo.cell_scenario(c, seed=seed, tasks=1, acceptance=acceptance)
        w = _workload(requests, input_tokens, output_tokens, f"user {c}")
        st = online_engine.prepare(sc, w, FCFS(speculation_length=int(l[c])), config, seed=seed + c * 0x13C0)
        cells.append(CellState(c, 0, sc, st, float(sc.params.fronthaul_delay_s)))
    sc0 = cells[0].scenario
    tb = tables.build(sc0.draft_compute, sc0.verify_compute, max_batch=k, max_input=int(input_tokens),
                      max_output=int(output_tokens), max_l=max(lmax, 1))
    server = (tb.d_p0, tb.d_cum, tb.v_p0, tb.v_cont, tb.d_host, tb.v_host)
    groups = [np.flatnonzero(batch_of == g) for g in range(int(batch_of.max()) + 1)]
    mbs_free = 0.0
    server_busy = 0.0
    for c in cells:
        c.pending = _peek(c, mbs_free)
        c.done = c.pending is None
    while True:
        best, best_ready = -1, np.inf
        for g, members in enumerate(groups):
            live = [i for i in members if not cells[i].done]
            if live:
                r = max(cells[i].pending.ready_s for i in live)
                if r < best_ready:
                    best, best_ready = g, r
        if best < 0:
            break
        live = [i for i in groups[best] if not cells[i].done]
        shapes = np.array([cells[i].pending.shape for i in live], dtype=np.float64)
        bj, bc = int(shapes[:, 0].sum()), int(shapes[:, 2].sum())
        l_pad = max(cells[i].pending.l for i in live)
        _, t_v = kernel._stage_times(server, bj, int(shapes[:, 1].max()), bc, float(shapes[:, 3].max()), l_pad, 0.0)
        v = max(best_ready, mbs_free) + t_v
        if log is not None:
            log.append((best, best_ready, v - t_v, v, len(live)))
        for i in live:
            c, p = cells[i], cells[i].pending
            a = c.state.args
            a[16][p.m] = v
            a[4][p.joiners] = v + a[-1]
            if p.finishers.size:
                a[5][p.finishers] = v + a[-1] * (a[2][p.finishers] - p.before)
            c.sbs_busy_s += p.draft_s
            c.mbs_busy_s += t_v / len(live)  # the joint pass shared equally: the shares sum to the server's time
        server_busy += t_v
        mbs_free = v
        for i in live:
            cells[i].pending = _peek(cells[i], mbs_free)
            cells[i].done = cells[i].pending is None
    runs = []
    for c in cells:
        c.state.st_f[2] = c.sbs_busy_s
        c.state.st_f[3] = c.mbs_busy_s
        runs.append(online_engine.result(c.state))
    finish = np.array([r.completion_s.max() for r in runs])
    tokens = np.array([r.workload.output_tokens.sum() for r in runs], dtype=np.float64)
    return {"throughput_tokens_per_s": float(tokens.sum() / finish.max()),
            "user_rate_tokens_per_s": float((tokens / finish).sum()), "makespan_s": float(finish.max()),
            "server_busy_s": server_busy, "runs": runs}


def serve_ad(topology, k: int, *, greedy: bool, requests: int = 8, input_tokens: int = 448,
             output_tokens: int = 128, seed: int = 0) -> dict:
    """AD on the server alone through :func:`specedge.online.simulate`: K users' R requests each at 0, served one
    at a time or (``greedy``) K at a time in one continuous batch."""
    topo = topology.with_num_cells(k)
    sc = topo.cell_scenario(0, seed=seed, tasks=1)
    w = _workload(requests * k, input_tokens, output_tokens, "all users")
    config = online_engine.OnlineConfig(num_slots=1, max_batch_size=int(k) if greedy else 1)
    run = online_engine.simulate(sc, w, "ad", config, seed=seed)
    span = float(run.completion_s.max())
    tokens = float(w.output_tokens.sum())
    # per user: request j of user u is request u + j k (round-robin), its last completion is that user's finish
    finish = run.completion_s.reshape(requests, k).max(axis=0)
    return {"throughput_tokens_per_s": tokens / span,
            "user_rate_tokens_per_s": float((tokens / k / finish).sum()), "makespan_s": span,
            "server_busy_s": float(run.mbs_busy_s), "runs": (run,)}


def compare_online(topology, user_counts=(2, 4, 8, 16), *, l_max: int = 8, max_batches: int | None = 4,
                   requests: int = 8, input_tokens: int = 448, output_tokens: int = 128, seed: int = 0):
    """DiP-SD-style batches (from the steady-state search at context I + O/2), SD with greedy batching, AD with
    greedy batching and AD, each served on the online engine; one row per (users, scheme)."""
    import pandas as pd

    from specedge.multicell import dipsd

    rows = []
    for k in user_counts:
        k = int(k)
        u = dipsd.users_from_topology(topology, k, context_tokens=input_tokens + output_tokens / 2.0)
        top = k if max_batches is None else min(k, int(max_batches))
        plans = {"dip-sd": dipsd.optimise(u, l_max=l_max, batches=range(1, top + 1)),
                 "sd-greedy": dipsd.sd_greedy(u, l_max=l_max)}
        kw = {"requests": requests, "input_tokens": input_tokens, "output_tokens": output_tokens, "seed": seed}
        for name, plan in plans.items():
            r = serve_batches(topology, plan["batch_of"], plan["l"], **kw)
            rows.append({"users": k, "scheme": name, "batches": int(plan["batches"]),
                         "l": " ".join(str(int(v)) for v in plan["l"]),
                         "objective_tokens_per_s": plan["throughput_tokens_per_s"],
                         **{key: r[key] for key in ("throughput_tokens_per_s", "user_rate_tokens_per_s")}})
        for name, greedy in (("ad-greedy", True), ("ad", False)):
            r = serve_ad(topology, k, greedy=greedy, **kw)
            rows.append({"users": k, "scheme": name, "batches": 1 if greedy else k, "l": "",
                         "objective_tokens_per_s": dipsd.ad_throughput(u, greedy),
                         **{key: r[key] for key in ("throughput_tokens_per_s", "user_rate_tokens_per_s")}})
    out = pd.DataFrame(rows)
    for ref in ("ad-greedy", "ad"):
        base = out[out["scheme"] == ref].set_index("users")["user_rate_tokens_per_s"]
        out[f"online_gain_over_{ref.replace('-', '_')}"] = out["user_rate_tokens_per_s"] / out["users"].map(base)
    return out
