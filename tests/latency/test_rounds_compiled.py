"""The compiled job loop of :func:`specedge.latency.rounds.sd_jobs_s` equals sd_draft_s / sd_verify_s bit for bit.

The replay (specedge.replay.core.simulate) uses sd_jobs_s for its stage times; its results must not change by a
single ulp, so the comparison is exact (``np.array_equal``), never approximate.
"""

from __future__ import annotations

import numpy as np
import pytest

from specedge.latency import rounds
from specedge.latency.host_overhead import JobOverhead, with_job_overhead
from specedge.scenario import Scenario


def _jobs(rng, n):
    b = rng.integers(1, 64, n)
    c = rng.integers(1, 6000, n) + rng.random(n)
    i = rng.integers(1, 3000, n).astype(np.float64)
    l = rng.integers(1, 13, n)
    first = rng.random(n) < 0.3
    return b, c, i, l, first


def _reference(draft, verify, *jobs):
    return rounds.sd_draft_s(draft, *jobs), rounds.sd_verify_s(verify, *jobs)


@pytest.mark.parametrize("pair", ["llama-68m/llama-7b", "tinyllama-1.1b/llama-13b"])
@pytest.mark.parametrize("ffn_factor", [1.0, 1.5])
def test_compiled_jobs_are_bit_identical(pair, ffn_factor):
    sc = Scenario.from_preset("paper", pair=pair, tasks=4, seed=0, flops_ffn_factor=ffn_factor)
    rng = np.random.default_rng(7)
    for n in (1, 2, 17, 500, 4000):
        jobs = _jobs(rng, n)
        td, tv = rounds.sd_jobs_s(sc.draft_compute, sc.verify_compute, *jobs)
        ed, ev = _reference(sc.draft_compute, sc.verify_compute, *jobs)
        assert td.dtype == ed.dtype == np.float64 and tv.dtype == ev.dtype == np.float64
        assert np.array_equal(td, ed) and np.array_equal(tv, ev)


def test_compiled_path_is_taken_for_the_replay_case(monkeypatch):
    sc = Scenario.from_preset("paper", tasks=4, seed=0)
    calls = []
    real = rounds._sd_jobs_affine
    monkeypatch.setattr(rounds, "_sd_jobs_affine", lambda *a: calls.append(1) or real(*a))
    rounds.sd_jobs_s(sc.draft_compute, sc.verify_compute, *_jobs(np.random.default_rng(0), 9))
    assert calls == [1]


def test_host_overhead_and_scalars_fall_back_to_the_numpy_functions():
    sc = Scenario.from_preset("paper", tasks=4, seed=0)
    ovh = JobOverhead(a_s=1e-3, per_seq_s=2e-5, per_token_s=3e-6)
    draft = with_job_overhead(sc.draft_compute, ovh)
    jobs = _jobs(np.random.default_rng(3), 50)
    td, tv = rounds.sd_jobs_s(draft, sc.verify_compute, *jobs)
    ed, ev = _reference(draft, sc.verify_compute, *jobs)
    assert np.array_equal(td, ed) and np.array_equal(tv, ev)
    scalar = rounds.sd_jobs_s(sc.draft_compute, sc.verify_compute, 3.0, 900.0, 800.0, 5, False)
    assert scalar == _reference(sc.draft_compute, sc.verify_compute, 3.0, 900.0, 800.0, 5, False)
