"""Reference replay: the straightforward per-event pure-Python implementation of specedge's serving model.

It follows docs/model.md section 5 literally: draw each (task, round)'s acceptance one at a time, play every batch round
by round with Python sets and dicts, price every forward pass with a scalar predictor call, then walk the
round-robin job list with two machine clocks. It shares only the scenario (tasks, cards, predictors, acceptance
source definitions) with :mod:`specedge.replay`, and follows the same canonical random-number order (trace
assignment first, then K uniforms per round), so both must give identical results: the integers exactly, times to
floating-point rounding (tests/replay/test_reference.py). bench/test_replay_speed.py times both.
"""

from __future__ import annotations

import math

import numpy as np

from specedge.latency.acceptance import NO_CAP
from specedge.plan import Plan

EPS = 1e-9


def _geometric(u: float, alpha: float) -> int:
    if alpha <= 0.0:
        return 0
    if alpha >= 1.0:
        return 2**20
    return min(int(math.floor(math.log1p(-u) / math.log(alpha))), 2**20)


def _round_draw(src, k: int, n: int, u: float | None, assignment) -> tuple[int, int]:
    """(G, cap) of task k in round n."""
    if src.kind == "iid":
        return _geometric(u, src.alpha), NO_CAP
    if src.kind == "trace":
        row = (int(src.unit_starts[assignment[k]]) + n) % src.drafted.size
        acc, dr = int(src.accepted[row]), int(src.drafted[row])
        if acc < dr:
            return acc, NO_CAP
        return (dr + _geometric(u, src.alpha_tail) if u is not None else acc), dr
    # aggregate: walk the histogram
    total = float(src.cdf[-1])
    x = u * total
    below = 0.0
    for i in range(src.counts.size):
        if x < below + src.counts[i] or i == src.counts.size - 1:
            acc, dr = int(src.accepted[i]), int(src.drafted[i])
            if acc < dr:
                return acc, NO_CAP
            v = min(max((x - below) / src.counts[i], 0.0), math.nextafter(1.0, 0.0))
            return dr + _geometric(v, src.alpha_tail), dr
        below += src.counts[i]
    raise AssertionError("unreachable")


def _lat(pred, b: int, x: float, c: float) -> float:
    return float(pred.latency_s(b, x, c))


