"""The job-switch term: what a node's job costs beyond back-to-back passes when it follows a job on another cache.

The steady grid (:mod:`specedge.serve.steady_grid`) times each shape back to back on one KV cache. A serving node
does not: between jobs it blocks on its pipe, and each job works on another batch's cache (jobs go round-robin
over the plan's batches, docs/model.md §5). In the two steady stdlib sessions of 2026-11-30 (19:21 and 19:35),
the runs' draft jobs took more than the steady grid's passes of their shapes, by a median of 0.07-0.25 ms per job
at b = 1, 0.55-0.65 ms at b = 2 and 1.0-1.4 ms at b = 5-6; by position in the job the passes took 1.12-1.46x
(first), 1.06-1.32x (second) and 1.02-1.20x (later) the steady time. So the excess grows with b and with the
job's length, and a steady grid alone predicts multi-batch plans 2-10 % low.

:func:`switch_jobs` measures it in the grid, the node's way, with nothing taken from any run. Per cached group
(b, c) and timed sweep, after the group's steady shapes (so their medians are known):

- a second cache of the group's size, prefilled with c tokens and given one pass of the jobs' first shape (both
  untimed, so the first job switches caches, not shapes); the group's own cache is the first;
- :data:`SWITCH_ROUNDS` rounds, each a job on the first cache then a job on the second, so every job follows a
  job on the other cache. A job: block on an empty pipe for ``idle_s`` (the node's wait for its inputs,
  :data:`specedge.serve.job_grid.WAKE_IDLE_S`), then D timed passes: the first of ``first_tokens`` new tokens
  (1 for the draft model, the widest verify width for the target, as the job grid), then D - 1 decode passes fed
  the argmax of the last; the cache is cropped back to c after the job (outside the timing). D cycles through
  ``lengths`` by round ([A]: (1, 3, 5) for the draft model, whose job runs l passes; (1,) for the target, whose
  job is one pass).

Each job gives a sample [b, D, c, job_ms, steady_ms], steady_ms being the sum of the steady medians of its passes
(the first pass's shape, then D - 1 times (b, 1, c)). :func:`fit_job_switch` fits the per-job term [A]

    t_switch(b, D) = a + s·b + t·b·D   seconds per job

by non-negative least squares (BVLS) on the median excess per (b, D) (the host overhead's form,
:class:`~specedge.latency.host_overhead.JobOverhead`, with x = D: a draft job of speculation length l runs l
passes; a verify job one, so its t is left out).

**It is a diagnostic: no predictor adds it.** Added to every base predictor of the runs measured with it (stdlib,
2026-11-30 21:20 session, docs/fidelity.md), it over-predicted every plan (`no-batching` by 22 %, 6×4 by 11 %): the
grid's 5 ms wait before every job makes each job's first pass 0.5-0.9 ms slower, for the verify node too, while in
the runs the bottleneck (verify) node rarely waits and the draft node's excess grows with b whether or not it
waited (runs of 19:35, after waits under 0.2 ms: 0.19-0.22 ms at b = 1 to 1.2-1.4 ms at b = 5-8; the pure cache
switch without a wait, measured alone, is 0.05-0.29 ms). What the runs' draft jobs pay beyond the steady grid is still
unexplained; the samples are kept so that a later model of it can be checked against them.
"""

from __future__ import annotations

import numpy as np

#: [A] Rounds of switch jobs per cached group and timed sweep (each round one job on each of the two caches).
SWITCH_ROUNDS = 3
#: [A] Passes per switch job (cycled by round): the draft model's and the target's.
DRAFT_SWITCH_LENGTHS = (1, 3, 5)
TARGET_SWITCH_LENGTHS = (1,)
#: Metadata format of the job-switch samples.
JOB_SWITCH_VERSION = 1
#: Columns of a job-switch sample.
COLUMNS = ("batch_size", "passes", "context_tokens", "job_ms", "steady_ms")


