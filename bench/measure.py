"""Measurement helpers shared by the asv suites and the pytest-benchmark files.

- :func:`interleaved_minima`: time several callables side by side, alternating their order every repeat (A B,
  B A, ...) so that a load change on a shared machine hits every side alike, the same number of repeats each;
  each side's statistic is its minimum (the least-disturbed run). A speed-up is then a ratio of minima.
- :func:`traced_peak_mib`: the peak memory one call allocates itself (``tracemalloc``, which numpy reports its
  buffers to), not the process's resident size with its import baseline (what asv's ``peakmem_`` measures).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Sequence


def interleaved_minima(fns: Sequence[Callable[[], object]], repeats: int = 5, sample_s: float = 0.0) -> list[float]:
    """Minimum wall time (s) per call of each callable over ``repeats`` interleaved samples (see the module
    docstring). With ``sample_s`` > 0 a sample of a callable is ``number`` back-to-back calls, ``number`` chosen
    once per callable (from one untimed call) so that a sample takes about ``sample_s``: a 0.4 ms call timed alone
    is mostly timer, cache and scheduler noise, as in asv's own sampling. Slow callables still get one call."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    numbers = [1] * len(fns)
    if sample_s > 0:
        for k, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            numbers[k] = max(1, int(sample_s / max(time.perf_counter() - started, 1e-7)))
    best = [float("inf")] * len(fns)
    for r in range(repeats):
        sequence = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for k in sequence:
            gc.collect()
            started = time.perf_counter()
            for _ in range(numbers[k]):
                fns[k]()
            best[k] = min(best[k], (time.perf_counter() - started) / numbers[k])
    return best


def ratio_of_minima(slow: Callable[[], object], fast: Callable[[], object], repeats: int = 5,
                    sample_s: float = 0.0) -> float:
    """min time of ``slow`` / min time of ``fast``, measured interleaved with the same repeats."""
    t_slow, t_fast = interleaved_minima([slow, fast], repeats, sample_s)
    return t_slow / t_fast


def traced_peak_mib(fn: Callable[[], object]) -> float:
    """Peak MiB allocated during one call of ``fn`` above what was allocated when it started."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return (peak - base) / 2**20


def calibrated_min_per_call(fn: Callable[[], object], samples: int = 10, sample_s: float = 0.01) -> float:
    """asv's sampling, with the minimum instead of the median: ``number`` calls per sample so that a sample takes
    at least ``sample_s`` (one call of a 1 ms function is mostly timer and scheduler noise), ``samples`` samples,
    the least time per call."""
    started = time.perf_counter()
    fn()
    one = max(time.perf_counter() - started, 1e-7)
    number = max(1, int(sample_s / one) + 1)
    best = float("inf")
    for _ in range(samples):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best
