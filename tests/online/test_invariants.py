"""Invariants (docs/online.md "Invariants"): conservation, causality, determinism, bounded state."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.online import OnlineConfig, simulate, synthetic
from specedge.online.metrics import requests, summarize
from specedge.online.policies import FCFS, available_online_policies
from specedge.online.uplink import equal_finish_end_s, equal_share_end_s

POLICIES = [p for p in available_online_policies()]


@pytest.mark.parametrize("policy", POLICIES)
def test_conservation_and_causality(paper_sc, policy):
    w = synthetic(paper_sc.params, rate_rps=0.3, num_requests=120, seed=1, arrivals="gamma", cv=2.0)
    run = simulate(paper_sc, w, policy, OnlineConfig(num_slots=3, max_batch_size=8, staging_requests=32))
    # INV-1 conservation: every request completes exactly once, in one slot
    assert np.all(run.slot >= 0) and np.all(run.rounds >= 1)
    assert np.bincount(run.slot).sum() == w.num_requests
    # INV-2 causality: arrival <= upload end <= start < first token <= completion
    assert np.all(run.upload_end_s >= w.arrival_s)
    assert np.all(run.start_s >= run.upload_end_s - 1e-12)
    assert np.all(run.first_token_s > run.start_s)
    assert np.all(run.completion_s >= run.first_token_s)
    # utilisation of a node cannot exceed 1
    s = summarize(run)
    assert 0 <= s["sbs_utilisation"] <= 1 + 1e-9 and 0 < s["mbs_utilisation"] <= 1 + 1e-9
    assert (requests(run)["queueing_s"] >= -1e-12).all()


def test_determinism_for_a_seed(paper_sc):
    sc = paper_sc.with_overrides(acceptance="iid", alpha=0.75)
    w = synthetic(sc.params, rate_rps=0.2, num_requests=80, seed=3)
    a = simulate(sc, w, "smartspec", seed=11)
    b = simulate(sc, w, "smartspec", seed=11)
    c = simulate(sc, w, "smartspec", seed=12)
    np.testing.assert_array_equal(a.completion_s, b.completion_s)
    assert not np.array_equal(a.completion_s, c.completion_s)
    w2 = synthetic(sc.params, rate_rps=0.2, num_requests=80, seed=3)
    np.testing.assert_array_equal(w.arrival_s, w2.arrival_s)


def test_staging_width_does_not_change_an_expected_run(paper_sc):
    w = synthetic(paper_sc.params, rate_rps=0.3, num_requests=90, seed=5)
    a = simulate(paper_sc, w, "fcfs", OnlineConfig(staging_requests=1))
    b = simulate(paper_sc, w, "fcfs", OnlineConfig(staging_requests=1000))
    np.testing.assert_array_equal(a.completion_s, b.completion_s)


arrivals = st.lists(st.floats(0, 100), min_size=1, max_size=30).map(sorted)


@settings(max_examples=60, deadline=None)
@given(arrivals, st.data())
def test_uplink_rules(a, data):
    a = np.asarray(a)
    w = np.asarray(data.draw(st.lists(st.floats(1e-3, 10), min_size=a.size, max_size=a.size)))
    for end in (equal_finish_end_s(a, w), equal_share_end_s(a, w)):
        assert np.all(end >= a + w - 1e-9)  # nobody beats having the whole band
        # work conservation: the band is never idle while someone uploads, so the last upload ends at the
        # Lindley busy-period end
    busy = 0.0
    for t, x in zip(a, w):
        busy = max(busy, t) + x
    assert equal_finish_end_s(a, w).max() == pytest.approx(busy)
    assert equal_share_end_s(a, w).max() == pytest.approx(busy)


def test_all_at_zero_equal_finish_is_the_paper_optimum():
    w = np.array([1.0, 2.0, 3.5])
    np.testing.assert_allclose(equal_finish_end_s(np.zeros(3), w), [6.5] * 3)
    # equal share: the smallest finishes first at 3 x 1.0, then 1.0 + 2 x 1.0, then + 1.5
    np.testing.assert_allclose(equal_share_end_s(np.zeros(3), w), [3.0, 5.0, 6.5])


def test_acceptance_state_is_bounded_by_requests_in_flight(paper_sc):
    """INV-8: the draws the engine holds are a ring of queued requests plus one row per batch member, whatever
    the workload's length (only O(requests) per-request vectors grow with it)."""
    from specedge.online.engine import prepare

    sc = paper_sc.with_overrides(acceptance="iid", alpha=0.8)
    cfg = OnlineConfig(num_slots=2, max_batch_size=8, staging_requests=16)
    shapes = []
    for n in (50, 5000):
        w = synthetic(sc.params, rate_rps=0.2, num_requests=n, seed=0)
        state = prepare(sc, w, "fcfs", cfg, seed=0)
        stage_g, pool_g = state.args[8], state.args[9]
        shapes.append((stage_g.shape[0], pool_g.shape[0]))
    assert shapes[0] == shapes[1] == (32, 16)


def test_goodput_driven_l_beats_every_fixed_l_for_a_lone_request(paper_sc):
    """A request alone in the system: choosing l per round by predicted goodput is at least as fast (within the
    last round's truncation) as the best fixed l, and much faster than the worst."""
    w = synthetic(paper_sc.params, rate_rps=0.001, num_requests=12, seed=4)
    smart = requests(simulate(paper_sc, w, "smartspec"))["e2e_s"].mean()
    fixed = {l: requests(simulate(paper_sc, w, FCFS(speculation_length=l)))["e2e_s"].mean() for l in range(1, 11)}
    assert smart <= min(fixed.values()) * 1.01
    assert smart < max(fixed.values()) * 0.9


def test_load_threshold_rule_at_its_extremes(paper_sc):
    """Speculation off above a load threshold: never above an unreachable threshold (= FCFS at that l), always
    below a negative one (every round an AD round)."""
    from specedge.online.policies import OffAboveLoad

    w = synthetic(paper_sc.params, rate_rps=0.3, num_requests=60, seed=8)
    never = simulate(paper_sc, w, OffAboveLoad(speculation_length=5, load_threshold=10**9))
    fcfs = simulate(paper_sc, w, FCFS(speculation_length=5))
    np.testing.assert_array_equal(never.completion_s, fcfs.completion_s)
    always = simulate(paper_sc, w, OffAboveLoad(speculation_length=5, load_threshold=-1))
    assert always.l_histogram[0] == always.l_histogram.sum() and np.all(always.rounds == w.output_tokens)
