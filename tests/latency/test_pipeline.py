"""The two-stage recursion: hand-worked 2-batch x 2-round cases, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.latency import pipeline

READY = [0.0, 1.0]
TD = np.array([[1.0, 2.0], [1.0, 1.0]])
TV = np.array([[3.0, 1.0], [2.0, 2.0]])


def test_pipelined_by_hand():
    # jobs (r0,b0) (r0,b1) (r1,b0) (r1,b1):
    # a=1,b=4 | a=max(1,1)+1=2, b=max(2,4)+2=6 | a=max(2,4)+2=6, b=max(6,6)+1=7 | a=max(6,6)+1=7, b=max(7,7)+2=9
    t = pipeline.pipelined(READY, TD, TV)
    np.testing.assert_array_equal(t.draft_end_s, [[1, 6], [2, 7]])
    np.testing.assert_array_equal(t.verify_end_s, [[4, 7], [6, 9]])
    assert t.makespan_s == 9.0
    np.testing.assert_array_equal(t.batch_end_s, [7, 9])


def test_serial_and_ad_by_hand():
    s = pipeline.serial(READY, TD, TV)
    np.testing.assert_array_equal(s.verify_end_s, [[4, 10], [7, 13]])
    np.testing.assert_array_equal(s.draft_end_s, [[1, 9], [5, 11]])
    a = pipeline.autoregressive(READY, TV)
    np.testing.assert_array_equal(a.verify_end_s, [[3, 6], [5, 8]])


def test_fronthaul_delay_by_hand():
    t = pipeline.pipelined(READY, TD, TV, fronthaul_delay_s=0.5)
    np.testing.assert_allclose(t.verify_end_s, [[4.5, 8.5], [6.5, 10.5]])
    np.testing.assert_allclose(t.draft_end_s, [[1, 7], [2, 8]])
    s = pipeline.serial(READY, TD, TV, fronthaul_delay_s=0.5)
    np.testing.assert_allclose(s.verify_end_s, [[4.5, 11.5], [8, 15]])


def test_finished_batches_leave_the_rotation():
    # batch 1 has a single round: round 1 is batch 0 alone
    td = [np.array([1.0, 2.0]), np.array([1.0])]
    tv = [np.array([3.0, 1.0]), np.array([2.0])]
    t = pipeline.pipelined([0.0, 0.0], td, tv)
    # (0,0): a=1,b=4; (0,1): a=2,b=6; (1,0): a=max(2,4)+2=6, b=max(6,6)+1=7
    np.testing.assert_array_equal(t.verify_end_s[0], [4, 7])
    assert t.verify_end_s[1, 0] == 6 and np.isnan(t.verify_end_s[1, 1])
    with pytest.raises(ValueError, match="contiguous"):
        pipeline.pipelined([0.0], np.array([[1, np.nan, 1.0]]), np.array([[1, np.nan, 1.0]]))


def test_cycle_vectorised_path_matches_scalar_loop():
    rng = np.random.default_rng(3)
    m, n = 60, 40
    rounds = rng.integers(1, n + 1, m)
    td = rng.uniform(0.1, 2.0, (m, n))
    tv = rng.uniform(0.1, 2.0, (m, n))
    mask = np.arange(n)[None, :] < rounds[:, None]
    td[~mask] = np.nan
    tv[~mask] = np.nan
    ready = rng.uniform(0, 5, m)
    rnd, bat = np.nonzero(mask.T)
    index = np.full((m, n), -1)
    index[bat, rnd] = np.arange(rnd.size)
    prev = np.where(rnd > 0, index[bat, np.maximum(rnd - 1, 0)], -1)
    starts = np.flatnonzero(np.r_[True, rnd[1:] != rnd[:-1]])
    for f in (0.0, 0.3):
        a1, b1 = pipeline._pipelined_scalar(prev, ready[bat], td[bat, rnd], tv[bat, rnd], f)
        a2, b2 = pipeline._pipelined_cycles(prev, ready[bat], td[bat, rnd], tv[bat, rnd], f, starts)
        np.testing.assert_allclose(a1, a2, rtol=1e-12)
        np.testing.assert_allclose(b1, b2, rtol=1e-12)
    # and the serial cummax shortcut matches the serial loop
    a1, b1 = pipeline._serial_scalar(prev, ready[bat], td[bat, rnd], tv[bat, rnd], 0.0)
    _, b2 = pipeline.run_jobs("sd-serial", prev, ready[bat], td[bat, rnd], tv[bat, rnd])
    np.testing.assert_allclose(b1, b2, rtol=1e-12)


@st.composite
def timelines(draw):
    m = draw(st.integers(1, 5))
    n = draw(st.integers(1, 6))
    vals = st.floats(0.0, 10.0, allow_nan=False)
    rounds = draw(st.lists(st.integers(1, n), min_size=m, max_size=m))
    td = np.array(draw(st.lists(vals, min_size=m * n, max_size=m * n))).reshape(m, n)
    tv = np.array(draw(st.lists(vals, min_size=m * n, max_size=m * n))).reshape(m, n)
    mask = np.arange(n)[None, :] < np.array(rounds)[:, None]
    td[~mask] = np.nan
    tv[~mask] = np.nan
    ready = np.array(draw(st.lists(vals, min_size=m, max_size=m)))
    f = draw(st.sampled_from([0.0, 0.25]))
    return ready, td, tv, f


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_pipelined_never_slower_than_serial(case):
    ready, td, tv, f = case
    p = pipeline.pipelined(ready, td, tv, fronthaul_delay_s=f)
    s = pipeline.serial(ready, td, tv, fronthaul_delay_s=f)
    assert np.all(p.verify_end_s[~np.isnan(tv)] <= s.verify_end_s[~np.isnan(tv)] + 1e-9)
    assert p.makespan_s <= s.makespan_s + 1e-9


@settings(max_examples=100, deadline=None)
@given(timelines(), st.integers(0, 10**6), st.floats(0.0, 5.0))
def test_longer_stages_never_shorten_the_makespan(case, pick, extra):
    ready, td, tv, f = case
    base = pipeline.pipelined(ready, td, tv, fronthaul_delay_s=f).makespan_s
    present = np.flatnonzero(~np.isnan(tv.ravel()))
    j = present[pick % present.size]
    for arr in (td, tv):
        longer = arr.copy().ravel()
        longer[j] += extra
        longer = longer.reshape(arr.shape)
        args = (longer, tv) if arr is td else (td, longer)
        assert pipeline.pipelined(ready, *args, fronthaul_delay_s=f).makespan_s >= base - 1e-9
