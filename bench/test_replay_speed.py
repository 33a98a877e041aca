"""pytest-benchmark: trace-driven replay at K = 100 (outputs up to 2048) and the pure-Python reference.

Runs once each in the normal test run (addopts has --benchmark-disable); measure with
``python -m pytest bench/test_replay_speed.py --benchmark-enable``. Targets (one core): >= 5 M simulated
(task, round) steps/s in sd-pipeline mode and >= 50x the reference; both figures go to extra_info.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.measure import ratio_of_minima
from bench.reference_replay import reference_replay
from bench.replay import make_case, steps


@pytest.mark.parametrize("mode", ["sd-pipeline", "sd-serial", "ad"])
def test_replay_trace_k100(benchmark, mode):
    from specedge import evaluate

    sc, plan = make_case(100, mode)
    result = benchmark.pedantic(lambda: evaluate(sc, plan), rounds=20, iterations=1, warmup_rounds=1)
    assert result.latency_s > 0
    benchmark.extra_info["steps"] = steps(result)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["million_steps_per_second"] = steps(result) / benchmark.stats.stats.min / 1e6


def test_reference_k100_gives_identical_results(benchmark):
    from specedge import evaluate

    sc, plan = make_case(100)
    ref = benchmark.pedantic(lambda: reference_replay(sc, plan), rounds=1, iterations=1)
    run = evaluate(sc, plan).runs[0]
    np.testing.assert_array_equal(run.rounds, ref["rounds"])
    np.testing.assert_allclose(run.completion_s, ref["completion_s"], rtol=1e-9)
    if benchmark.enabled:
        benchmark.extra_info["speedup_vs_reference"] = ratio_of_minima(lambda: reference_replay(sc, plan),
                                                                       lambda: evaluate(sc, plan), repeats=3,
                                                                       sample_s=0.01)
