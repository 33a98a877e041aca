"""What choosing a plan by the prediction costs (specedge.fidelity.ranknoise.best_choice): regret, the measured
best's gap to its runner-up, and whether the repeats resolve either pair; on examples worked by hand from the
definitions, then the same keys in FidelityStudy.rank and in the report's table and text."""

from __future__ import annotations

import pandas as pd
import pytest

from specedge.fidelity.ranknoise import BEST_CHOICE_KEYS, best_choice


def reps(*spans):
    """One plan's repeats, created a minute apart in the order given."""
    return [(pd.Timestamp("2026-11-30T10:00:00+00:00") + pd.Timedelta(minutes=k), m) for k, m in enumerate(spans)]


def test_same_best_costs_nothing():
    # a [0.9, 1.1] < b [1.9, 2.1] < c [2.9, 3.1], predicted in the same order
    out = best_choice([reps(0.9, 1.1), reps(1.9, 2.1), reps(2.9, 3.1)], [1.1, 2.2, 2.9], [1.0, 2.0, 3.0],
                      ["a", "b", "c"])
    assert out == {"predicted_best": "a", "measured_best": "a", "regret": 0.0,
                   "best_gap": pytest.approx(1.0),  # (2.0 − 1.0) / 1.0
                   "best_resolved": True,  # 1.1 < 1.9
                   "regret_resolved": None}  # nothing chosen wrong


def test_swapped_top_pair_within_the_noise():
    # the stdlib case: a measured 2.79 (repeats 2.70, 2.88), b 2.88 (2.80, 2.96): ranges overlap; replay puts b first
    out = best_choice([reps(2.70, 2.88), reps(2.80, 2.96), reps(4.0, 4.2)], [2.6, 2.5, 4.0], [2.79, 2.88, 4.1],
                      ["a", "b", "c"])
    assert out["predicted_best"] == "b" and out["measured_best"] == "a"
    assert out["regret"] == pytest.approx(0.09 / 2.79, abs=1e-12)  # 2.88 / 2.79 − 1 ≈ 3.2 %
    assert out["best_gap"] == pytest.approx(0.09 / 2.79, abs=1e-12)  # the runner-up was chosen: gap = regret
    assert out["best_resolved"] is False and out["regret_resolved"] is False


def test_swapped_top_pair_the_repeats_separate():
    # a [1.0, 1.2] (median 1.1) and b [1.5, 1.7] (1.6) do not overlap; replay puts b first
    out = best_choice([reps(1.0, 1.2), reps(1.5, 1.7)], [2.0, 1.0], [1.1, 1.6], ["a", "b"])
    assert out["predicted_best"] == "b" and out["measured_best"] == "a"
    assert out["regret"] == pytest.approx(5 / 11, abs=1e-12)  # 1.6 / 1.1 − 1
    assert out["best_gap"] == pytest.approx(5 / 11, abs=1e-12)
    assert out["best_resolved"] is True and out["regret_resolved"] is True


def test_choice_beyond_the_runner_up():
    # a [1.0, 1.2] (1.1) and b [1.1, 1.3] (1.2) overlap; c [1.25, 2.95] (2.1) lies clear of a but overlaps b;
    # replay picks c: the regret and its resolution are about (c, a), the gap and its resolution about (a, b)
    out = best_choice([reps(1.0, 1.2), reps(1.1, 1.3), reps(1.25, 2.95)], [1.5, 1.6, 1.0], [1.1, 1.2, 2.1],
                      ["a", "b", "c"])
    assert out["predicted_best"] == "c" and out["measured_best"] == "a"
    assert out["regret"] == pytest.approx(10 / 11, abs=1e-12)  # 2.1 / 1.1 − 1
    assert out["best_gap"] == pytest.approx(1 / 11, abs=1e-12)  # (1.2 − 1.1) / 1.1
    assert out["best_resolved"] is False and out["regret_resolved"] is True


def test_order_of_the_plans_does_not_matter():
    # the same three plans as above, listed slowest first
    out = best_choice([reps(1.25, 2.95), reps(1.1, 1.3), reps(1.0, 1.2)], [1.0, 1.6, 1.5], [2.1, 1.2, 1.1],
                      ["c", "b", "a"])
    assert (out["predicted_best"], out["measured_best"]) == ("c", "a")
    assert out["best_gap"] == pytest.approx(1 / 11, abs=1e-12)
    assert out["best_resolved"] is False and out["regret_resolved"] is True


def test_touching_ranges_are_not_resolved():
    out = best_choice([reps(1.0, 1.5), reps(1.5, 2.0)], [2.0, 1.0], [1.25, 1.75], ["a", "b"])
    assert out["regret"] == pytest.approx(0.4, abs=1e-12)  # 1.75 / 1.25 − 1
    assert out["best_resolved"] is False and out["regret_resolved"] is False


def test_a_single_plan():
    out = best_choice([reps(1.0, 1.2)], [0.9], [1.1], ["a"])
    assert out == {"predicted_best": "a", "measured_best": "a", "regret": 0.0, "best_gap": None,
                   "best_resolved": None, "regret_resolved": None}


def test_a_plan_with_one_repeat_cannot_be_judged():
    # a measured once (1.0), b [1.5, 1.7]: the regret and the gap are known, their resolution is not
    out = best_choice([reps(1.0), reps(1.5, 1.7)], [2.0, 1.0], [1.0, 1.6], ["a", "b"])
    assert out["predicted_best"] == "b" and out["measured_best"] == "a"
    assert out["regret"] == pytest.approx(0.6, abs=1e-12) and out["best_gap"] == pytest.approx(0.6, abs=1e-12)
    assert out["best_resolved"] is None and out["regret_resolved"] is None
    # no quiet repeat at all (a plan measured only under noise) is the same
    out = best_choice([[], reps(1.5, 1.7), reps(3.0, 3.2)], [1.0, 2.0, 3.0], [1.0, 1.6, 3.1], ["a", "b", "c"])
    assert out["regret"] == 0.0 and out["best_resolved"] is None and out["regret_resolved"] is None


