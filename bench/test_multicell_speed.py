"""pytest-benchmark: several cells sharing a verifier, 4 cells x 50 requests (a quick local figure).

Runs once in the normal test run (addopts has --benchmark-disable); measure with
``python -m pytest bench/test_multicell_speed.py --benchmark-enable``. The issue's target (16 cells x 10^4
requests in <= 30 s on one core) is tracked by asv (bench/multicell.py); extra_info gives microseconds per job and
the extrapolated time of the target case.
"""

from __future__ import annotations

from bench.multicell import make_case, run


def test_multicell_4x50(benchmark):
    case = make_case(4, 50)
    run(*make_case(1, 5))
    result = benchmark.pedantic(lambda: run(*case), rounds=3, iterations=1, warmup_rounds=0)
    jobs = sum(r.jobs for r in result.runs)
    assert jobs > 0 and all((r.completion_s > 0).all() for r in result.runs)
    benchmark.extra_info["jobs"] = jobs
    if benchmark.stats is not None:  # None under --benchmark-disable
        us_per_job = benchmark.stats.stats.min / jobs * 1e6
        benchmark.extra_info["us_per_job"] = us_per_job
        benchmark.extra_info["target_case_s_extrapolated"] = us_per_job * 1e-6 * jobs / 200 * 16 * 10_000
