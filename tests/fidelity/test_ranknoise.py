"""The rank's own noise floor (specedge.fidelity.ranknoise): repeat τ and τ over the plan pairs the measurement
resolves, on examples worked by hand; and the same numbers in FidelityStudy.rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.fidelity.ranknoise import CEILING_KEYS, RANK_TARGET_TAU, rank_noise, tau_b_rows, tau_ceiling


def reps(*spans, start=0):
    """One plan's repeats, created at start, start+1, ... (in the order given)."""
    return [(pd.Timestamp("2026-11-30T10:00:00+00:00") + pd.Timedelta(minutes=start + k), m)
            for k, m in enumerate(spans)]


def test_repeat_orders_agree():
    out = rank_noise([reps(1.0, 1.1), reps(2.0, 2.2), reps(3.0, 3.3)], [1.0, 2.0, 3.0])
    assert out["repeat_tau"] == pytest.approx(1.0) and out["repeat_taus"] == [pytest.approx(1.0)]
    assert out["repeat_tau_pairs"] == [[0, 1]]


def test_one_pair_swaps_between_repeats():
    # repeat 0 orders a < b < c, repeat 1 orders b < a < c: 2 concordant, 1 discordant of 3 -> 1/3
    out = rank_noise([reps(1.0, 2.1), reps(2.0, 1.9), reps(3.0, 3.0)], [1.0, 2.0, 3.0])
    assert out["repeat_tau"] == pytest.approx(1 / 3)


def test_repeats_are_ordered_by_creation_time():
    # the same repeats as above, listed out of time order for plan a: by time its makespans are 1.0 then 2.1
    a = list(reversed(reps(1.0, 2.1)))
    out = rank_noise([a, reps(2.0, 1.9), reps(3.0, 3.0)], [1.0, 2.0, 3.0])
    assert out["repeat_tau"] == pytest.approx(1 / 3)
    # three repeats, a's last one slow: by time τ(0,1) = 1, τ(0,2) = τ(1,2) = -1/3; reversed, the list would flip
    late = [reps(1.0, 1.1, 5.0), reps(2.0, 2.0, 2.0), reps(3.0, 3.0, 3.0)]
    late[0] = list(reversed(late[0]))
    out = rank_noise(late, [1, 2, 3])
    assert out["repeat_taus"] == [pytest.approx(1.0), pytest.approx(-1 / 3), pytest.approx(-1 / 3)]
    # created as ISO strings too
    iso = [(str(t), m) for t, m in a]
    assert rank_noise([iso, reps(2.0, 1.9), reps(3.0, 3.0)], [1, 2, 3])["repeat_tau"] == pytest.approx(1 / 3)


def test_repeat_pairs_use_the_plans_with_enough_repeats():
    # three plans with 3 repeats, a fourth with 2: (0,1) over 4 plans, (0,2) and (1,2) over 3
    plans = [reps(1.0, 1.0, 1.0), reps(2.0, 2.0, 3.5), reps(3.0, 3.0, 3.0), reps(4.0, 0.5)]
    out = rank_noise(plans, [1, 2, 3, 4])
    assert out["repeat_tau_pairs"] == [[0, 1], [0, 2], [1, 2]]
    # (0,1): 1,2,3,4 vs 1,2,3,0.5 -> 3 concordant, 3 discordant of 6 = 0; (0,2), (1,2): b and c swap -> 1/3
    assert out["repeat_taus"] == [pytest.approx(0.0), pytest.approx(1 / 3), pytest.approx(1 / 3)]
    assert out["repeat_tau"] == pytest.approx(1 / 3)


def test_too_few_repeats_or_plans_give_none():
    out = rank_noise([reps(1.0), reps(2.0), reps(3.0)], [1, 2, 3])
    assert out["repeat_tau"] is None and out["repeat_taus"] == []
    out = rank_noise([reps(1.0, 1.1), reps(2.0, 2.1), reps(3.0)], [1, 2, 3])  # only two plans repeated
    assert out["repeat_tau"] is None


