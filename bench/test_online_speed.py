"""pytest-benchmark: the online engine and its pure-Python reference (bench/online.py has the asv suite).

Runs once each in the normal test run (addopts has --benchmark-disable; small cases); measure with
``python -m pytest bench/test_online_speed.py --benchmark-enable``. Targets (one core): 10^5 requests <= 10 s
(bench/online.py ``TimeOnline``) and >= 20x the reference; member-rounds per second go to extra_info.
"""

from __future__ import annotations

import pytest

from bench.online import LOADS, make_case, run_engine, run_reference


@pytest.mark.parametrize("load", list(LOADS))
def test_online_engine(benchmark, load):
    sc, w = make_case(2000, load)
    run_engine(sc, w)  # compile outside the timing
    run = benchmark.pedantic(lambda: run_engine(sc, w), rounds=5, iterations=1)
    assert run.completion_s.min() > 0
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["member_rounds_per_second"] = run.member_rounds / benchmark.stats.stats.min


def test_online_reference(benchmark):
    sc, w = make_case(100, "heavy")
    run = run_engine(sc, w)
    out = benchmark.pedantic(lambda: run_reference(sc, w, run), rounds=1, iterations=1)
    assert len(out) == 100