def reference_replay(sc, plan, seed: int = 0, replication: int = 0) -> dict:
    """Replay one replication; returns per-task lists (task order) and the makespan."""
    plan = plan if isinstance(plan, Plan) else Plan.from_dict(plan)
    plan.validate(sc.num_tasks)
    k_tasks = sc.num_tasks
    inputs = [int(v) for v in sc.tasks["input_tokens"]]
    outputs = [int(v) for v in sc.tasks["output_tokens"]]
    payload = [float(v) for v in sc.tasks["payload_bits"]]
    eta = [float(v) for v in sc.tasks["spectral_efficiency"]]
    p = sc.params
    mode = plan.mode
    src = sc.acceptance
    upload = [payload[k] / (plan.bandwidth_hz[k] * eta[k]) for k in range(k_tasks)]
    if p.release == "all-uploads":
        ready = [max(upload)] * len(plan.batches)
    else:
        ready = [max(upload[k] for k in batch) for batch in plan.batches]

    # ---- acceptance, drawn round by round in the canonical order
    sampled = mode != "ad" and src.kind != "expected"
    rng = np.random.default_rng([seed, replication])
    draws: list[list[tuple[int, int]]] = []
    assignment = None
    use_uniforms = False
    if sampled:
        assignment = src.assign(k_tasks, rng)
        use_uniforms = src.needs_uniforms(max(plan.speculation_length))

    def draw(n: int, k: int) -> tuple[int, int]:
        while len(draws) <= n:
            r = len(draws)
            u = rng.random(k_tasks).tolist() if use_uniforms else [None] * k_tasks
            draws.append([_round_draw(src, j, r, u[j], assignment) for j in range(k_tasks)])
        return draws[n][k]

    # ---- play every batch round by round
    rounds = [0] * k_tasks
    round_tokens = [0.0] * k_tasks
    extrapolated = [0] * k_tasks
    before_last = [0.0] * k_tasks
    batch_of = [0] * k_tasks
    jobs: list[list[tuple[int, float, int]]] = []  # per batch: (b, context, l) per round
    for m, members in enumerate(plan.batches):
        l = plan.speculation_length[m]
        i_max = max(inputs[k] for k in members)
        committed = {k: 0.0 for k in members}
        live = list(members)
        n = 0
        jobs.append([])
        while live:
            ctx = i_max + max(committed[k] for k in live)
            jobs[m].append((len(live), float(ctx), l))
            still = []
            for k in live:
                batch_of[k] = m
                if mode == "ad":
                    c = 1.0
                elif src.kind == "expected":
                    c = (l + 1.0) if math.isclose(src.alpha, 1.0) else (1 - src.alpha ** (l + 1)) / (1 - src.alpha)
                else:
                    g, cap = draw(n, k)
                    c = min(g, l) + 1
                    if l > cap:
                        extrapolated[k] += 1
                before = committed[k]
                committed[k] = before + c
                round_tokens[k] += c
                rounds[k] += 1
                if committed[k] < outputs[k] - EPS:
                    still.append(k)
                else:
                    before_last[k] = before
            live = still
            n += 1

    # ---- price every round, pass by pass
    def stage_times(m: int, n: int) -> tuple[float, float]:
        b, ctx, l = jobs[m][n]
        i_max = float(max(inputs[k] for k in plan.batches[m]))
        if mode == "ad":
            return 0.0, (_lat(sc.verify_compute, b, i_max, 0.0) if n == 0 else _lat(sc.verify_compute, b, 1.0, ctx))
        if n == 0:
            td = _lat(sc.draft_compute, b, i_max, 0.0)
            for j in range(l - 1):
                td += _lat(sc.draft_compute, b, 1.0, i_max + j)
            tv = _lat(sc.verify_compute, b, i_max + l + 1.0, 0.0)
        else:
            td = 0.0
            for j in range(l):
                td += _lat(sc.draft_compute, b, 1.0, ctx + j)
            tv = _lat(sc.verify_compute, b, l + 1.0, ctx)
        return td, tv

    # ---- the two machines, round-robin
    f = 0.0 if mode == "ad" else p.fronthaul_delay_s
    sbs_free = 0.0
    mbs_free = 0.0
    verify_end: dict[tuple[int, int], float] = {}
    for n in range(max(len(j) for j in jobs)):
        for m in range(len(plan.batches)):
            if n >= len(jobs[m]):
                continue
            td, tv = stage_times(m, n)
            r = ready[m] if n == 0 else verify_end[(m, n - 1)] + f
            if mode == "sd-pipeline":
                sbs_free = max(sbs_free, r) + td
                mbs_free = max(sbs_free + f, mbs_free) + tv
            elif mode == "sd-serial":
                draft_end = max(mbs_free, r) + td
                mbs_free = draft_end + f + tv
            else:
                mbs_free = max(mbs_free, r) + tv
            verify_end[(m, n)] = mbs_free

    d = p.downlink_s_per_token
    first = [verify_end[(batch_of[k], 0)] + d for k in range(k_tasks)]
    completion = [verify_end[(batch_of[k], rounds[k] - 1)] + d * (outputs[k] - before_last[k]) if d
                  else verify_end[(batch_of[k], rounds[k] - 1)] for k in range(k_tasks)]
    return {
        "upload_s": upload, "first_token_s": first, "completion_s": completion, "rounds": rounds,
        "round_tokens": round_tokens, "extrapolated_rounds": extrapolated, "batch": batch_of,
        "makespan_s": max(completion),
    }