def switch_jobs(engine, ids, *, b: int, c: int, cache, base, steady_ms: dict, first_tokens: int, lengths,
                rounds: int, capacity: int, idle_s: float, idle, clock) -> list[tuple]:
    """The switch jobs of one cached group (module docstring): ``cache``/``base`` the group's cache and its
    prefilled lengths, ``steady_ms`` {x: the group's steady median of (b, x, c)}, ``ids(b, n)`` random token ids;
    returns the samples (b, D, c, job_ms, steady_ms): none when the group has no steady time of the jobs' first
    shape, or of the decode shape (b, 1) that longer jobs continue with."""
    import torch

    if not rounds or first_tokens not in steady_ms or (max(lengths) > 1 and 1 not in steady_ms):
        return []
    other = engine.new_cache(b, capacity)
    engine.forward(ids(b, c), torch.full((b,), c, dtype=torch.int64), other)
    start = other.length.clone()
    # an untimed pass of the jobs' first shape on the second cache: the first job then switches caches, not shapes
    engine.forward(ids(b, first_tokens), torch.full((b,), first_tokens, dtype=torch.int64), other)
    other.crop(start)
    caches = ((cache, base), (other, start))
    samples = []
    for r in range(rounds):
        d = int(lengths[r % len(lengths)])
        for kv, start in caches:
            idle(idle_s)
            tokens, total = ids(b, first_tokens), 0
            for _ in range(d):
                t0 = clock()
                logits = engine.forward(tokens, torch.full((b,), tokens.shape[1], dtype=torch.int64), kv)
                total += clock() - t0
                tokens = logits[:, -1].argmax(dim=-1)[:, None]
            kv.crop(start)
            ref = steady_ms[first_tokens] + (d - 1) * steady_ms[1] if d > 1 else steady_ms[first_tokens]
            samples.append((b, d, c, total / 1e6, float(ref)))
    return samples


def fit_job_switch(samples) -> tuple[float, float, float]:
    """(a, s, t) seconds of t_switch(b, D) = a + s·b + t·b·D [A] from samples [b, D, c, job_ms, steady_ms]:
    non-negative least squares (BVLS) on the median excess per (b, D). Terms the samples cannot identify stay 0:
    t with one D, s and t with one b; no samples give (0, 0, 0)."""
    from scipy.optimize import lsq_linear

    s = np.asarray(samples, dtype=np.float64).reshape(-1, 5)
    s = s[np.isfinite(s[:, 4])]
    if not len(s):
        return 0.0, 0.0, 0.0
    keys = np.unique(s[:, :2], axis=0)
    excess_s = (s[:, 3] - s[:, 4]) / 1e3
    y = np.array([np.median(excess_s[(s[:, 0] == b) & (s[:, 1] == d)]) for b, d in keys])
    b, d = keys[:, 0], keys[:, 1]
    use = (True, np.unique(b).size > 1, np.unique(b).size > 1 and np.unique(d).size > 1)
    x = np.column_stack([col for col, u in zip((np.ones(len(keys)), b, b * d), use) if u])
    if len(keys) < x.shape[1]:  # fewer (b, D) points than terms: the intercept alone
        return max(float(np.mean(y)), 0.0), 0.0, 0.0
    coef = iter(lsq_linear(x, y, bounds=(0.0, np.inf), method="bvls").x)
    return tuple(float(max(next(coef), 0.0)) if u else 0.0 for u in use)


def switch_meta(samples, *, first_tokens: int, lengths, rounds: int, idle_s: float) -> dict:
    """The ``job_switch`` metadata of a steady grid: samples, their fit and how they were taken."""
    a, s, t = fit_job_switch(samples)
    return {"version": JOB_SWITCH_VERSION, "first_tokens": int(first_tokens), "lengths": [int(d) for d in lengths],
            "rounds": int(rounds), "idle_s": float(idle_s), "columns": list(COLUMNS),
            "samples": [list(map(float, x)) for x in samples],
            "fit": {"a_s": a, "per_seq_s": s, "per_token_s": t},
            "note": "per job: D passes after a blocking wait on a cache other than the last job's, against the "
                    "steady medians of the same passes (specedge.serve.job_switch)"}