def test_resolved_pairs_and_their_tau():
    # ranges a [1.0, 1.2], b [1.1, 1.5] (overlaps a), c [2.0, 2.4], d measured once
    plans = [reps(1.0, 1.2), reps(1.5, 1.1), reps(2.0, 2.4), reps(0.5)]
    out = rank_noise(plans, [1.0, 2.0, 3.0, 0.1])
    assert out["resolved_pairs"] == 2 and out["unresolved_pairs"] == 4  # (a,c), (b,c) of 6; d resolves nothing
    assert out["discordant_resolved"] == 0 and out["kendall_tau_resolved"] == pytest.approx(1.0)
    # c predicted fastest: both resolved pairs discordant
    out = rank_noise(plans, [1.0, 2.0, 0.5, 0.1])
    assert out["discordant_resolved"] == 2 and out["kendall_tau_resolved"] == pytest.approx(-1.0)
    # one discordant, one concordant: (1 - 1) / 2
    out = rank_noise(plans, [1.0, 3.0, 2.0, 0.1])
    assert out["discordant_resolved"] == 1 and out["concordant_resolved"] == 1
    assert out["kendall_tau_resolved"] == pytest.approx(0.0)


def test_touching_ranges_are_unresolved():
    for plans in ([reps(1.0, 2.0), reps(2.0, 3.0)], [reps(2.0, 3.0), reps(1.0, 2.0)]):
        out = rank_noise(plans, [1.0, 2.0])
        assert out["resolved_pairs"] == 0 and out["unresolved_pairs"] == 1 and out["kendall_tau_resolved"] is None


def test_a_tie_in_prediction_counts_as_neither():
    out = rank_noise([reps(1.0, 1.1), reps(2.0, 2.1), reps(3.0, 3.1)], [1.0, 1.0, 3.0])
    # (a,b) tied in prediction: 0; (a,c), (b,c) concordant -> 2 / 3
    assert out["resolved_pairs"] == 3 and out["concordant_resolved"] == 2 and out["discordant_resolved"] == 0
    assert out["kendall_tau_resolved"] == pytest.approx(2 / 3)


def test_singleton_plans_resolve_nothing():
    out = rank_noise([reps(1.0), reps(5.0), reps(9.0)], [1, 2, 3])
    assert out["resolved_pairs"] == 0 and out["unresolved_pairs"] == 3 and out["kendall_tau_resolved"] is None


def test_rank_entry_carries_the_rank_noise(monkeypatch):
    from specedge.fidelity import repeats
    from specedge.fidelity.repeats import FidelityStudy

    cols = ["run", "pair", "scenario", "plan", "plan_sha256", "schedule", "noisy", "session", "stale",
            "median_task_error", "makespan_error", "ks_statistic", "ks_pvalue", "recorded_makespan_error",
            "recorded_median_task_error", "predicted_makespan_s", "measured_makespan_s",
            "recorded_predicted_makespan_s"]
    # plan, run, created minute, measured makespan, noisy; predictions 1, 2, 3 for x, y, z
    # x's later repeat listed first: unordered, repeat 1 would be x 1.0 < y 1.1 < z and the repeat τ 1
    runs = [("x", "x2", 3, 1.2, False), ("x", "x1", 0, 1.0, False),
            ("y", "y1", 1, 2.0, False), ("y", "y2", 4, 1.1, False), ("y", "y3", 6, 9.0, True),  # noisy: left out
            ("z", "z1", 2, 3.0, False), ("z", "z2", 5, 3.3, False),
            ("w", "w1", 7, 10.0, True), ("w", "w2", 8, 10.5, True)]  # measured only under noise: no quiet repeats
    pred = {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0}
    rows = pd.DataFrame([dict(zip(cols, [rid, "d/v", "K=4", p, p, p, noisy, "A", False, 0.1, 0.1, 0.1, 0.9, 0.1,
                                         0.1, pred[p], m, pred[p]])) for p, rid, _, m, noisy in runs])
    t0 = pd.Timestamp("2026-11-30T10:00:00+00:00")
    st = FidelityStudy.__new__(FidelityStudy)
    st.store = None
    st.index = pd.DataFrame({"run": [r[1] for r in reversed(runs)],
                             "created": [(t0 + pd.Timedelta(minutes=r[2])).isoformat() for r in reversed(runs)]})
    monkeypatch.setattr(FidelityStudy, "run_rows", lambda self, predictor=None: rows)
    monkeypatch.setattr(repeats, "plan_noise_floor", lambda store, ids: {
        "repeats": len(ids), "task_spread": 0.0, "makespan_spread": 0.0, "makespan_cv": 0.0})
    (entry,) = st.rank("true")
    assert {"pair", "scenario", "plans", "kendall_tau", "same_best"} <= set(entry)
    # repeat 0: x 1.0 < y 2.0 < z 3.0; repeat 1: y 1.1 < x 1.2 < z 3.3 -> 1/3
    assert entry["repeat_tau"] == pytest.approx(1 / 3)
    # ranges x [1.0, 1.2], y [1.1, 2.0] (noisy 9.0 left out), z [3.0, 3.3]: (x,z), (y,z) resolved, both concordant;
    # w (ranked, flagged noisy) has no quiet repeat, so it resolves nothing: 4 of its 6 pairs unresolved
    assert entry["noisy_plans"] == 1 and entry["distinct_plans"] == 4
    assert entry["resolved_pairs"] == 2 and entry["unresolved_pairs"] == 4
    assert entry["kendall_tau_resolved"] == pytest.approx(1.0) and entry["discordant_resolved"] == 0
    # ceiling over x, y, z (w has no quiet repeat): x {1.0, 1.2} resamples to 1.0 / 1.1 / 1.2 (1/4, 1/2, 1/4),
    # y {2.0, 1.1} to 1.1 / 1.55 / 2.0; x < y (τ 1) except a tie (x 1.1, y 1.1: 1/8) or x above (1.2 > 1.1: 1/16)
    assert entry["ceiling_plans"] == 3 and entry["ceiling_resamples"] == 2000
    assert entry["p_tau_at_least_target"] == pytest.approx(13 / 16, abs=SHARE_TOL)
    assert entry["tau_ceiling_median"] == pytest.approx(1.0)


