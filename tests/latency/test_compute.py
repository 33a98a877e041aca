"""Compute predictors: affine (card-derived and fitted), roofline, measured interpolation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specedge.errors import ScenarioError
from specedge.latency import cards
from specedge.latency.compute import (
    AffineCompute,
    ComputeExtrapolationError,
    ComputePredictor,
    MeasuredCompute,
    RooflineCompute,
    fit_affine,
    fit_roofline,
)
from specedge.latency.flops import forward_flops

LLAMA_7B = cards.load_model_card("llama-7b")
LLAMA_68M = cards.load_model_card("llama-68m")
RTX_4500 = cards.load_device_card("rtx-4500")


def test_affine_from_device_by_hand():
    pred = AffineCompute.from_device(LLAMA_7B, RTX_4500, compute_efficiency=0.5, layer_overhead_s=1e-4)
    assert isinstance(pred, ComputePredictor)
    flops = 4 * 32 * 4096 * 8 * (8192 + 100 + 8 + 11008)
    expected = 4 * flops / (0.5 * 158.5e12) + 32 * 1e-4
    assert pred.latency_s(4, 8, 100) == pytest.approx(expected, rel=1e-12)
    p, q = pred.coefficients(4, 8)
    np.testing.assert_allclose(pred.latency_s(4, 8, np.arange(3)), p + q * np.arange(3))
    with pytest.raises(ScenarioError, match="efficiency"):
        AffineCompute.from_device(LLAMA_7B, RTX_4500, compute_efficiency=1.5, layer_overhead_s=0)


def _synthetic_trace(c1, c2, noise_s, seed=0):
    rng = np.random.default_rng(seed)
    b, x, c = np.meshgrid([1, 2, 4, 8], [1, 4, 8], [0, 128, 512], indexing="ij")
    b, x, c = (np.repeat(a.ravel(), 3) for a in (b, x, c))
    lat = c1 * b * forward_flops(LLAMA_68M, x, c) + c2 + rng.normal(0, noise_s, b.size)
    return pd.DataFrame({"phase": "decode", "batch_size": b, "new_tokens": x, "context_tokens": c,
                         "latency_ms": lat * 1e3})


def test_fit_affine_recovers_constants_and_reports_fit_quality():
    frame = _synthetic_trace(2e-12, 3e-3, 1e-5)
    fit = fit_affine(LLAMA_68M, frame)
    assert fit.c1_s_per_flop == pytest.approx(2e-12, rel=0.02)
    assert fit.c2_s == pytest.approx(3e-3, rel=0.02)
    assert 0.99 < fit.r2 <= 1.0
    assert fit.residuals_s.shape == (len(frame),) and fit.rmse_s < 3e-5
    pred = AffineCompute.from_trace(LLAMA_68M, frame)
    assert pred.fit.num_rows == len(frame)
    # a pure-noise trace fits badly: R^2 tells
    flat = frame.assign(latency_ms=np.random.default_rng(1).normal(5, 1, len(frame)))
    assert fit_affine(LLAMA_68M, flat).r2 < 0.2


def test_fit_affine_names_missing_columns():
    with pytest.raises(ScenarioError, match="my.parquet: compute trace misses column.*latency_ms"):
        fit_affine(LLAMA_68M, pd.DataFrame({"batch_size": [1], "new_tokens": [1], "context_tokens": [0]}),
                   source="my.parquet")


def test_roofline_switches_between_memory_and_compute_bound():
    pred = RooflineCompute(LLAMA_7B, RTX_4500, compute_efficiency=1.0, memory_efficiency=1.0, overhead_s=0.0)
    # batch 1 decode: the weights dominate -> memory-bound
    t1 = pred.latency_s(1, 1, 0)
    assert t1 == pytest.approx((LLAMA_7B.weight_bytes + 4 * 32 * 4096) / 432e9)
    # a huge prefill is compute-bound
    t2 = pred.latency_s(64, 512, 0)
    assert t2 == pytest.approx(64 * forward_flops(LLAMA_7B, 512, 0) / 158.5e12)
    # never below either bound
    b = np.array([1, 4, 16, 64])
    assert np.all(pred.latency_s(b, 8, 256) >= 1.0 / 1.0 * b * forward_flops(LLAMA_7B, 8, 256) / 158.5e12)


def test_fit_roofline_recovers_efficiencies_and_overhead():
    truth = RooflineCompute(LLAMA_68M, RTX_4500, compute_efficiency=0.3, memory_efficiency=0.6, overhead_s=2e-4)
    b, x, c = (a.ravel() for a in np.meshgrid([1, 4, 16, 64, 256], [1, 8, 128, 512], [0, 256, 1024]))
    frame = pd.DataFrame({"batch_size": b, "new_tokens": x, "context_tokens": c,
                          "latency_ms": truth.latency_s(b, x, c) * 1e3})
    fit = fit_roofline(LLAMA_68M, RTX_4500, frame)
    assert fit.compute.compute_efficiency == pytest.approx(0.3, rel=1e-3)
    assert fit.compute.memory_efficiency == pytest.approx(0.6, rel=1e-3)
    assert fit.compute.overhead_s == pytest.approx(2e-4, rel=1e-3)
    assert fit.r2 > 0.9999 and fit.num_rows == len(frame)
    # both regimes are present in this grid, and the fit tells them apart
    bound = fit.memory_bound(b, x, c)
    assert bound.any() and not bound.all()
    assert bound[(b == 1) & (x == 1)].all()


def _grid_trace():
    rows = []
    for b in (1, 4):
        for c in (0, 100, 200):
            rows.append(("decode", b, 1, c, 1.0 + b + c / 100))
        for x in (2, 6):
            for c in (100, 200):
                rows.append(("verify", b, x, c, 10.0 + b * x + c / 10))
    frame = pd.DataFrame(rows, columns=["phase", "batch_size", "new_tokens", "context_tokens", "latency_ms"])
    return pd.concat([frame, frame.assign(latency_ms=frame.latency_ms + 0.0)], ignore_index=True)


def test_measured_interpolates_and_routes_phases():
    pred = MeasuredCompute.from_trace(LLAMA_68M, _grid_trace(), source="ct")
    # grid points exactly, in seconds
    assert pred.latency_s(4, 1, 100) == pytest.approx((1 + 4 + 1) / 1e3)
    # linear in between (the function is linear on the grid)
    assert pred.latency_s(2.5, 1, 150) == pytest.approx((1 + 2.5 + 1.5) / 1e3)
    assert pred.latency_s(2, 4, 150) == pytest.approx((10 + 8 + 15) / 1e3)
    out = pred.latency_s(np.array([1, 4]), np.array([1, 6]), 200)
    np.testing.assert_allclose(out, [4e-3, (10 + 24 + 20) / 1e3])


def test_measured_refuses_to_extrapolate_unless_allowed():
    pred = MeasuredCompute.from_trace(LLAMA_68M, _grid_trace(), source="ct")
    with pytest.raises(ComputeExtrapolationError, match="ct: phase 'decode': batch_size=8 is outside .*1..4"):
        pred.latency_s(8, 1, 100)
    with pytest.raises(ComputeExtrapolationError, match="needs phase 'prefill'"):
        pred.latency_s(1, 64, 0)
    loose = MeasuredCompute.from_trace(LLAMA_68M, _grid_trace(), allow_extrapolation=True)
    assert loose.latency_s(8, 1, 100) == pytest.approx((1 + 8 + 1) / 1e3)


def test_measured_rejects_incomplete_grid():
    frame = _grid_trace()
    frame = frame[~((frame.phase == "verify") & (frame.batch_size == 4) & (frame.new_tokens == 6)
                    & (frame.context_tokens == 200))]
    with pytest.raises(ScenarioError, match="phase 'verify' grid is incomplete: no sample at batch_size=4, "
                                            "new_tokens=6, context_tokens=200"):
        MeasuredCompute.from_trace(LLAMA_68M, frame)
