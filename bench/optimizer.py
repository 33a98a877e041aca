"""asv benchmarks: the optimizers (time, peak memory) and their quality (optimality gap, latency reduction).

Targets on one core: the paper's DP (``paper-dp``) at K = 100, l_max = 10 in <= 20 ms and at K = 1000 in
<= 500 ms, >= 20x faster than bench/reference_dp.py (the same recurrence written straightforwardly; same plan,
checked in tests/policies/test_dp.py); the best optimizer within a median 0.5% and worst 3% of the exhaustive
oracle over 50 random paper-preset instances with K = 10.

Small grids by default; ``SPECEDGE_BENCH_LARGE=1`` adds K = 3000 to the timings, 200 gap instances and more
scenarios for the baseline reductions. Scenarios are built in ``setup`` (outside the timings).

Profile with ``asv profile --python=same "optimizer.PaperDP.time_paper_dp" "100, 'llama-68m/llama-7b'"``
(README "Benchmark history with asv").
"""

from __future__ import annotations

import os


LARGE = os.environ.get("SPECEDGE_BENCH_LARGE", "") not in ("", "0")
PAIRS = ["llama-68m/llama-7b", "tinyllama-1.1b/llama-7b"]
TASKS = [10, 100, 1000] + ([3000] if LARGE else [])
GAP_INSTANCES = 200 if LARGE else 50
GAP_POLICIES = ["paper-dp", "dp-per-batch-l", "dp-refined", "trace-aware"]
BASELINES = ["ad", "sd-serial", "no-batching", "fixed-l", "static-batching", "max-batching", "heuristic-batching",
             "uniform-bandwidth", "paper-dp"]


def _scenario(tasks: int, pair: str, seed: int = 0, **kw):
    from specedge.scenario import Scenario

    return Scenario.from_preset("paper", pair=pair, alpha=0.8, tasks=tasks, seed=seed, **kw)


class PaperDP:
    """The paper's DP (all l in 1..10, one partition per l) and the per-batch-l DP."""

    params = (TASKS, PAIRS)
    param_names = ["tasks", "pair"]
    timeout = 300

    def setup(self, tasks, pair):
        from specedge.policies import dp

        self.sc = _scenario(tasks, pair)
        self.dp = dp
        dp.solve(self.sc, l_values=range(1, 2))  # warm imports and caches of the latency model

    def time_paper_dp(self, tasks, pair):
        self.dp.solve(self.sc, l_values=range(1, 11))

    def peakmem_paper_dp(self, tasks, pair):
        self.dp.solve(self.sc, l_values=range(1, 11))

    def time_per_batch_l_dp(self, tasks, pair):
        self.dp.solve(self.sc, l_values=range(1, 11), per_l=False, per_batch_l=True)


class ReferenceDP:
    """The straightforward reference (bench/reference_dp.py); K = 1000 would take hours, so it stops at 100."""

    params = ([10, 100], PAIRS)
    param_names = ["tasks", "pair"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, tasks, pair):
        self.sc = _scenario(tasks, pair)

    def time_reference_dp(self, tasks, pair):
        from bench.reference_dp import reference_solve

        reference_solve(self.sc)

    def track_speedup_over_reference(self, tasks, pair):
        """Reference time / optimized time (best of 5), on the same scenario; also checks the plans agree."""
        import time

        from bench.reference_dp import reference_solve
        from specedge.policies import dp

        started = time.perf_counter()
        bounds, l, _ = reference_solve(self.sc)
        ref_s = time.perf_counter() - started
        fast_s = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            sol = dp.solve(self.sc)
            fast_s = min(fast_s, time.perf_counter() - started)
        if sol.best_bounds != bounds or sol.best_l != l:
            raise AssertionError("optimized DP and reference DP disagree")
        return ref_s / fast_s

    track_speedup_over_reference.unit = "x"


class Optimizers:
    """Planning time of the other optimizers, each on the same scenario."""

    params = ([10, 100] + ([1000] if LARGE else []), ["dp-refined", "trace-aware", "static-batching", "oracle"])
    param_names = ["tasks", "policy"]
    timeout = 600

    def setup(self, tasks, policy):
        if policy == "oracle" and tasks > 12:
            raise NotImplementedError("the oracle is exhaustive: K <= 12")
        from specedge.policies import get_policy

        self.sc = _scenario(tasks, "tinyllama-1.1b/llama-7b")
        self.policy = get_policy(policy)

    def time_plan(self, tasks, policy):
        self.policy.plan(self.sc)

    def peakmem_plan(self, tasks, policy):
        self.policy.plan(self.sc)


class OptimalityGap:
    """Gap (percent) of each optimizer's replayed makespan over the oracle's, on random paper-preset instances
    (K = 10; pairs and alpha in 0.6..0.9 cycled; seeds 0..GAP_INSTANCES-1)."""

    params = [GAP_POLICIES]
    param_names = ["policy"]
    timeout = 3600

    def setup_cache(self):
        from specedge.experiments import optimality_gaps

        frame = optimality_gaps(GAP_INSTANCES, tasks=10, policies=GAP_POLICIES)
        return {p: frame.loc[frame.policy == p, "gap_pct"].tolist() for p in GAP_POLICIES}

    def track_median_gap(self, gaps, policy):
        import numpy as np

        return float(np.median(gaps[policy]))

    def track_worst_gap(self, gaps, policy):
        return float(max(gaps[policy]))

    track_median_gap.unit = "%"
    track_worst_gap.unit = "%"


class BaselineReduction:
    """Latency change (percent) of specedge's best optimizer (dp-refined) against each baseline, K = 100,
    alpha = 0.8, seeds 0..2 averaged (negative = the optimizer is faster)."""

    params = [BASELINES]
    param_names = ["baseline"]
    timeout = 1800

    def setup_cache(self):
        from specedge.policies import replay

        seeds = range(5 if LARGE else 3)
        out = {b: [] for b in BASELINES}
        for pair in PAIRS:
            for seed in seeds:
                sc = _scenario(100, pair, seed)
                best = replay(sc, "dp-refined").latency_s
                for b in BASELINES:
                    out[b].append(100.0 * (best / replay(sc, b).latency_s - 1.0))
        return out

    def track_reduction_pct(self, reductions, baseline):
        return float(sum(reductions[baseline]) / len(reductions[baseline]))

    track_reduction_pct.unit = "%"
