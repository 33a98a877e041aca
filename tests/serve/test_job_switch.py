"""fit_job_switch on samples whose answer is worked out by hand, and the switch jobs of a grid without decode cells
(the target's case). The measurer end to end is tested in test_steady_grid."""

from __future__ import annotations

import numpy as np
import pytest

from specedge.serve.job_switch import COLUMNS, fit_job_switch, switch_meta


def samples(excess_ms, bs=(1, 2, 4), ds=(1, 3, 5), steady_ms=2.0, copies=3):
    """Samples [b, D, c, job_ms, steady_ms] whose job excess is excess_ms(b, D), several copies per (b, D)."""
    return [[b, d, 32.0, steady_ms * d + excess_ms(b, d), steady_ms * d] for b in bs for d in ds
            for _ in range(copies)]


def test_all_three_terms_are_fitted_back():
    a, s, t = fit_job_switch(samples(lambda b, d: 0.3 + 0.02 * b + 0.01 * b * d))
    assert (a, s, t) == pytest.approx((0.3e-3, 0.02e-3, 0.01e-3), abs=1e-12)


def test_medians_per_b_and_d_ignore_a_minority_of_outliers():
    rows = samples(lambda b, d: 0.3 + 0.02 * b)
    rows += [[b, d, 32.0, 500.0, 2.0 * d] for b in (1, 2, 4) for d in (1, 3, 5)]  # one outlier per (b, D)
    assert fit_job_switch(rows) == pytest.approx((0.3e-3, 0.02e-3, 0.0), abs=1e-12)


def test_one_batch_size_fits_the_intercept_alone():
    assert fit_job_switch(samples(lambda b, d: 0.25 + 0.01 * d, bs=(2,))) == pytest.approx((0.28e-3, 0, 0),
                                                                                          abs=1e-12)


def test_one_length_fits_no_per_token_term():
    assert fit_job_switch(samples(lambda b, d: 0.4 + 0.05 * b, ds=(1,))) == pytest.approx((0.4e-3, 0.05e-3, 0),
                                                                                         abs=1e-12)


def test_fewer_points_than_terms_gives_the_mean_as_intercept():
    rows = [[1, 1, 32.0, 2.2, 2.0], [2, 3, 32.0, 6.6, 6.0]]  # two b and two D, but only two (b, D) points
    assert fit_job_switch(rows) == pytest.approx((0.4e-3, 0.0, 0.0), abs=1e-12)


def test_terms_are_non_negative_and_negative_excess_clamps_to_zero():
    a, s, t = fit_job_switch(samples(lambda b, d: -0.2 + 0.1 * b))  # unconstrained: a = -0.2 ms
    assert a == 0.0 and s > 0 and t >= 0
    assert fit_job_switch(samples(lambda b, d: -0.5)) == (0.0, 0.0, 0.0)
    assert fit_job_switch([[2, 1, 32.0, 1.0, 2.0]]) == (0.0, 0.0, 0.0)


def test_rows_without_a_steady_time_are_dropped_and_no_rows_fit_nothing():
    rows = samples(lambda b, d: 0.3)
    rows += [[b, 3, 32.0, 900.0, np.nan] for b in (1, 2, 4)]
    assert fit_job_switch(rows) == pytest.approx((0.3e-3, 0.0, 0.0), abs=1e-12)
    assert fit_job_switch([]) == (0.0, 0.0, 0.0)
    assert fit_job_switch([[1, 1, 32.0, 5.0, np.nan]]) == (0.0, 0.0, 0.0)


def test_metadata_carries_samples_fit_and_settings():
    rows = samples(lambda b, d: 0.3 + 0.02 * b + 0.01 * b * d)
    meta = switch_meta(rows, first_tokens=1, lengths=(1, 3, 5), rounds=3, idle_s=0.005)
    assert meta["columns"] == list(COLUMNS) == ["batch_size", "passes", "context_tokens", "job_ms", "steady_ms"]
    assert meta["samples"] == [list(map(float, r)) for r in rows]
    assert meta["fit"] == pytest.approx({"a_s": 0.3e-3, "per_seq_s": 0.02e-3, "per_token_s": 0.01e-3}, abs=1e-12)
    assert (meta["version"], meta["first_tokens"], meta["lengths"], meta["rounds"], meta["idle_s"]) == \
        (1, 1, [1, 3, 5], 3, 0.005)
    assert "blocking wait" in meta["note"]


def test_a_grid_without_decode_cells_still_times_one_pass_switch_jobs():
    """The target's switch jobs need only the verify width they start with: no (b, 1) steady time."""
    pytest.importorskip("torch", reason="needs torch: the record extra")
    from specedge.record.compute_trace import ComputeGrid
    from specedge.serve.measure import RunGrid
    from specedge.serve.steady_grid import measure_steady_compute
    from tests.serve.fake_engine import pass_ms
    from tests.serve.test_steady_grid import K_A_MS, K_S_MS, W_T_MS, FakeEngine

    kw = dict(batch_sizes=(1, 3), new_tokens=(2, 5), repeats=1, warmup=0)
    grid = RunGrid(ComputeGrid(context_tokens=(8,), phases=("prefill",), **kw),
                   ComputeGrid(context_tokens=(16,), phases=("verify",), **kw))
    eng = FakeEngine()
    _, meta = measure_steady_compute(eng, grid, vocab_size=11, name="fake", dataset_id="x", clock=eng.clock,
                                     idle=eng.idle, switch_first_tokens=5, switch_lengths=(1,))
    s = np.array(meta["job_switch"]["samples"])
    assert len(s) == 2 * 3 * 2 and set(s[:, 1]) == {1}
    assert np.allclose(s[:, 4], [pass_ms(b, 5) for b in s[:, 0]])
    assert meta["job_switch"]["fit"]["a_s"] == pytest.approx(K_A_MS / 1e3, abs=1e-9)
    assert meta["job_switch"]["fit"]["per_seq_s"] == pytest.approx((K_S_MS + W_T_MS) / 1e3, abs=1e-9)


def test_as_many_points_as_terms_is_solved_exactly():
    rows = [[b, d, 32.0, 2.0 * d + 0.3 + 0.02 * b + 0.01 * b * d, 2.0 * d] for b, d in ((1, 1), (2, 1), (2, 3))]
    assert fit_job_switch(rows) == pytest.approx((0.3e-3, 0.02e-3, 0.01e-3), abs=1e-12)


def test_two_pass_jobs_are_held_against_two_steady_passes():
    pytest.importorskip("torch", reason="needs torch: the record extra")
    from tests.serve.fake_engine import pass_ms
    from tests.serve.test_steady_grid import FakeEngine, measure

    eng = FakeEngine()
    _, meta = measure(eng, switch_lengths=(2,), switch_rounds=1)
    s = np.array(meta["job_switch"]["samples"])
    assert set(s[:, 1]) == {2} and np.allclose(s[:, 4], [2 * pass_ms(b, 1) for b in s[:, 0]])
