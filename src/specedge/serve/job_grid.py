"""Job-shaped compute grids: cells measured the way a serving node runs its passes, plus a per-job wake-up term.

The pass-shaped grid (:func:`specedge.record.compute_trace.measure_compute`) times each configuration as one pass
right after an untimed prefill of its context, back to back with the next configuration, ``repeats`` times (2 for
the stdlib pair, 1 for SmolLM2): a cell is the median of one or two passes, and no pass follows a wait. A serving
node instead runs *jobs*: it blocks on its pipe until its inputs arrive, runs a first pass, then (draft node)
l - 1 decode passes, each fed the argmax of the last, on a KV cache sized for the batch. In the quiet stdlib runs
the first pass of a draft job took 0.14-0.17 ms more than the job's second pass at the same shape, and the runs'
b = 1 decode passes were spread over 1.1-2.9 ms (5-95 %) where the grid had two samples per cell.

:func:`measure_job_compute` times the same grid (same rows, same schema, so every predictor reads it) job-shaped:

- every sweep and every cache group (b, c): a fresh cache of the node's size (c + the widest pass + the decode
  passes + :data:`CACHE_SLACK_SLOTS`, allocated outside the timing, as the node does before its first pass),
  an untimed prefill of c tokens; then a *job*: block on an empty pipe for ``idle_s`` (the node's wait for its
  inputs), one **cold** pass of ``first_tokens`` new tokens (the node's first pass: 1 for the draft model, the
  widest verify width for the target), then ``decode_passes`` decode passes fed the argmax of the previous
  logits (the draft loop; timed, rows ``decode`` at context c — their contexts are c + 1 .. c + decode_passes,
  within a few tokens of c), then every verify width once, each cropped back (rows ``verify``);
- prefill cells: a fresh node-sized cache per pass (allocated outside the timing), the same blocking wait, then
  the timed prefill: in a run every prefill is the first pass of a round-0 job into a new cache, so these rows
  are *cold* (in the quiet stdlib runs prefill passes took 1.2-1.9x the pass-shaped grid, more than an additive
  term of a decode pass could carry).

Every decode and verify row is a *warm* pass; the cold first pass of a job is not a row. Its excess over the
warm pass of the same shape timed in the same job is the **wake-up sample**; :func:`fit_wake_up` fits the
per-job term [A]

    t_wake(b) = w_a + w_s·b   seconds per job (non-negative least squares on the per-b medians)

which a predictor adds once per stage job like the host overhead (:mod:`specedge.latency.host_overhead`): the
first pass of every job pays it. Round-0 jobs, whose first pass is a (cold) prefill row, pay it twice: at most
w_a + w_s·b once per batch and node, against prefill passes tens of times longer. Samples and fit are in the trace's metadata (``grid_mode = "job"``,
``wake_up``); pass-shaped traces have neither, and read as before.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict

import numpy as np
import pandas as pd

from specedge.errors import InputError

#: Seconds the measurer blocks on an empty pipe before a job's first pass [A] (quiet stdlib runs: the draft node
#: waited 0.5-10 ms before most jobs, the verify node 1-10 ms; SmolLM2's draft node over 10 ms).
WAKE_IDLE_S = 0.005
#: Warm decode passes per job after the cold first pass: the draft model (its jobs run l - 1 of them) and the
#: target (which never decodes in SD serving; one keeps its decode cells filled).
DRAFT_DECODE_PASSES = 3
TARGET_DECODE_PASSES = 1
#: Jobs per cache group the draft model gets at least (its passes are short: in a co-run measurement they fit in
#: the target's time, so a SmolLM2 grid measured with 1 repeat still gets 5 x 3 draft decode samples per cell).
DRAFT_MIN_REPEATS = 5
#: Cache slots allocated beyond what a group's passes need (as the serving node's CACHE_SLACK_SLOTS).
CACHE_SLACK_SLOTS = 8
#: Metadata format of the wake-up samples.
WAKE_UP_VERSION = 1


def blocking_wait(seconds: float) -> None:
    """Block on an empty pipe for ``seconds``, as a serving node waits for its next input."""
    from multiprocessing import Pipe
    from multiprocessing.connection import wait

    reader, writer = Pipe(duplex=False)
    try:
        wait([reader], timeout=seconds)
    finally:
        reader.close()
        writer.close()


def measure_job_compute(engine, grid, *, vocab_size: int, name: str, dataset_id: str, first_tokens: int,
                        decode_passes: int = DRAFT_DECODE_PASSES, idle_s: float = WAKE_IDLE_S, seed: int = 0,
                        device: str = "cpu", dtype: str = "fp32", note: str = "", clock=time.perf_counter_ns,
                        idle=blocking_wait) -> tuple[pd.DataFrame, dict]:
    """Time ``grid`` (a :class:`~specedge.serve.measure.RunGrid`) job-shaped on a ragged ``engine`` (module
    docstring); returns (frame in the compute schema, metadata with ``grid_mode`` and ``wake_up``).
    ``clock`` (ns) and ``idle`` (seconds -> None) are injectable for tests."""
    import torch

    if first_tokens < 1 or decode_passes < 1:
        raise InputError(f"job grid: first_tokens and decode_passes must be >= 1, got {first_tokens}, "
                         f"{decode_passes}")
    widths = tuple(int(x) for x in grid.cached.new_tokens)
    if first_tokens != 1 and first_tokens not in widths:
        raise InputError(f"job grid: first pass width {first_tokens} is not a measured width {widths}")
    gen = torch.Generator().manual_seed(seed)
    rows: list[tuple] = []
    wake: list[tuple] = []

    def ids(b, n):
        return torch.randint(0, vocab_size, (b, n), generator=gen)

    def timed(tokens, cache):
        b, x = tokens.shape
        counts = torch.full((b,), x, dtype=torch.int64)
        t0 = clock()
        logits = engine.forward(tokens, counts, cache)
        return logits, (clock() - t0) / 1e6

    started = time.perf_counter()
    with torch.inference_mode():
        for keep, kind, b, c in sweep_groups(grid, seed):
            if kind == "prefill":  # a job's first pass into a fresh cache: after the wait, cold
                for x in grid.prefill.context_tokens:
                    cache = engine.new_cache(b, x + CACHE_SLACK_SLOTS)
                    idle(idle_s)
                    _, ms = timed(ids(b, x), cache)
                    if keep:
                        rows.append(("prefill", b, x, 0, ms))
                continue
            cache = engine.new_cache(b, c + max(widths + (first_tokens,)) + decode_passes + CACHE_SLACK_SLOTS)
            engine.forward(ids(b, c), torch.full((b,), c, dtype=torch.int64), cache)
            base = cache.length.clone()
            idle(idle_s)
            logits, cold_ms = timed(ids(b, first_tokens), cache)
            cache.crop(base)
            tokens = logits[:, -1].argmax(dim=-1)[:, None]
            warm = {}
            for _ in range(decode_passes):  # the draft loop: each pass fed the argmax of the last
                logits, ms = timed(tokens, cache)
                tokens = logits[:, -1].argmax(dim=-1)[:, None]
                warm.setdefault(1, []).append(ms)
                if keep and "decode" in grid.cached.phases:
                    rows.append(("decode", b, 1, c, ms))
            cache.crop(base)
            for x in widths:
                _, ms = timed(ids(b, x), cache)
                cache.crop(base)
                warm.setdefault(x, []).append(ms)
                if keep and "verify" in grid.cached.phases:
                    rows.append(("verify", b, x, c, ms))
            if keep:
                wake.append((b, first_tokens, c, cold_ms, float(np.median(warm[first_tokens]))))
    from specedge.record.compute_trace import compute_frame  # torch: only where a grid is measured

    frame = compute_frame(rows, dataset_id=dataset_id, model=name, device=device, dtype=dtype)
    samples = [list(map(float, s)) for s in wake]
    fit = fit_wake_up(samples)
    meta = {
        "grid_mode": "job",
        "wake_up": {"version": WAKE_UP_VERSION, "idle_s": float(idle_s), "first_tokens": int(first_tokens),
                    "decode_passes": int(decode_passes),
                    "columns": ["batch_size", "new_tokens", "context_tokens", "cold_ms", "warm_ms"],
                    "samples": samples, "fit": {"a_s": fit[0], "per_seq_s": fit[1]}},
        "timing": "job-shaped (specedge.serve.job_grid): per sweep and cache group a fresh node-sized cache, an "
                  f"untimed prefill, a {idle_s * 1e3:g} ms blocking wait on a pipe, a cold first pass (not a row), "
                  f"{decode_passes} argmax-fed decode passes and every verify width (rows); prefill rows cold: "
                  "a fresh cache, the same wait, then the pass",
        "recording_wall_s": round(time.perf_counter() - started, 3),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "note": note,
    }
    return frame, meta


def sweep_groups(grid, seed: int):
    """The order the engine-timed grids (job-shaped, and :mod:`specedge.serve.steady_grid`) visit ``grid`` (a
    :class:`~specedge.serve.measure.RunGrid`) in: ``grid.cached.warmup`` untimed then ``grid.cached.repeats``
    timed sweeps, each over every cache group once, groups in a seeded random order (a burst of contention spreads
    over many cells). Yields (keep, kind, b, c): keep False in warm-up sweeps; kind "prefill" (one group per b,
    c = 0) or "cached" (b, c)."""
    groups = []
    if "prefill" in grid.prefill.phases:
        groups += [("prefill", b, 0) for b in grid.prefill.batch_sizes]
    groups += [("cached", b, c) for b in grid.cached.batch_sizes for c in grid.cached.context_tokens]
    rng = np.random.default_rng(seed)
    for sweep in range(grid.cached.warmup + grid.cached.repeats):
        for gi in rng.permutation(len(groups)):
            yield (sweep >= grid.cached.warmup, *groups[gi])


def fit_wake_up(samples) -> tuple[float, float]:
    """(w_a, w_s) seconds of t_wake(b) = w_a + w_s·b [A] from samples [b, x, c, cold_ms, warm_ms]: non-negative
    least squares (BVLS) on the per-b median of cold − warm; one batch size fits w_a alone; none gives (0, 0)."""
    from scipy.optimize import lsq_linear

    s = np.asarray(samples, dtype=np.float64).reshape(-1, 5)
    if not len(s):
        return 0.0, 0.0
    bs = np.unique(s[:, 0])
    y = np.array([np.median(s[s[:, 0] == b, 3] - s[s[:, 0] == b, 4]) for b in bs]) / 1e3
    if bs.size == 1:
        return max(float(y[0]), 0.0), 0.0
    res = lsq_linear(np.c_[np.ones(bs.size), bs], y, bounds=(0.0, np.inf), method="bvls")
    return tuple(float(max(v, 0.0)) for v in res.x)


def wake_up_overhead(meta: dict, source: str = ""):
    """The wake-up term of a job-shaped compute trace's metadata as a
    :class:`~specedge.latency.host_overhead.JobOverhead` (a = w_a, per_seq = w_s), or None when it has none
    (pass-shaped traces)."""
    from specedge.latency.host_overhead import JobOverhead

    wake = (meta or {}).get("wake_up")
    if not wake:
        return None
    fit = wake.get("fit") or {}
    if "a_s" in fit:
        a, s = float(fit["a_s"]), float(fit["per_seq_s"])
    else:
        a, s = fit_wake_up(wake.get("samples") or [])
    return JobOverhead(a, s, 0.0, source=source or "wake-up term measured by a job-shaped grid")


def plus(a, b):
    """Two per-job overheads added term by term (None counts as 0); None when both are None."""
    from specedge.latency.host_overhead import JobOverhead

    if a is None or b is None:
        return a if b is None else b
    return JobOverhead(a.a_s + b.a_s, a.per_seq_s + b.per_seq_s, a.per_token_s + b.per_token_s,
                       source=f"{a.source} + {b.source}")


def grid_dict(grid) -> dict:
    return {"prefill": asdict(grid.prefill), "cached": asdict(grid.cached)}
