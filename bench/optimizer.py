"""asv benchmarks: the optimizers (time, the call's own peak allocation) and their quality (optimality gap, latency
reduction), and the default optimizer's contract.

Targets on one core, quiet machine: the paper's DP (``paper-dp``) at K = 100, l_max = 10 in <= 20 ms and at
K = 1000 in <= 500 ms, >= 20x faster than bench/reference_dp.py (an independent reference written from the
equations; same plan, checked in tests/policies/test_dp.py); the default optimizer (``dp-refined``) at K = 1000 in
<= 300 ms and <= 150 MB, at K = 10^4 in <= 5 s and <= 1 GB, within a median 0.5% and worst 3% (goal 0.5%) of the
exhaustive oracle over 50 random paper-preset instances with K = 10, on every shipped pair (``RefinedPairs``:
time, own allocation and the ratio to paper-dp beside it); and the contract ``specedge.optimize(sc)`` <= 3 x
``specedge.optimize(sc, "paper-dp")`` at K = 1000 (``Contract``).

Speed-ups and the contract are ratios of minima measured interleaved in one process with the same repeats
(:func:`bench.measure.interleaved_minima`); peak memory is the call's own allocation (``tracemalloc``,
:func:`bench.measure.traced_peak_mib`), not asv's ``peakmem_`` (the process's resident size, imports included).

Small grids by default; ``SPECEDGE_BENCH_LARGE=1`` adds 200 gap instances, K = 10^4 for the other optimizers
and more scenarios for the baseline reductions. Scenarios are built in ``setup`` (outside the timings).

Profile with ``asv profile --python=same "optimizer.PaperDP.time_paper_dp" "100, 'llama-68m/llama-7b'"``
(README "Benchmark history with asv").
"""

from __future__ import annotations

import os


LARGE = os.environ.get("SPECEDGE_BENCH_LARGE", "") not in ("", "0")
#: The shipped pairs the paper preset plans for (specedge.experiments.PAPER_PAIRS).
PAIRS = ["llama-68m/llama-7b", "tinyllama-1.1b/llama-7b", "tinyllama-1.1b/llama-13b"]
#: Other shipped model cards that pair up on the paper preset (RefinedPairs only).
OTHER_PAIRS = ["qwen3-1.7b/qwen3-32b", "smollm2-draft-7.1m/smollm2-135m"]
TASKS = [10, 100, 1000, 10000]
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

    def track_peak_alloc_mib_paper_dp(self, tasks, pair):
        from bench.measure import traced_peak_mib

        return traced_peak_mib(lambda: self.dp.solve(self.sc, l_values=range(1, 11)))

    track_peak_alloc_mib_paper_dp.unit = "MiB"

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
        """Reference time / optimized time: minima of 3 interleaved calls each; also checks the plans agree."""
        from bench.measure import interleaved_minima
        from bench.reference_dp import reference_solve
        from specedge.policies import dp

        out = {}
        t_ref, t_fast = interleaved_minima([lambda: out.__setitem__("ref", reference_solve(self.sc)),
                                            lambda: out.__setitem__("fast", dp.solve(self.sc))], repeats=3)
        bounds, l, _ = out["ref"]
        if out["fast"].best_bounds != bounds or out["fast"].best_l != l:
            raise AssertionError("optimized DP and reference DP disagree")
        return t_ref / t_fast

    track_speedup_over_reference.unit = "x"


class Optimizers:
    """Planning time and own peak allocation of the other optimizers, each on the same scenario."""

    params = ([10, 100, 1000] + ([10000] if LARGE else []), ["dp-refined", "trace-aware", "static-batching",
                                                            "oracle"])
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

    def track_peak_alloc_mib(self, tasks, policy):
        from bench.measure import traced_peak_mib

        return traced_peak_mib(lambda: self.policy.plan(self.sc))

    track_peak_alloc_mib.unit = "MiB"


class RefinedPairs:
    """The default optimizer (``dp-refined``) on every shipped pair at K = 1000 (and 10^4 with
    ``SPECEDGE_BENCH_LARGE``): time, own peak allocation, and its time over ``paper-dp``'s (minima of 3
    interleaved calls each, same scenario). Goals: <= 300 ms and <= 150 MB at K = 1000, <= 5 s and <= 1 GB at
    K = 10^4, one core, quiet."""

    params = ([1000] + ([10000] if LARGE else []), PAIRS + OTHER_PAIRS)
    param_names = ["tasks", "pair"]
    timeout = 900

    def setup(self, tasks, pair):
        from specedge.policies import get_policy

        self.sc = _scenario(tasks, pair)
        self.refined = get_policy("dp-refined")
        self.paper = get_policy("paper-dp")
        self.refined.plan(_scenario(20, pair))  # warm: imports, compiled kernels

    def time_dp_refined(self, tasks, pair):
        self.refined.plan(self.sc)

    def track_peak_alloc_mib(self, tasks, pair):
        from bench.measure import traced_peak_mib

        return traced_peak_mib(lambda: self.refined.plan(self.sc))

    track_peak_alloc_mib.unit = "MiB"

    def track_over_paper_dp(self, tasks, pair):
        from bench.measure import ratio_of_minima

        return ratio_of_minima(lambda: self.refined.plan(self.sc), lambda: self.paper.plan(self.sc), 3)

    track_over_paper_dp.unit = "x"


class Contract:
    """``specedge.optimize(sc)`` (the default) over ``specedge.optimize(sc, "paper-dp")`` on the ``paper`` preset:
    ratio of minima of 5 interleaved calls each in this process (the contract: <= 3 at K = 1000)."""

    params = [[1000] + ([10000] if LARGE else [])]
    param_names = ["tasks"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, tasks):
        import specedge
        from specedge.scenario import Scenario

        self.optimize = specedge.optimize
        self.sc = Scenario.from_preset("paper", tasks=tasks, seed=0)
        warm = Scenario.from_preset("paper", tasks=10, seed=0)
        self.optimize(warm)
        self.optimize(warm, "paper-dp")

    def track_default_over_paper_dp(self, tasks):
        from bench.measure import ratio_of_minima

        return ratio_of_minima(lambda: self.optimize(self.sc), lambda: self.optimize(self.sc, "paper-dp"), 5)

    track_default_over_paper_dp.unit = "x"


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
