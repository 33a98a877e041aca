"""Uplink: hand-worked channel, and the allocation properties of docs/model.md section 2."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.errors import PlanError
from specedge.latency import network

PARAMS = SimpleNamespace(tx_power_w=0.2, noise_power_dbm=-106.0, path_loss_db_at_1km=128.1,
                         path_loss_db_per_decade=37.6)


def test_channel_by_hand():
    # at 1 km: rx = 10 log10(200 mW) - 128.1 = -105.0897 dBm; SNR = 0.9103 dB
    snr = 10 ** ((10 * np.log10(200) - 128.1 + 106) / 10)
    assert network.spectral_efficiency(1000.0, PARAMS) == pytest.approx(np.log2(1 + snr))
    # at 100 m the loss is 37.6 dB lower
    assert network.path_loss_db(100.0, PARAMS) == pytest.approx(128.1 - 37.6)
    assert network.spectral_efficiency(400.0, PARAMS) > network.spectral_efficiency(1000.0, PARAMS)


def test_upload_times_and_allocations_by_hand():
    d = np.array([1000.0, 4000.0])
    eta = np.array([2.0, 1.0])
    np.testing.assert_allclose(network.uniform_allocation(2, 10.0), [5.0, 5.0])
    np.testing.assert_allclose(network.upload_times_s(d, eta, 5.0), [100.0, 800.0])
    b = network.equal_finish_allocation(d, eta, 10.0)
    np.testing.assert_allclose(b, [10 * 500 / 4500, 10 * 4000 / 4500])
    np.testing.assert_allclose(network.upload_times_s(d, eta, b), [450.0, 450.0])
    assert network.optimal_upload_time_s(d, eta, 10.0) == pytest.approx(450.0)
    with pytest.raises(PlanError, match="> 0 Hz"):
        network.upload_times_s(d, eta, np.array([1.0, 0.0]))


payloads = st.lists(st.floats(1.0, 1e7), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(payloads, st.floats(0.5, 10.0), st.floats(1e3, 1e8), st.floats(1.0, 10.0))
def test_more_bandwidth_never_lengthens_upload(d, eta_scale, bandwidth, factor):
    d = np.array(d)
    eta = np.linspace(0.5, 6.0, d.size) * eta_scale
    for alloc in (network.uniform_allocation(d.size, bandwidth), network.equal_finish_allocation(d, eta, bandwidth)):
        t = network.upload_times_s(d, eta, alloc).max()
        t_more = network.upload_times_s(d, eta, alloc * factor).max()
        assert t_more <= t * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(payloads, st.floats(1e3, 1e8), st.integers(0, 2**31))
def test_equal_finish_finishes_together_and_never_loses_to_uniform(d, bandwidth, seed):
    d = np.array(d)
    eta = np.random.default_rng(seed).uniform(0.2, 8.0, d.size)
    b = network.equal_finish_allocation(d, eta, bandwidth)
    assert b.sum() == pytest.approx(bandwidth, rel=1e-9)
    t = network.upload_times_s(d, eta, b)
    np.testing.assert_allclose(t, t[0], rtol=1e-9)
    assert t[0] == pytest.approx(network.optimal_upload_time_s(d, eta, bandwidth), rel=1e-9)
    uniform = network.upload_times_s(d, eta, network.uniform_allocation(d.size, bandwidth)).max()
    assert t.max() <= uniform * (1 + 1e-9)
