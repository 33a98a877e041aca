"""Derived statistics: a hand-worked case and hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.errors import InputError
from specedge.traces import stats


def _frame(drafted, accepted, requests=None, category=None) -> pd.DataFrame:
    n = len(accepted)
    frame = pd.DataFrame(
        {
            "request_id": requests if requests is not None else ["r0"] * n,
            "turn": np.zeros(n, dtype=np.int16),
            "round": np.arange(n, dtype=np.int32),
            "drafted": np.asarray(drafted, dtype=np.int16),
            "accepted": np.asarray(accepted, dtype=np.int16),
        }
    )
    if category is not None:
        frame["category"] = category
    return frame


def test_hand_worked_example():
    f = _frame([4, 4, 4, 4], [0, 1, 2, 4])
    assert stats.tau(f) == pytest.approx(1 + 7 / 4)
    assert stats.acceptance_ratio(f) == pytest.approx(7 / 16)
    np.testing.assert_allclose(stats.survival(f), [1, 0.75, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(stats.conditional_alpha(f), [0.75, 2 / 3, 0.5, 1.0])
    hist = stats.histogram(f)
    assert hist.to_dict("list") == {"drafted": [4, 4, 4, 4], "accepted": [0, 1, 2, 4], "count": [1, 1, 1, 1]}


def test_alpha_is_nan_where_survival_hits_zero():
    f = _frame([3, 3], [0, 1])
    alpha = stats.conditional_alpha(f)
    assert alpha[0] == pytest.approx(0.5) and alpha[1] == 0.0 and math.isnan(alpha[2])
    assert stats.summary(f)["alpha"][2] is None


def test_aggregate_frames_are_weighted_by_count():
    agg = pd.DataFrame({"drafted": [4] * 5, "accepted": [0, 1, 2, 3, 4], "count": [3, 0, 1, 0, 2]})
    rows = _frame([4] * 6, [0, 0, 0, 2, 4, 4])
    for fn in (stats.tau, stats.acceptance_ratio):
        assert fn(agg) == pytest.approx(fn(rows))
    np.testing.assert_allclose(stats.survival(agg), stats.survival(rows))
    s = stats.summary(agg)
    assert s["rounds"] == 6 and s["requests"] is None
    with pytest.raises(InputError, match="aggregate"):
        stats.per_request(agg)


def test_per_request_and_categories():
    f = _frame([4] * 5, [1, 3, 0, 4, 2], requests=["a", "a", "b", "b", "b"],
               category=["x", "x", "y", "y", "y"])
    pr = stats.per_request(f).set_index("request_id")
    assert pr.loc["a", "rounds"] == 2 and pr.loc["a", "tau"] == pytest.approx(3.0)
    assert pr.loc["b", "acceptance_ratio"] == pytest.approx(6 / 12)
    assert pr.loc["b", "category"] == "y"
    s = stats.summary(f)
    assert s["requests"] == 2
    assert s["by_category"]["x"]["tau"] == pytest.approx(3.0)
    assert set(s) >= {"rounds", "requests", "tau", "acceptance_ratio", "alpha", "histogram", "survival"}


def test_empty_frame_is_an_input_error():
    with pytest.raises(InputError, match="empty"):
        stats.tau(_frame([], []))


@st.composite
def rounds(draw):
    n = draw(st.integers(1, 60))
    drafted = draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))
    accepted = [draw(st.integers(0, d)) for d in drafted]
    return _frame(drafted, accepted)


@settings(max_examples=60, deadline=None)
@given(rounds())
def test_properties(f):
    accepted = f["accepted"].to_numpy(dtype=float)
    drafted = f["drafted"].to_numpy(dtype=float)
    # τ − 1 is the mean accepted count; m is the pooled ratio and lies in [0, 1].
    assert stats.tau(f) - 1 == pytest.approx(accepted.mean())
    m = stats.acceptance_ratio(f)
    assert m == pytest.approx(accepted.sum() / drafted.sum()) and 0 <= m <= 1
    # S starts at 1, never increases, stays in [0, 1], and Σ_{i≥1} S(i) = E[accepted].
    s = stats.survival(f)
    assert s[0] == 1 and len(s) == drafted.max() + 1
    assert np.all(np.diff(s) <= 1e-12) and np.all((s >= 0) & (s <= 1))
    assert s[1:].sum() == pytest.approx(accepted.mean())
    # α_i in [0, 1] where defined, NaN exactly where S(i−1) = 0, and the α product telescopes back to S.
    alpha = stats.conditional_alpha(f)
    defined = s[:-1] > 0
    assert np.all(np.isnan(alpha) == ~defined)
    assert np.all((alpha[defined] >= 0) & (alpha[defined] <= 1))
    k = int(np.argmin(defined)) if not defined.all() else len(defined)
    np.testing.assert_allclose(np.cumprod(alpha[:k]), s[1 : k + 1], rtol=1e-9, atol=1e-12)
    # The histogram, as an aggregate frame, gives back the same statistics.
    hist = stats.histogram(f)
    assert hist["count"].sum() == len(f)
    assert stats.tau(hist) == pytest.approx(stats.tau(f))
    np.testing.assert_allclose(stats.survival(hist), s)
    # Per-request rounds add up to all rounds.
    assert stats.per_request(f)["rounds"].sum() == len(f)