def test_report_rank_table_and_text_show_the_rank_noise():
    from specedge.fidelity.rank_report import RANK_NOISE_COLUMNS, rank_figure, rank_noise_text, rank_table

    entry = {"pair": "d/v", "session": "A", "distinct_plans": 3, "kendall_tau": 1.0, "same_best": True,
             "kendall_tau_recorded_acceptance": None,
             "plans": [{"policy": p, "run_ids": ["r"], "noisy": False, "predicted_makespan_s": m,
                        "measured_makespan_s": m, "predicted_from_recorded_acceptance_s": None}
                       for p, m in (("x", 1.0), ("y", 2.0), ("z", 3.0))],
             **rank_noise([reps(1.0, 2.1), reps(2.0, 1.9), reps(3.0, 3.0)], [1.0, 2.0, 3.0])}
    table = rank_table([entry])
    assert set(RANK_NOISE_COLUMNS) <= set(table.columns)
    assert table["repeat_tau"].iloc[0] == pytest.approx(1 / 3) and table["resolved_pairs"].iloc[0] == 2
    assert (table["tau_ceiling_median"] == 1.0).all()  # a < b in 3 of 4 resamples (see below): median τ 1
    text = "repeat τ 0.33, τ resolved 1.00 (2 pairs resolved, 0 discordant, 1 unresolved)"
    # a {1.0, 2.1} (truth 1.55) resamples to 2.1 in 1/4 of draws, above every median of b {2.0, 1.9}; otherwise
    # below: a perfect predictor reaches τ 1 in 3/4 of resamples, τ 1/3 in the rest
    assert entry["p_tau_at_least_target"] == pytest.approx(0.75, abs=0.04)
    assert rank_noise_text({**entry, "p_tau_at_least_target": 0.34}) == (
        text + "; a perfect predictor reaches τ ≥ 0.9 in 34 % of resamples")
    assert rank_noise_text({**entry, "p_tau_at_least_target": None}) == text  # no ceiling: the line as before
    assert "repeat τ 0.33, τ resolved 1.00" in rank_figure([entry]).axes[0].get_title()


# ------------------------------------------------------------------ the rank target's ceiling (tau_ceiling)
#: 4 standard errors of a share near 1/2 over the default 2000 resamples (0.5 / sqrt(2000) ≈ 0.011).
SHARE_TOL = 0.045


def arrays(*plans):
    return [np.array(p, dtype=np.float64) for p in plans]


def test_target_is_the_issues():
    assert RANK_TARGET_TAU == 0.9


def test_plans_far_apart_reach_the_target_always():
    # every resampled median stays inside its plan's range, and the ranges are far apart: τ = 1 in every resample
    out = tau_ceiling(arrays(*[[k, k + 0.01, k + 0.02] for k in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]))
    assert out == {"tau_ceiling_median": 1.0, "p_tau_at_least_target": 1.0, "ceiling_plans": 6,
                   "ceiling_resamples": 2000}


