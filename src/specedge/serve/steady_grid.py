"""Steady compute grids: each configuration timed back to back at one shape, as a serving node repeats it.

The pass-shaped grid (:func:`specedge.record.compute_trace.measure_compute`) times each configuration as ONE pass
right after an untimed prefill, in a random order of configurations: every timed pass follows a pass of another
shape. A serving node repeats one shape: a draft job runs l decode passes of (b, 1) back to back, and in a plan of
one batch size (``no-batching``: every job b = 1) every pass of the run has the shape of the one before it.
On this machine, for the stdlib draft model at (b = 1, x = 1, c = 40) (2026-11-30, 19:17 UTC, load 0.5, three
alternating rounds of 60 passes each), a pass right after a pass of another shape took 0.98–1.20 ms (median) where
back-to-back passes of the same shape took 0.87–0.96 ms: 10–25 % more, about the pass-shaped grid's excess over
the quiet ``no-batching`` runs' b = 1 passes in the 17:08 and 18:26 sessions (docs/fidelity.md).

:func:`measure_steady_compute` times the same grid (same rows, same compute schema, so every predictor reads it)
the node's way. Per sweep, cache groups in a seeded random order (:func:`specedge.serve.job_grid.sweep_groups`, as the
job-shaped grid):

- a cached group (b, c): a fresh cache of the node's size, an untimed prefill of c tokens; then for each of the
  group's shapes (decode x = 1, then every verify width x): :data:`STEADY_WARMUP_PASSES` untimed passes of (b, x),
  then :data:`STEADY_TIMED_PASSES` timed ones, back to back, the cache cropped back to c after each pass (outside
  the timing), so every timed pass sees c cached tokens and follows a pass of its own shape;
- a prefill group (b): for each width x the same warm-up and timed passes, each on a fresh cache (allocated
  outside the timing; in a run every prefill is a round-0 job's pass into a new cache).

Then, per cached group in the timed sweeps, the **job-switch jobs** (:mod:`specedge.serve.job_switch`): jobs
alternating between the group's cache and a second one, each after a blocking wait, timed against the steady
medians just measured; their per-job excess is fitted as t_switch(b, D) = a + s·b + t·b·D (metadata
``job_switch``): a diagnostic, like the shape-switch sample, that no predictor adds.

The first warm-up pass of each shape follows a pass of another shape: its excess over the shape's timed median is
recorded per cell as the **shape-switch sample** (metadata ``shape_switch``, fitted like the job grid's wake-up
term, :func:`specedge.serve.job_grid.fit_wake_up`). It is a diagnostic: no predictor adds it.
"""

from __future__ import annotations

import datetime as _dt
import time

import numpy as np

from specedge.errors import InputError
from specedge.serve.job_grid import WAKE_IDLE_S, blocking_wait
from specedge.serve.job_switch import DRAFT_SWITCH_LENGTHS, SWITCH_ROUNDS, switch_jobs, switch_meta

#: [A] Untimed passes of a shape before its timed ones (the first of them is the shape-switch sample).
STEADY_WARMUP_PASSES = 2
#: [A] Timed back-to-back passes per configuration and sweep (rows; the grid's ``repeats`` sweeps multiply them).
STEADY_TIMED_PASSES = 4
#: Cache slots allocated beyond what a group's passes need (as the serving node's CACHE_SLACK_SLOTS).
CACHE_SLACK_SLOTS = 8
#: Metadata format of the shape-switch samples.
SHAPE_SWITCH_VERSION = 1


