"""The online engine against the independent per-event reference in bench/reference_online.py."""

import numpy as np
import pytest

from bench import reference_online as ref
from specedge.latency import network
from specedge.online import MatrixFeed, OnlineConfig, simulate, synthetic
from specedge.online.engine import _memory
from specedge.online.policies import FCFS, ADContinuous, SizeAgeThreshold
from specedge.online.uplink import upload_end_s, work_s


def _run_both(sc, w, policy, cfg, l, g=None, min_group=1, max_wait_s=0.0, ref_mode=None):
    run = simulate(sc, w, policy, cfg, feed=None if g is None else MatrixFeed(g))
    payload = w.input_tokens * sc.params.bits_per_token
    eta = network.spectral_efficiency(w.distance_m, sc.params)
    up_ref = ref.uploads(w.arrival_s.tolist(), work_s(payload, eta, sc.bandwidth_hz).tolist(), cfg.uplink_rule)
    np.testing.assert_allclose(run.upload_end_s, up_ref, rtol=1e-9)
    order = np.argsort(run.upload_end_s, kind="stable")
    out = ref.simulate(sc, w.arrival_s[order].tolist(), w.input_tokens[order].tolist(),
                       w.output_tokens[order].tolist(), run.upload_end_s[order].tolist(), num_slots=cfg.num_slots,
                       max_batch=cfg.max_batch_size, l=l, mode=ref_mode or cfg.mode,
                       g=None if g is None else g[order].tolist(), min_group=min_group, max_wait_s=max_wait_s,
                       mem=_memory(sc).tolist())
    out = np.asarray(out)
    np.testing.assert_allclose(run.start_s[order], out[:, 0], rtol=1e-9, err_msg="start")
    np.testing.assert_allclose(run.first_token_s[order], out[:, 1], rtol=1e-9, err_msg="first token")
    np.testing.assert_allclose(run.completion_s[order], out[:, 2], rtol=1e-9, err_msg="completion")


@pytest.mark.parametrize("rate,slots,bmax,uplink,mode", [
    (0.05, 4, 8, "equal-share", "sd-pipeline"),
    (0.3, 3, 4, "equal-finish", "sd-pipeline"),
    (0.3, 2, 16, "equal-share", "sd-serial"),
])
def test_fcfs_expected_matches_reference(paper_sc, rate, slots, bmax, uplink, mode):
    w = synthetic(paper_sc.params, rate_rps=rate, num_requests=60, seed=7)
    cfg = OnlineConfig(num_slots=slots, max_batch_size=bmax, uplink_rule=uplink, mode=mode, staging_requests=16)
    _run_both(paper_sc, w, FCFS(speculation_length=5), cfg, l=5)


def test_sampled_draws_and_threshold_match_reference(paper_sc):
    w = synthetic(paper_sc.params, rate_rps=0.2, num_requests=50, seed=2, arrivals="gamma", cv=3.0)
    rng = np.random.default_rng(0)
    g = rng.geometric(0.3, size=(50, int(w.output_tokens.max()))) - 1
    cfg = OnlineConfig(num_slots=2, max_batch_size=6, staging_requests=7)
    _run_both(paper_sc, w, SizeAgeThreshold(speculation_length=3, min_group=3, max_wait_s=2.0), cfg, l=3, g=g,
              min_group=3, max_wait_s=2.0)


def test_ad_matches_reference(paper_sc):
    w = synthetic(paper_sc.params, rate_rps=0.5, num_requests=40, seed=4)
    _run_both(paper_sc, w, ADContinuous(num_slots=2), OnlineConfig(num_slots=2, max_batch_size=8), l=0,
              ref_mode="sd-serial")


def test_memory_limit_matches_reference(paper_sc):
    # a small SBS: the memory rule, not max_batch_size, caps the batches
    sc = paper_sc.with_overrides(sbs_memory_bytes=paper_sc.draft.weight_bytes + 2.2e8)
    w = synthetic(sc.params, rate_rps=1.0, num_requests=40, seed=9)
    _run_both(sc, w, FCFS(speculation_length=4), OnlineConfig(num_slots=2, max_batch_size=32), l=4)
