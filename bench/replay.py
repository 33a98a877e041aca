"""asv benchmarks: trace-driven replay (the inner loop of every optimizer check and sweep).

Target on one core: >= 5 million simulated (task, round) steps per second in trace-driven ``sd-pipeline`` mode
(K = 100, outputs up to 2048 tokens), and >= 50x the per-event pure-Python reference (bench/reference_replay.py).
The case: the paper preset (LLaMA-68M/7B), tasks sorted by input and cut into batches of 10, l = 7, the
equal-finish bandwidth allocation, acceptance replayed from a synthetic recorded-style trace
(:func:`synthetic_trace`: 200 requests x 256 rounds, drafted = 10, geometric acceptance with alpha = 0.8 --
generated here, not a recording). ``make_case`` is shared with bench/test_replay_speed.py.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

LARGE = os.environ.get("SPECEDGE_BENCH_LARGE", "") not in ("", "0")
BATCH = 10
SPECULATION_LENGTH = 7


def synthetic_trace(requests: int = 200, rounds: int = 256, drafted: int = 10, alpha: float = 0.8,
                    seed: int = 0) -> pd.DataFrame:
    """Recorded-style acceptance rounds drawn i.i.d. (SYNTHETIC, for timing only)."""
    rng = np.random.default_rng(seed)
    g = np.floor(np.log1p(-rng.random(requests * rounds)) / np.log(alpha)).astype(np.int64)
    return pd.DataFrame({
        "request_id": np.repeat([f"req-{i:04d}" for i in range(requests)], rounds),
        "turn": 0,
        "round": np.tile(np.arange(rounds), requests),
        "drafted": drafted,
        "accepted": np.minimum(g, drafted),
    })


def make_case(num_tasks: int, mode: str = "sd-pipeline", acceptance="trace", seed: int = 0):
    """(scenario, plan) of the benchmark case with ``num_tasks`` tasks."""
    from specedge import Scenario

    source = synthetic_trace() if acceptance == "trace" else acceptance
    sc = Scenario.from_preset("paper", pair="llama-68m/llama-7b", tasks=num_tasks, seed=seed, acceptance=source)
    order = np.argsort(sc.tasks["input_tokens"].to_numpy(), kind="stable")
    batches = [order[i : i + BATCH].tolist() for i in range(0, num_tasks, BATCH)]
    plan = {"batches": batches, "speculation_length": SPECULATION_LENGTH,
            "bandwidth_hz": sc.optimal_bandwidth_hz().tolist(), "mode": mode}
    return sc, plan


def steps(result) -> int:
    """Simulated (task, round) steps of a replay."""
    return int(sum(int(r.rounds.sum()) for r in result.runs))


class Replay:
    """evaluate() on K tasks: time, the call's own peak allocation, and simulated (task, round) steps per second.

    Why ``time_evaluate`` and ``track_million_steps_per_second`` once disagreed 3.6x: they used different
    statistics of different samples. asv reports ``time_*`` as the median over its samples (each sample
    ``number`` calls, calibrated to >= 10 ms), while the tracker took the minimum of 5 single calls. At K = 10 a
    call takes about 1 ms, so under load the median is mostly scheduler delay: measured under load (load average
    about 6-7) for K = 10, sd-pipeline, asv gave 3.09 ms +- 4 ms (median, IQR) while single calls took 0.8-1.2 ms
    at best, i.e. 0.9 vs 3.5 M steps/s. Neither number is wrong; they answer different questions. The tracker now
    samples the way asv does (calibrated ``number``, 10 samples, :func:`bench.measure.calibrated_min_per_call`)
    and reports the minimum, so on a quiet machine steps / ``time_evaluate`` and the tracker agree to within the
    median-vs-minimum spread; compare them only on a quiet machine (``asv run --python=same -a repeat=10``).
    """

    params = ([10, 100, 1000], ["sd-pipeline", "sd-serial", "ad"])
    param_names = ["num_tasks", "mode"]
    timeout = 300

    def setup(self, num_tasks, mode):
        from specedge import evaluate

        self.evaluate = evaluate
        self.sc, self.plan = make_case(num_tasks, mode)
        self.evaluate(self.sc, self.plan)  # warm-up (imports, caches)

    def time_evaluate(self, num_tasks, mode):
        self.evaluate(self.sc, self.plan).latency_s

    def track_peak_alloc_mib(self, num_tasks, mode):
        from bench.measure import traced_peak_mib

        return traced_peak_mib(lambda: self.evaluate(self.sc, self.plan))

    track_peak_alloc_mib.unit = "MiB"

    def track_million_steps_per_second(self, num_tasks, mode):
        from bench.measure import calibrated_min_per_call

        per_call = calibrated_min_per_call(lambda: self.evaluate(self.sc, self.plan))
        return steps(self.evaluate(self.sc, self.plan)) / per_call / 1e6

    track_million_steps_per_second.unit = "M steps/s"


class ReplayVsReference:
    """Speed-up of the vectorised replay over the per-event pure-Python reference (sd-pipeline, target >= 50x at
    every K in 10..10^4): ratio of the minima per call of 3 interleaved samples each (a sample of the fast side
    is enough back-to-back calls to take ~10 ms, :func:`bench.measure.interleaved_minima` ``sample_s``; the
    reference, 35 ms at K = 10, gets one call). K = 10^4 (reference ~1 min per call) with
    ``SPECEDGE_BENCH_LARGE``."""

    params = [[10, 100, 1000] + ([10000] if LARGE else [])]
    param_names = ["num_tasks"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, num_tasks):
        from specedge import evaluate

        self.evaluate = evaluate
        self.sc, self.plan = make_case(num_tasks)
        self.evaluate(self.sc, self.plan)  # warm-up (imports, compiled kernels)

    def track_speedup(self, num_tasks):
        from bench.measure import ratio_of_minima
        from bench.reference_replay import reference_replay

        return ratio_of_minima(lambda: reference_replay(self.sc, self.plan),
                               lambda: self.evaluate(self.sc, self.plan), repeats=1 if num_tasks >= 10000 else 3,
                               sample_s=0.01)

    track_speedup.unit = "x"
