"""Report tables: intervals, paired reductions, the i.i.d. fit, provenance words, compute fits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from specedge.latency.acceptance import expected_tokens_per_round
from specedge.report import tables


def test_mean_interval_is_the_student_t_interval():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    mean, low, high = tables.mean_interval(x)
    half = sps.t.ppf(0.975, 3) * x.std(ddof=1) / 2.0
    assert mean == pytest.approx(3.5)
    assert (low, high) == pytest.approx((3.5 - half, 3.5 + half))
    assert tables.mean_interval([5.0]) == (5.0, 5.0, 5.0)
    assert all(math.isnan(v) for v in tables.mean_interval([]))
    assert tables.mean_interval([1.0, np.nan, 3.0])[0] == pytest.approx(2.0)


def test_paired_reduction_pairs_each_seed_with_its_own_baseline():
    frame = pd.DataFrame({
        "pair": ["a"] * 6,
        "policy": ["base", "base", "base", "fast", "fast", "fast"],
        "seed": [0, 1, 2, 0, 1, 2],
        "makespan_s": [10.0, 20.0, 40.0, 5.0, 15.0, 20.0],
    })
    red = tables.paired_reduction(frame, ["pair"], "makespan_s", "base").set_index("policy")
    expected = np.array([0.5, 0.25, 0.5])
    assert red.loc["fast", "reduction"] == pytest.approx(expected.mean())
    assert red.loc["fast", "pairs"] == 3
    assert red.loc["base", "reduction"] == 0.0
    _, low, high = tables.mean_interval(expected)
    assert (red.loc["fast", "reduction_low"], red.loc["fast", "reduction_high"]) == pytest.approx((low, high))


def test_paired_reduction_skips_policies_without_a_matching_baseline_seed():
    frame = pd.DataFrame({"pair": ["a", "a"], "policy": ["base", "other"], "seed": [0, 1],
                          "makespan_s": [1.0, 2.0]})
    red = tables.paired_reduction(frame, ["pair"], "makespan_s", "base")
    assert list(red["policy"]) == ["base"]


def test_summarise_groups_and_intervals():
    frame = pd.DataFrame({"policy": ["x", "x", "y"], "m": [1.0, 3.0, 5.0]})
    out = tables.summarise(frame, ["policy"], ["m"]).set_index("policy")
    assert out.loc["x", "n"] == 2 and out.loc["x", "m"] == 2.0
    assert out.loc["y", "m_low"] == out.loc["y", "m_high"] == 5.0


def _iid_rounds(alpha: float, drafted: int, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    accepted = np.cumprod(rng.random((n, drafted)) < alpha, axis=1).sum(axis=1)
    return pd.DataFrame({"request_id": "r", "turn": 0, "round": np.arange(n), "drafted": drafted,
                         "accepted": accepted})


def test_iid_fit_recovers_alpha_and_matches_the_expected_tokens_per_round():
    frame = _iid_rounds(0.7, 8, 40_000)
    alpha = tables.iid_alpha(frame)
    assert alpha == pytest.approx(0.7, abs=0.01)
    tau = 1 + frame["accepted"].mean()
    assert float(expected_tokens_per_round(8, alpha)) == pytest.approx(tau, rel=1e-6)
    s_iid = tables.survival_iid(frame, alpha)
    assert s_iid[0] == 1.0
    assert s_iid[3] == pytest.approx(alpha**3)


def test_survival_iid_accounts_for_shorter_drafts():
    frame = pd.DataFrame({"drafted": [2, 4], "accepted": [1, 2], "count": [1, 1]})
    s = tables.survival_iid(frame, 0.5)
    # positions 3 and 4 are reachable only by the round that drafted 4 tokens
    assert s.tolist() == pytest.approx([1.0, 0.5, 0.25, 0.5 * 0.125, 0.5 * 0.0625])


def test_acceptance_summary_gap_is_small_for_iid_and_large_for_clumped_traces():
    iid = _iid_rounds(0.6, 6, 20_000)
    clumped = pd.DataFrame({"request_id": "r", "turn": 0, "round": np.arange(1000), "drafted": 6,
                            "accepted": np.where(np.arange(1000) % 2 == 0, 0, 6)})
    out = tables.acceptance_summary({"iid": iid, "clumped": clumped}, {"iid": "recorded"}).set_index("dataset")
    assert out.loc["iid", "survival_gap"] < 0.02
    assert out.loc["clumped", "survival_gap"] > 0.2
    assert out.loc["clumped", "tau"] == pytest.approx(4.0)
    assert out.loc["iid", "provenance"].startswith("recorded")


@pytest.mark.parametrize("source,words", [
    ("recorded", "recorded by specedge"),
    ("ingested:specbench", "ingested from specbench"),
    ("derived-from-published", "derived from a published number"),
])
def test_provenance_words(source, words):
    assert words in tables.provenance(source)


def test_compute_fits_recover_a_roofline_trace():
    from specedge.latency.cards import load_device_card, load_model_card
    from specedge.latency.compute import RooflineCompute

    model, device = load_model_card("llama-68m"), load_device_card("rtx-3080")
    truth = RooflineCompute(model, device, compute_efficiency=0.4, memory_efficiency=0.6, overhead_s=1e-3)
    grid = [(b, x, c) for b in (1, 4, 16, 64) for x in (1, 8, 64) for c in (0, 512, 2048)]
    frame = pd.DataFrame([{"model": "llama-68m", "device": "rtx-3080", "phase": "verify", "batch_size": b,
                           "new_tokens": x, "context_tokens": c,
                           "latency_ms": float(truth.latency_s(b, x, c)) * 1e3} for b, x, c in grid])
    fits, points = tables.compute_fits({"synthetic": frame})
    roof = fits.set_index("predictor").loc["roofline"]
    assert roof["compute_efficiency"] == pytest.approx(0.4, rel=0.02)
    assert roof["memory_efficiency"] == pytest.approx(0.6, rel=0.02)
    assert roof["r2"] > 0.999
    assert set(points["predictor"]) == {"affine", "roofline"}
    assert points[points.predictor == "roofline"]["relative_error"].abs().max() < 0.02


def test_compute_fits_name_a_missing_card():
    frame = pd.DataFrame({"model": ["no-such-model"], "device": ["rtx-3080"], "phase": ["decode"],
                          "batch_size": [1], "new_tokens": [1], "context_tokens": [1], "latency_ms": [1.0]})
    fits, points = tables.compute_fits({"x": frame})
    assert "no model card" in fits.loc[0, "note"]
    assert points.empty


def test_acceptance_summary_puts_tau_and_m_in_their_own_columns():
    # by hand, from the definitions: tau = 1 + mean(accepted), m = sum(accepted) / sum(drafted)
    frame = pd.DataFrame({"dataset": "t", "request_id": ["a"] * 4, "turn": 0, "round": range(4),
                          "drafted": [4, 4, 4, 4], "accepted": [0, 2, 4, 4], "prompt_tokens": 5,
                          "temperature": 0.0, "wall_ms": float("nan"), "category": ["x", "x", "y", "y"]})
    row = tables.acceptance_summary({"t": frame}, {"t": "recorded"}).iloc[0]
    assert row["tau"] == pytest.approx(3.5)
    assert row["acceptance_ratio"] == pytest.approx(10 / 16)
    assert row["rounds"] == 4 and row["max_drafted"] == 4
    per_cat = tables.tau_by_category({"t": frame}).set_index("category")
    assert per_cat.loc["x", "tau"] == pytest.approx(2.0) and per_cat.loc["x", "acceptance_ratio"] == pytest.approx(0.25)
    assert per_cat.loc["y", "tau"] == pytest.approx(5.0) and per_cat.loc["y", "acceptance_ratio"] == pytest.approx(1.0)


def test_interval_of_a_count_stops_at_its_floor():
    frame = pd.DataFrame({"policy": "p", "num_batches": [1, 1, 1, 9], "makespan_s": [0.1, 0.1, 0.1, 50.0],
                          "gap": [-3.0, -3.0, -3.0, 5.0]})
    out = tables.summarise(frame, ["policy"], ["num_batches", "makespan_s", "gap"]).iloc[0]
    assert out["num_batches"] == pytest.approx(3.0)
    assert out["num_batches_low"] == 1.0 and out["makespan_s_low"] == 0.0  # the t-interval went below both
    assert out["gap_low"] < -3.0  # a metric without a floor keeps its interval


def test_acceptance_summary_takes_rounds_tau_and_m_from_the_tools_own_numbers():
    # The stored histogram says tau = 3.5, m = 10/16; the tool (e.g. vLLM) counted R = 50 rounds, A = 60 accepted,
    # D = 200 drafted: tau = 1 + 60/50 = 2.2 and m = 60/200 = 0.3 by hand. The table must print the tool's numbers,
    # as `traces show` does, and leave undefined ones null (llama.cpp's per-request lines define no rounds).
    frame = pd.DataFrame({"dataset": "t", "request_id": ["a"] * 4, "turn": 0, "round": range(4),
                          "drafted": [4, 4, 4, 4], "accepted": [0, 2, 4, 4], "prompt_tokens": 5,
                          "temperature": 0.0, "wall_ms": float("nan")})
    tool = {"vllm": {"rounds": 50, "accepted_tokens": 60, "draft_tokens": 200, "inferred": {}},
            "llama": {"rounds": None, "accepted_tokens": 30, "draft_tokens": 40,
                      "inferred": {"draft_tokens": "n_drafted = n_predict"}}}
    out = tables.acceptance_summary({"vllm": frame, "llama": frame, "plain": frame},
                                    {"vllm": "ingested:vllm", "llama": "ingested:llama.cpp", "plain": "recorded"},
                                    tool).set_index("dataset")
    assert out.loc["vllm", "rounds"] == 50
    assert out.loc["vllm", "tau"] == pytest.approx(2.2)
    assert out.loc["vllm", "acceptance_ratio"] == pytest.approx(0.3)
    assert out.loc["vllm", "numbers_from"] == "tool"
    assert pd.isna(out.loc["llama", "rounds"]) and pd.isna(out.loc["llama", "tau"])
    assert out.loc["llama", "acceptance_ratio"] == pytest.approx(0.75)
    assert "n_drafted = n_predict" in out.loc["llama", "inferred"]
    assert out.loc["plain", "numbers_from"] == "table"
    assert out.loc["plain", "tau"] == pytest.approx(3.5) and out.loc["plain", "rounds"] == 4