def test_two_close_plans_are_a_coin_flip():
    # a {1, 2} (truth 1.5), b {1, 2.001} (truth 1.5005), c far above. A resampled median of two draws is the low
    # value (1/4), the midpoint (1/2) or the high value (1/4). a < b: a low & b mid/high 3/16, a mid & b mid/high
    # 6/16, a high & b high 1/16 -> 10/16 (τ 1); both low 1/16 (tie: 2 / sqrt(3 * 2) = 0.82); else 5/16 (τ 1/3)
    out = tau_ceiling(arrays([1.0, 2.0], [1.0, 2.001], [5.0, 5.1]))
    assert 0 < out["p_tau_at_least_target"] < 1
    assert out["p_tau_at_least_target"] == pytest.approx(10 / 16, abs=SHARE_TOL)
    assert out["tau_ceiling_median"] == pytest.approx(1.0)  # τ = 1 in more than half of the resamples
    assert out["ceiling_plans"] == 3


def test_identical_plans_tie_in_truth():
    # a and b both {1, 2}: truths tie, so τ-b counts only (a,c), (b,c), always concordant. The medians tie too in
    # 1/16 + 1/16 + 1/4 = 3/8 of resamples (τ 2 / sqrt(2 * 2) = 1); otherwise τ 2 / sqrt(2 * 3) = 0.816 < 0.9
    out = tau_ceiling(arrays([1.0, 2.0], [1.0, 2.0], [5.0, 5.1]))
    assert out["p_tau_at_least_target"] == pytest.approx(3 / 8, abs=SHARE_TOL)
    assert out["tau_ceiling_median"] == pytest.approx(2 / np.sqrt(6))


def test_a_plan_measured_once_is_left_out():
    # d measured once would never move; it is left out, leaving the coin flip above over three plans
    with_d = tau_ceiling(arrays([1.0, 2.0], [1.0, 2.001], [5.0, 5.1], [0.5]))
    assert with_d == tau_ceiling(arrays([1.0, 2.0], [1.0, 2.001], [5.0, 5.1]))
    assert with_d["ceiling_plans"] == 3


def test_too_few_repeated_plans_give_none_keys():
    assert tau_ceiling(arrays([1.0, 1.1], [2.0, 2.1], [3.0])) is None
    out = rank_noise([reps(1.0, 1.1), reps(2.0, 2.1), reps(3.0)], [1, 2, 3])
    assert all(k in out and out[k] is None for k in CEILING_KEYS)
    out = rank_noise([reps(1.0, 1.1), reps(2.0, 2.1), reps(3.0, 3.1)], [1, 2, 3])
    assert out["tau_ceiling_median"] == 1.0 and out["p_tau_at_least_target"] == 1.0 and out["ceiling_plans"] == 3


def test_the_same_seed_gives_the_same_ceiling():
    plans = arrays([1.0, 2.0, 1.4], [1.2, 1.9, 1.5], [1.3, 1.6, 2.2], [3.0, 3.1])
    assert tau_ceiling(plans) == tau_ceiling(plans)
    assert tau_ceiling(plans, seed=5, resamples=300) == tau_ceiling(plans, seed=5, resamples=300)


def test_tau_b_rows_is_scipys_tau_b():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(3)
    for n in (3, 4, 6):
        x = rng.integers(0, 3, n).astype(float)  # few values: ties on both sides, some rows all tied
        ys = rng.integers(0, 3, (200, n)).astype(float)
        want = np.array([kendalltau(x, y).statistic for y in ys])
        np.testing.assert_allclose(tau_b_rows(x, ys), want, equal_nan=True)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=5), min_size=0, max_size=7),
       st.integers(0, 2**31 - 1))
def test_ceiling_is_a_tau_and_a_share(plans, seed):
    out = tau_ceiling(arrays(*plans), resamples=200, seed=seed)
    repeated = sum(len(p) >= 2 for p in plans)
    if repeated < 3:
        assert out is None
        return
    assert out["ceiling_plans"] == repeated and out["ceiling_resamples"] == 200
    assert 0.0 <= out["p_tau_at_least_target"] <= 1.0
    med = out["tau_ceiling_median"]
    assert med is None or -1.0 - 1e-12 <= med <= 1.0 + 1e-12
