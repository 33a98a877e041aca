"""α_tail with support: hand-built non-i.i.d. traces whose answer is worked out by hand in each test.

Oracle rule: the expected numbers below are written from the estimator's equations (module doc of
specedge.latency.acceptance_tail) as plain fractions, never by calling the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.cli import main
from specedge.latency.acceptance import AggregateAcceptance, TraceAcceptance
from specedge.latency.acceptance_tail import TAIL_MIN_ROUNDS, clopper_pearson, tail_alpha
from specedge.traces import stats


def _rounds(groups) -> pd.DataFrame:
    """Rows from [(request_id, drafted, accepted, repeats), ...], rounds numbered per request."""
    rows = [(rid, d, a) for rid, d, a, k in groups for _ in range(k)]
    frame = pd.DataFrame(rows, columns=["request_id", "drafted", "accepted"])
    frame["turn"] = np.int16(0)
    frame["round"] = frame.groupby("request_id").cumcount().astype(np.int32)
    return frame


# Decaying per-position rates α = 0.8, 0.6, 0.5, 0.25 on 1000 rounds of drafted = 4:
# P(accepted >= i) = 0.8, 0.48, 0.24, 0.06  ->  accepted 0:200, 1:320, 2:240, 3:180, 4:60.
# Trials n_i = 1000, 800, 480, 240; successes s_i = 800, 480, 240, 60.
DECAYING = _rounds([(f"r{k % 10}", 4, a, 1) for k, a in enumerate(
    [0] * 200 + [1] * 320 + [2] * 240 + [3] * 180 + [4] * 60)])


def test_decaying_rates_use_the_last_supported_position_only():
    est = stats.tail(DECAYING)
    # n_4 = 240 >= 200: position 4 alone; Jeffreys mean (60 + 1/2) / (240 + 1).
    assert est.alpha == pytest.approx(60.5 / 241)
    assert (est.rounds, est.first_position, est.last_position, est.supported) == (240, 4, 4, True)
    assert est.trials == 240 and est.successes == 60


def test_decaying_rates_pool_down_until_the_minimum_is_met():
    est = stats.tail(DECAYING, min_rounds=300)
    # n_4 = 240 < 300 <= n_3 = 480: positions 3..4, s = 240 + 60, n = 480 + 240.
    assert est.alpha == pytest.approx(300.5 / 721)
    assert (est.rounds, est.first_position, est.supported) == (480, 3, True)
    est = stats.tail(DECAYING, min_rounds=2000)
    # not even all 1000 rounds: every position pooled, s = 1580, n = 2520, flagged unsupported.
    assert est.alpha == pytest.approx(1580.5 / 2521)
    assert (est.rounds, est.first_position, est.supported) == (1000, 1, False)


def test_clumped_acceptance_cannot_claim_certainty():
    # Request A accepts all 4 drafts in each of its 150 rounds, request B none of them in its 150 rounds.
    # The last positions alone (n_2..4 = 150 rounds, all of A) read 150/150 = 1.00; the estimator must pool
    # down to position 1 (n_1 = 300): s = 150 * 4 = 600, n = 300 + 150 * 3 = 750.
    clumped = _rounds([("A", 4, 4, 150), ("B", 4, 0, 150)])
    est = stats.tail(clumped)
    assert est.alpha == pytest.approx(600.5 / 751) and est.alpha < 1.0
    assert (est.rounds, est.first_position, est.supported) == (300, 1, True)
    source = TraceAcceptance(clumped, name="clumped")
    assert source.alpha_tail == pytest.approx(600.5 / 751)
    assert source.stats.tail.rounds == 300
    # replay beyond the recorded 4: extra acceptances are geometric(α_tail), never the "certain" G_MAX
    u = np.random.default_rng(0).random((2000, 2))
    g, cap = source.draw(0, 2000, u, np.array([0, 0]))
    extra = g[g >= 4] - 4
    assert extra.max() < 100 and np.mean(extra) == pytest.approx((600.5 / 751) / (1 - 600.5 / 751), rel=0.15)


def test_mixed_draft_lengths_count_only_rounds_that_drafted_the_position():
    # 300 rounds drafted 2 accepted 2, 50 drafted 5 accepted 5, 100 drafted 5 accepted 1.
    # n = 450, 450, 50, 50, 50; s = 450, 350, 50, 50, 50 (the drafted-2 rounds stop at position 2).
    mixed = _rounds([("a", 2, 2, 300), ("b", 5, 5, 50), ("c", 5, 1, 100)])
    est = stats.tail(mixed)
    assert est.alpha == pytest.approx(500.5 / 601)
    assert (est.rounds, est.first_position, est.last_position) == (450, 2, 5)
    agg = stats.histogram(mixed)
    assert AggregateAcceptance(agg).alpha_tail == pytest.approx(500.5 / 601)
    assert stats.tail(agg).rounds == 450


def test_few_rounds_all_accepted_are_not_certain():
    tiny = _rounds([("r", 3, 3, 5)])
    est = stats.tail(tiny)
    assert est.alpha == pytest.approx(15.5 / 16) and est.alpha < 1.0
    assert (est.rounds, est.supported) == (5, False)
    # Clopper–Pearson at s = n = 15: [(0.025)^(1/15), 1]
    assert est.ci_low == pytest.approx(0.025 ** (1 / 15)) and est.ci_high == 1.0


def test_clopper_pearson_edges_in_closed_form():
    assert clopper_pearson(0, 20) == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert clopper_pearson(20, 20) == pytest.approx((0.025 ** (1 / 20), 1.0))
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    # n = 1, s = 1 at 90%: [0.05, 1]
    assert clopper_pearson(1, 1, confidence=0.9) == pytest.approx((0.05, 1.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8), st.integers(1, 400)), min_size=1, max_size=12),
       st.integers(1, 500))
def test_invariants(rows, min_rounds):
    drafted = np.array([d for d, _, _ in rows])
    accepted = np.array([min(a, d) for d, a, _ in rows])
    weight = np.array([w for _, _, w in rows], dtype=float)
    est = tail_alpha(drafted, accepted, weight, min_rounds=min_rounds)
    assert 0.0 < est.alpha < 1.0
    assert est.ci_low <= est.successes / est.trials <= est.ci_high
    assert est.supported == (est.rounds >= min_rounds)
    if not est.supported:  # support could not be reached: every position pooled
        assert est.first_position == 1 and est.rounds == int(weight.sum())
    # support n_p of the pooled block is never more than the rounds
    assert est.rounds <= weight.sum()


def test_no_shipped_dataset_claims_alpha_tail_from_fewer_than_200_rounds():
    from specedge.traces.store import open_store

    st_ = open_store()
    checked = 0
    for info in st_.list():
        if info.kind not in ("acceptance", "aggregate"):
            continue
        frame = st_.read(info.id)
        est = stats.tail(frame)
        assert est.alpha < 1.0, info.id
        assert est.rounds >= TAIL_MIN_ROUNDS or not est.supported, info.id
        assert est.rounds >= min(TAIL_MIN_ROUNDS, stats.rounds(frame)), info.id
        checked += 1
    assert checked > 0


def test_traces_show_json_reports_alpha_tail(tmp_path, capsys):
    from specedge.traces.store import open_store

    st_ = open_store(tmp_path / "store")
    frame = _rounds([("A", 4, 4, 150), ("B", 4, 0, 150)])
    frame["dataset"] = "clumped"
    st_.write(frame, "clumped", kind="acceptance", metadata={"source": "recorded"})
    capsys.readouterr()
    assert main(["traces", "show", "clumped", "--json", "--store", str(st_.root)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert isinstance(shown["alpha_tail"], float) and isinstance(shown["alpha_tail_rounds"], int)
    assert shown["alpha_tail"] == pytest.approx(600.5 / 751) and shown["alpha_tail_rounds"] == 300
    low, high = shown["alpha_tail_ci"]
    assert low < 600 / 750 < high and not math.isclose(high, 1.0)
