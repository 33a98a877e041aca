"""The paper-comparison tables: columns, values recomputed from replays, explanations where they differ."""

from __future__ import annotations

import numpy as np
import pytest

from specedge import experiments as ex
from specedge.policies import replay
from specedge.scenario import Scenario


def test_bandwidth_rows_are_the_replayed_changes():
    df = ex.bandwidth_gains(tasks=20, pairs=("llama-68m/llama-7b",))
    assert list(df.columns) == ex.COLUMNS and len(df) == 1
    row = df.iloc[0]
    sc = Scenario.from_preset("paper", pair="llama-68m/llama-7b", alpha=0.8, tasks=20, seed=0, bandwidth_hz=25e6)
    want = 100 * (replay(sc, "paper-dp").latency_s / replay(sc, "uniform-bandwidth").latency_s - 1)
    assert row.specedge_value == pytest.approx(want)
    assert row.paper_value == -44.9 and "bandwidth_hz=2.5e+07" in row.scenario
    assert row.agrees == (abs(row.specedge_value - row.paper_value) <= ex.TOLERANCE_PP)
    assert (row.explanation == "") == bool(row.agrees)


def test_every_disagreement_is_explained():
    parts = [ex.batching_gains(), ex.pipeline_gains(tasks=30),
             ex.sd_vs_ad(alphas=(0.5, 0.9), tasks=20, pairs=("tinyllama-1.1b/llama-13b",))]
    for df in parts:
        assert {"claim", "paper_value", "specedge_value", "scenario", "explanation"} <= set(df.columns)
        for _, row in df.iterrows():
            assert np.isfinite(row.specedge_value)
            assert (row.explanation != "") == (not row.agrees), row.claim
    sd = parts[2].iloc[0]
    assert len(sd.changes) == 2 and sd.specedge_value == pytest.approx(sd.changes[-1], abs=1e-3)


def test_policy_comparison_and_gaps():
    sc = Scenario.from_preset("paper", tasks=8, seed=1, output_tokens_max=300)
    df = ex.policy_comparison([sc], ["dp-refined", "max-batching"])
    assert list(df.policy) == ["paper-dp", "dp-refined", "max-batching"]
    assert df.change_vs_baseline_pct.iloc[0] == 0.0
    gaps = ex.optimality_gaps(2, tasks=5, policies=("paper-dp",), alphas=(0.8,))
    assert len(gaps) == 2 and (gaps.gap_pct >= -1e-7).all()
