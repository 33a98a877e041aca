"""Planning helpers: L(l, alpha), round counts, per-batch stage times (closed form == per-round sums)."""

from __future__ import annotations

import numpy as np
import pytest

from specedge.latency import planning
from specedge.latency.compute import AffineCompute
from specedge.scenario import Scenario


class _Opaque:
    """Wraps a predictor so that planning cannot see it is affine (forces the per-round grid path)."""

    def __init__(self, inner):
        self.inner = inner
        self.model = inner.model

    def latency_s(self, b, x, c):
        return self.inner.latency_s(b, x, c)


class _View:
    def __init__(self, sc, opaque):
        self.alpha = sc.alpha
        self.draft_compute = _Opaque(sc.draft_compute) if opaque else sc.draft_compute
        self.verify_compute = _Opaque(sc.verify_compute) if opaque else sc.verify_compute


def test_expected_tokens_per_round_by_hand():
    assert planning.expected_tokens_per_round(7, 0.8) == pytest.approx((1 - 0.8**8) / 0.2)
    np.testing.assert_allclose(planning.expected_tokens_per_round(np.array([1, 3]), 1.0), [2, 4])
    assert planning.expected_tokens_per_round(5, 0.0) == 1.0
    assert planning.planned_rounds(8, 3, 1.0) == 2 and planning.planned_rounds(9, 3, 1.0) == 3
    assert planning.planned_rounds(10, 5, 0.0, mode="ad") == 10


@pytest.fixture(scope="module")
def sc():
    return Scenario.from_preset("paper", pair="tinyllama-1.1b/llama-7b", tasks=4, seed=0)


def test_stage_totals_equal_per_round_sums(sc):
    assert isinstance(sc.draft_compute, AffineCompute)
    cases = [(1, 1, 1, 1), (4, 100, 37, 3), (16, 512, 2048, 7), (7, 33, 5, 10)]
    b, i, o, l = (np.array(v) for v in zip(*cases))
    d, v, n = planning.batch_stage_times_s(sc, b, i, o, l)
    d2, v2, n2 = planning.batch_stage_times_s(_View(sc, True), b, i, o, l)  # grid path
    np.testing.assert_array_equal(n, n2)
    np.testing.assert_allclose(d, d2, rtol=1e-10)
    np.testing.assert_allclose(v, v2, rtol=1e-10)
    for k, case in enumerate(cases):
        rd, rv = planning.batch_round_times_s(sc, *case)
        assert rd.size == n[k]
        assert rd.sum() == pytest.approx(d[k], rel=1e-10) and rv.sum() == pytest.approx(v[k], rel=1e-10)


def test_round_times_by_hand(sc):
    # one batch of 2, I=10, O=3, l=2, alpha=1 -> L=3, a single round
    d, v = planning.batch_round_times_s(sc, 2, 10, 3, 2, alpha=1.0)
    lat_d = sc.draft_compute.latency_s
    assert d.size == 1
    assert d[0] == pytest.approx(lat_d(2, 10, 0) + lat_d(2, 1, 10))  # prefill + (l - 1) decode passes
    assert v[0] == pytest.approx(sc.verify_compute.latency_s(2, 10 + 2 + 1, 0))
    # two rounds: the second drafts l passes from C = I + L = 13
    d, v = planning.batch_round_times_s(sc, 2, 10, 6, 2, alpha=1.0)
    assert d[1] == pytest.approx(lat_d(2, 1, 13) + lat_d(2, 1, 14))
    assert v[1] == pytest.approx(sc.verify_compute.latency_s(2, 3, 13))


def test_ad_mode(sc):
    d, v, n = planning.batch_stage_times_s(sc, np.array([3, 5]), 20, np.array([4, 9]), 7, mode="ad")
    _, v2, _ = planning.batch_stage_times_s(_View(sc, True), np.array([3, 5]), 20, np.array([4, 9]), 7, mode="ad")
    np.testing.assert_array_equal(n, [4, 9])
    np.testing.assert_array_equal(d, 0)
    np.testing.assert_allclose(v, v2, rtol=1e-10)
    _, rv = planning.batch_round_times_s(sc, 3, 20, 4, 7, mode="ad")
    pred = sc.verify_compute.latency_s
    assert rv.sum() == pytest.approx(pred(3, 20, 0) + pred(3, 1, 21) + pred(3, 1, 22) + pred(3, 1, 23))


def test_costs_grow_with_batch_and_output(sc):
    d, v, _ = planning.batch_stage_times_s(sc, np.array([1, 2, 4]), 100, 500, 5)
    assert np.all(np.diff(d) > 0) and np.all(np.diff(v) > 0)
    d, v, n = planning.batch_stage_times_s(sc, 4, 100, np.array([10, 100, 1000]), 5)
    assert np.all(np.diff(d) > 0) and np.all(np.diff(n) > 0)