def test_no_plans_and_mismatched_lengths():
    assert best_choice([], [], [], []) == dict.fromkeys(BEST_CHOICE_KEYS)
    with pytest.raises(ValueError, match="per label"):
        best_choice([reps(1.0)], [1.0, 2.0], [1.0], ["a"])


def test_rank_entry_carries_the_best_choice(monkeypatch):
    """Through FidelityStudy.rank: measured = the median over each plan's quiet repeats (not the mean: p's mean
    2.93 lies above q's 2.86, its median 2.79 below q's 2.88), noisy repeats left out."""
    from specedge.fidelity import repeats
    from specedge.fidelity.repeats import FidelityStudy

    cols = ["run", "pair", "scenario", "plan", "plan_sha256", "schedule", "noisy", "session", "stale",
            "median_task_error", "makespan_error", "ks_statistic", "ks_pvalue", "recorded_makespan_error",
            "recorded_median_task_error", "predicted_makespan_s", "measured_makespan_s",
            "recorded_predicted_makespan_s"]
    runs = [("p", "p1", 0, 2.70, False), ("p", "p2", 1, 2.79, False), ("p", "p3", 2, 3.30, False),
            ("p", "p4", 3, 1.00, True),  # noisy: left out of the median and of the ranges
            ("q", "q1", 4, 2.80, False), ("q", "q2", 5, 2.88, False), ("q", "q3", 6, 2.90, False),
            ("r", "r1", 7, 4.00, False), ("r", "r2", 8, 4.10, False)]
    pred = {"p": 2.6, "q": 2.5, "r": 4.0}
    rows = pd.DataFrame([dict(zip(cols, [rid, "d/v", "K=4", p, p, p, noisy, "A", False, 0.1, 0.1, 0.1, 0.9, 0.1,
                                         0.1, pred[p], m, pred[p]])) for p, rid, _, m, noisy in runs])
    t0 = pd.Timestamp("2026-11-30T10:00:00+00:00")
    st = FidelityStudy.__new__(FidelityStudy)
    st.store = None
    st.index = pd.DataFrame({"run": [r[1] for r in runs],
                             "created": [(t0 + pd.Timedelta(minutes=r[2])).isoformat() for r in runs]})
    monkeypatch.setattr(FidelityStudy, "run_rows", lambda self, predictor=None: rows)
    monkeypatch.setattr(repeats, "plan_noise_floor", lambda store, ids: {
        "repeats": len(ids), "task_spread": 0.0, "makespan_spread": 0.0, "makespan_cv": 0.0})
    (entry,) = st.rank("true")
    assert not entry["same_best"]
    assert entry["predicted_best"] == "q" and entry["measured_best"] == "p"
    assert entry["regret"] == pytest.approx(0.09 / 2.79, abs=1e-12)  # 2.88 / 2.79 − 1
    assert entry["best_gap"] == pytest.approx(0.09 / 2.79, abs=1e-12)
    # p [2.70, 3.30] and q [2.80, 2.90] overlap (with the noisy 1.00 p would too: not what decides here)
    assert entry["best_resolved"] is False and entry["regret_resolved"] is False
    # the rank noise is still there, unchanged by the new keys
    assert entry["resolved_pairs"] == 2 and entry["discordant_resolved"] == 0


def test_report_table_and_text_show_the_best_choice():
    from specedge.fidelity.rank_report import BEST_CHOICE_COLUMNS, best_choice_text, rank_table

    plans = [{"policy": p, "run_ids": ["r1", "r2"], "noisy": False, "predicted_makespan_s": pr,
              "measured_makespan_s": m, "predicted_from_recorded_acceptance_s": None}
             for p, pr, m in (("a", 2.6, 2.79), ("b", 2.5, 2.88), ("c", 4.0, 4.1))]
    entry = {"pair": "d/v", "session": "A", "distinct_plans": 3, "kendall_tau": 1 / 3, "same_best": False,
             "kendall_tau_recorded_acceptance": None, "plans": plans,
             **best_choice([reps(2.70, 2.88), reps(2.80, 2.96), reps(4.0, 4.2)], [2.6, 2.5, 4.0],
                           [2.79, 2.88, 4.1], ["a", "b", "c"])}
    table = rank_table([entry])
    assert set(BEST_CHOICE_COLUMNS) <= set(table.columns)
    assert list(table["regret"]) == pytest.approx([0.09 / 2.79] * 3) and not table["regret_resolved"].any()
    assert best_choice_text(entry) == ("replay's best b, measured best a: regret 3.2 % (unresolved by the "
                                       "repeats); best vs runner-up 3.2 % apart (unresolved)")
    same = {**entry, "same_best": True,
            **best_choice([reps(0.9, 1.1), reps(1.9, 2.1)], [1.0, 2.0], [1.0, 2.0], ["a", "b"])}
    assert best_choice_text(same) == ("replay's best a is the measured best: regret 0.0 %; "
                                      "best vs runner-up 100.0 % apart (resolved)")
    one = {**entry, **best_choice([reps(1.0)], [1.0], [1.0], ["a"])}
    assert best_choice_text(one) == "replay's best a is the measured best: regret 0.0 %"
    assert best_choice_text({"pair": "d/v"}) == ""  # an entry from before the keys
