"""Host overhead per stage job: the fit recovers a known term, and every stage-time function adds it once per job.

Oracles are written from the equation t_host(b, x) = a + s b + t b x (module docstring of
specedge.latency.host_overhead), never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.errors import InputError
from specedge.latency import planning, rounds
from specedge.latency.host_overhead import (
    JobOverhead,
    fit_job_overhead,
    fit_run_overheads,
    job_overhead_s,
    outside_pass_times,
    with_job_overhead,
)
from specedge.scenario import Scenario

A, S, T = 2.0e-4, 3.0e-5, 4.0e-6  # the known term of the synthetic runs


def synthetic_records(a=A, s=S, t=T, *, noise_s=0.0, seed=0):
    """Job and pass records of a made-up run: 2 passes per job of known length, job = passes + a + s b + t b l."""
    rng = np.random.default_rng(seed)
    jobs, passes = [], []
    for node in ("draft", "verify"):
        for batch, (b, l) in enumerate([(1, 2), (2, 2), (3, 5), (4, 3), (6, 4), (8, 1)]):
            for rnd in range(5):
                start = 10.0 * batch + rnd
                durations = rng.uniform(1e-3, 5e-3, 2)
                t0 = start
                for d in durations:
                    passes.append({"node": node, "batch": batch, "round": rnd, "batch_size": b, "new_tokens": 1,
                                   "context_tokens": 8, "start_s": t0, "end_s": t0 + d, "phase": "decode"})
                    t0 += d
                host = a + s * b + t * b * l + (rng.normal(0, noise_s) if noise_s else 0.0)
                jobs.append({"node": node, "batch": batch, "round": rnd, "batch_size": b,
                             "speculation_length": l, "ready_s": start, "start_s": start,
                             "end_s": start + durations.sum() + host})
    return pd.DataFrame(jobs), pd.DataFrame(passes)


def test_the_fit_recovers_a_known_overhead_exactly():
    jobs, passes = synthetic_records()
    fits = fit_run_overheads([{"job": jobs, "pass": passes}])
    for node in ("draft", "verify"):
        o = fits[node].overhead
        assert (o.a_s, o.per_seq_s, o.per_token_s) == pytest.approx((A, S, T), rel=1e-6)
        assert fits[node].r2 == pytest.approx(1.0) and fits[node].dropped == ()
        assert fits[node].to_dict()["label"] == "fitted"


def test_the_fit_is_close_under_noise_and_never_negative():
    jobs, passes = synthetic_records(noise_s=2e-6, seed=3)
    fit = fit_run_overheads([{"job": jobs, "pass": passes}])["verify"].overhead
    assert fit.a_s == pytest.approx(A, rel=0.05)
    assert fit.per_seq_s == pytest.approx(S, rel=0.1)
    assert fit.per_token_s == pytest.approx(T, rel=0.2)
    jobs, passes = synthetic_records(a=5e-4, s=0.0, t=0.0)
    fit = fit_run_overheads([{"job": jobs, "pass": passes}])["draft"].overhead
    assert fit.per_seq_s >= 0 and fit.per_token_s >= 0 and fit.a_s == pytest.approx(5e-4, rel=1e-6)


def test_terms_the_jobs_cannot_identify_are_dropped():
    jobs, passes = synthetic_records()
    same_l = jobs.assign(speculation_length=4)
    samples = outside_pass_times(same_l, passes)
    fit = fit_job_overhead(samples, "draft")
    assert fit.dropped == ("per_token_s",) and fit.overhead.per_token_s == 0.0
    same_b = samples.assign(batch_size=2.0)
    assert fit_job_overhead(same_b, "draft").dropped == ("per_seq_s", "per_token_s")
    with pytest.raises(InputError, match="no draft jobs"):
        fit_job_overhead(samples[samples["node"] == "verify"], "draft")
    with pytest.raises(InputError, match="lack column"):
        outside_pass_times(jobs.drop(columns="end_s"), passes)


def test_bad_constants_are_refused():
    with pytest.raises(InputError, match="per_seq_s"):
        JobOverhead(1e-3, -1e-6, 0.0)
    with pytest.raises(InputError, match="a_s"):
        JobOverhead(float("nan"))


@pytest.fixture(scope="module")
def sc():
    return Scenario.from_preset("paper", pair="llama-68m/llama-7b", tasks=6, seed=0)


def test_paper_preset_has_no_overhead(sc):
    assert getattr(sc.draft_compute, "job_overhead", None) is None
    assert getattr(sc.verify_compute, "job_overhead", None) is None


def test_scenario_parameters_put_the_overhead_on_each_node(sc):
    ovh = sc.with_overrides(mbs_job_overhead_s=1e-3, mbs_job_overhead_per_token_s=2e-5, sbs_job_overhead_per_seq_s=7e-4)
    assert ovh.verify_compute.job_overhead == JobOverhead(1e-3, 0.0, 2e-5)
    assert ovh.draft_compute.job_overhead == JobOverhead(0.0, 7e-4, 0.0)
    params = JobOverhead(1e-3, 0.0, 2e-5).params("verify")
    assert params == {"mbs_job_overhead_s": 1e-3, "mbs_job_overhead_per_seq_s": 0.0,
                      "mbs_job_overhead_per_token_s": 2e-5}


@pytest.mark.parametrize("fn", ["sd_draft_s", "sd_verify_s"])
def test_every_sd_stage_time_adds_the_overhead_once_per_job(sc, fn):
    ovh = JobOverhead(1e-3, 2e-4, 3e-5)
    b = np.array([1.0, 4.0, 7.0, 7.0])
    c = np.array([40.0, 60.0, 90.0, 120.0])
    i = np.array([40.0, 50.0, 70.0, 70.0])
    l = np.array([1.0, 3.0, 6.0, 2.0])
    first = np.array([True, False, True, False])
    pred = sc.draft_compute if fn == "sd_draft_s" else sc.verify_compute
    base = getattr(rounds, fn)(pred, b, c, i, l, first)
    withh = getattr(rounds, fn)(with_job_overhead(pred, ovh), b, c, i, l, first)
    np.testing.assert_allclose(withh - base, 1e-3 + 2e-4 * b + 3e-5 * b * l, rtol=1e-9)


def test_ad_rounds_move_one_token_per_sequence(sc):
    ovh = JobOverhead(1e-3, 2e-4, 3e-5)
    b = np.array([1.0, 5.0])
    base = rounds.ad_round_s(sc.verify_compute, b, 80.0, 40.0, np.array([True, False]))
    withh = rounds.ad_round_s(with_job_overhead(sc.verify_compute, ovh), b, 80.0, 40.0, np.array([True, False]))
    np.testing.assert_allclose(withh - base, 1e-3 + 2e-4 * b + 3e-5 * b * 1.0, rtol=1e-9)


@pytest.mark.parametrize("mode", ["sd", "ad"])
@pytest.mark.parametrize("affine", [True, False])
def test_planning_stage_times_pay_the_overhead_in_every_round(sc, mode, affine):
    """Optimizers' per-batch totals grow by N rounds x t_host(b, x), on the closed-form and the grid path."""
    from dataclasses import replace

    ovh_d, ovh_v = JobOverhead(5e-4, 1e-4, 2e-5), JobOverhead(2e-3, 3e-4, 1e-5)
    base_sc = sc
    if not affine:  # a non-affine predictor takes the grid path
        from specedge.latency.compute import RooflineCompute

        base_sc = replace(sc, draft_compute=RooflineCompute(sc.draft, sc.draft_device, 0.5, 0.8, 1e-4),
                          verify_compute=RooflineCompute(sc.target, sc.verify_device, 0.5, 0.8, 1e-4))
    with_sc = replace(base_sc, draft_compute=with_job_overhead(base_sc.draft_compute, ovh_d),
                      verify_compute=with_job_overhead(base_sc.verify_compute, ovh_v))
    b = np.array([1.0, 3.0, 8.0])
    i, o, l = np.array([30.0, 50.0, 70.0]), np.array([40.0, 90.0, 200.0]), np.array([2.0, 4.0, 7.0])
    d0, v0, n0 = planning.batch_stage_times_s(base_sc, b, i, o, l, mode=mode)
    d1, v1, n1 = planning.batch_stage_times_s(with_sc, b, i, o, l, mode=mode)
    np.testing.assert_array_equal(n0, n1)
    x = l if mode == "sd" else 1.0
    np.testing.assert_allclose(v1 - v0, n0 * (2e-3 + 3e-4 * b + 1e-5 * b * x), rtol=1e-9)
    want_d = n0 * (5e-4 + 1e-4 * b + 2e-5 * b * l) if mode == "sd" else 0.0
    np.testing.assert_allclose(d1 - d0, want_d, rtol=1e-9, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0, 1e-2), s=st.floats(0, 1e-3), t=st.floats(0, 1e-4),
       b=st.integers(1, 64), x=st.integers(1, 12))