def measure_steady_compute(engine, grid, *, vocab_size: int, name: str, dataset_id: str,
                           warmup_passes: int = STEADY_WARMUP_PASSES, timed_passes: int = STEADY_TIMED_PASSES,
                           switch_first_tokens: int = 1, switch_lengths=DRAFT_SWITCH_LENGTHS,
                           switch_rounds: int = SWITCH_ROUNDS, idle_s: float = WAKE_IDLE_S,
                           seed: int = 0, device: str = "cpu", dtype: str = "fp32", note: str = "",
                           clock=time.perf_counter_ns, idle=blocking_wait):
    """Time ``grid`` (a :class:`~specedge.serve.measure.RunGrid`) steady on a ragged ``engine`` (module
    docstring); returns (frame in the compute schema, metadata with ``grid_mode = "steady"``, ``shape_switch``
    and ``job_switch``). ``switch_*``: the job-switch jobs (:mod:`specedge.serve.job_switch`; ``switch_rounds`` 0
    measures none). ``clock`` (ns) and ``idle`` (seconds -> None) are injectable for tests."""
    import torch

    from specedge.record.compute_trace import compute_frame
    from specedge.serve.job_grid import fit_wake_up, sweep_groups

    if warmup_passes < 1 or timed_passes < 1:
        raise InputError(f"steady grid: warmup_passes and timed_passes must be >= 1, got {warmup_passes}, "
                         f"{timed_passes}")
    widths = tuple(int(x) for x in grid.cached.new_tokens)
    lengths = tuple(int(d) for d in switch_lengths)
    if switch_rounds < 0 or not lengths or min(lengths) < 1 or switch_first_tokens not in (1, *widths):
        raise InputError(f"steady grid: switch_rounds must be >= 0, switch_lengths >= 1 and switch_first_tokens "
                         f"1 or a measured width {widths}; got {switch_rounds}, {lengths}, {switch_first_tokens}")
    gen = torch.Generator().manual_seed(seed)
    rows: list[tuple] = []
    switch: list[tuple] = []
    jobs: list[tuple] = []

    def ids(b, n):
        return torch.randint(0, vocab_size, (b, n), generator=gen)

    def shape(phase, b, x, c, fresh, keep):
        """Warm-up then timed passes of one shape; ``fresh()`` gives the cache of each pass (and its base)."""
        times = []
        for k in range(warmup_passes + timed_passes):
            cache, base = fresh()
            tokens = ids(b, x)
            t0 = clock()
            engine.forward(tokens, torch.full((b,), x, dtype=torch.int64), cache)
            times.append((clock() - t0) / 1e6)
            if base is not None:
                cache.crop(base)
        timed = times[warmup_passes:]
        if keep:
            rows.extend((phase, b, x, c, ms) for ms in timed)
            switch.append((b, x, c, times[0], float(np.median(timed))))
        return float(np.median(timed))

    started = time.perf_counter()
    with torch.inference_mode():
        for keep, kind, b, c in sweep_groups(grid, seed):
            if kind == "prefill":
                for x in grid.prefill.context_tokens:
                    shape("prefill", b, x, 0, lambda b=b, x=x: (engine.new_cache(b, x + CACHE_SLACK_SLOTS), None),
                          keep)
                continue
            capacity = c + max(widths + (switch_first_tokens + max(lengths) - 1,)) + CACHE_SLACK_SLOTS
            cache = engine.new_cache(b, capacity)
            engine.forward(ids(b, c), torch.full((b,), c, dtype=torch.int64), cache)
            base = cache.length.clone()
            steady = {x: shape(phase, b, x, c, lambda: (cache, base), keep)
                      for phase, x in [("decode", 1)] * ("decode" in grid.cached.phases) +
                      [("verify", w) for w in widths] * ("verify" in grid.cached.phases)}
            if keep:
                jobs += switch_jobs(engine, ids, b=b, c=c, cache=cache, base=base, steady_ms=steady,
                                    first_tokens=switch_first_tokens, lengths=lengths, rounds=switch_rounds,
                                    capacity=capacity, idle_s=idle_s, idle=idle, clock=clock)
    frame = compute_frame(rows, dataset_id=dataset_id, model=name, device=device, dtype=dtype)
    samples = [list(map(float, s)) for s in switch]
    fit = fit_wake_up(samples)
    meta = {
        "grid_mode": "steady",
        "shape_switch": {"version": SHAPE_SWITCH_VERSION, "warmup_passes": int(warmup_passes),
                         "timed_passes": int(timed_passes),
                         "columns": ["batch_size", "new_tokens", "context_tokens", "first_ms", "steady_ms"],
                         "samples": samples, "fit": {"a_s": fit[0], "per_seq_s": fit[1]},
                         "note": "first_ms: the shape's first pass, after a pass of another shape (diagnostic)"},
        "job_switch": switch_meta(jobs, first_tokens=switch_first_tokens, lengths=lengths, rounds=switch_rounds,
                                  idle_s=idle_s),
        "timing": "steady (specedge.serve.steady_grid): per sweep and cache group a fresh node-sized cache and an "
                  f"untimed prefill; per shape {warmup_passes} untimed then {timed_passes} timed back-to-back "
                  "passes (rows), the cache cropped back after each; prefill rows on a fresh cache per pass; then "
                  f"{switch_rounds} rounds of job-switch jobs between two caches per group (job_switch)",
        "recording_wall_s": round(time.perf_counter() - started, 3),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "note": note,
    }
    return frame, meta