def test_overhead_is_nonnegative_and_grows_with_batch_and_tokens(a, s, t, b, x):
    o = JobOverhead(a, s, t)
    v = float(o.job_s(b, x))
    assert v >= 0
    assert float(o.job_s(b + 1, x)) >= v and float(o.job_s(b, x + 1)) >= v
    assert job_overhead_s(object(), b, x) == 0.0  # a predictor without the field pays nothing


def test_a_solver_rounding_below_the_bound_is_clipped_not_refused(monkeypatch):
    """bvls can return -5e-20 for a coefficient bounded at 0 (seen on a real online run); the fit must give 0, not
    an overhead the JobOverhead check refuses."""
    import scipy.optimize

    from specedge.latency.host_overhead import fit_job_overhead

    real = scipy.optimize.lsq_linear

    def rounding(*args, **kwargs):
        sol = real(*args, **kwargs)
        sol.x = sol.x.copy()
        sol.x[1] = -5e-20
        return sol

    monkeypatch.setattr(scipy.optimize, "lsq_linear", rounding)
    samples = pd.DataFrame({"node": "draft", "outside_s": [1e-3, 1.1e-3, 1.2e-3, 1.3e-3],
                            "batch_size": [1, 2, 3, 4], "tokens_per_seq": [1, 2, 1, 2], "job_s": 0.01})
    fit = fit_job_overhead(samples, "draft")
    assert fit.overhead.per_seq_s == 0.0 and fit.overhead.a_s > 0
