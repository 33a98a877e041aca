"""The acceptance-model ladder: the per-position source by hand, a trace whose rungs b and c must agree exactly,
and the summary's chosen l / regret / error on hand-made curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from specedge.latency.acceptance import NO_CAP, TraceAcceptance
from specedge.latency.acceptance_positional import PositionalAcceptance
from specedge.report import acceptance_models as am


def test_positional_draws_by_hand():
    # alpha_i = 0.8, 0.75, 0.5 -> S = 0.8, 0.6, 0.3; tail alpha 0.4.
    src = PositionalAcceptance([0.8, 0.75, 0.5], 0.4)
    u = np.array([[0.95, 0.7, 0.45, 0.1, 0.0, 0.29]])
    g, cap = src.draw(0, 1, u, None)
    # 0.95 -> 0; 0.7 -> 1 (< 0.8); 0.45 -> 2 (< 0.6); 0.1 -> 3 + floor(log(1 - 1/3) / log 0.4) = 3 + 0;
    # 0.0 -> 3 + 0; 0.29 -> 3 + floor(log(1 - 0.29/0.3) / log 0.4) = 3 + floor(3.71) = 6
    assert g.tolist() == [[0, 1, 2, 3, 3, 6]]
    assert cap.tolist() == [[NO_CAP, NO_CAP, NO_CAP, 3, 3, 3]]


def test_positional_source_refuses_a_certain_tail():
    with pytest.raises(ValueError, match="alpha_tail"):
        PositionalAcceptance([0.5], 1.0)


def test_positional_reproduces_a_clumped_traces_survival_but_not_its_clumping():
    # Request A accepts 3 of 3 in every round, B 0 of 3: S(1) = S(2) = S(3) = 1/2, alpha_i = 1/2, 1, 1.
    frame = pd.DataFrame({"request_id": ["A"] * 300 + ["B"] * 300, "round": list(range(300)) * 2,
                          "drafted": 3, "accepted": [3] * 300 + [0] * 300})
    trace = TraceAcceptance(frame, name="clumped")
    src = PositionalAcceptance.from_stats(trace.stats)
    np.testing.assert_allclose(src.survival, [0.5, 0.5, 0.5])
    u = np.random.default_rng(1).random((4000, 4))
    g, _ = src.draw(0, 4000, u, None)
    assert abs(np.mean(np.minimum(g, 3) >= 1) - 0.5) < 0.03
    assert set(np.unique(np.minimum(g, 3))) == {0, 3}
    # within one task the trace never switches (A stays at 3, B at 0); the per-position model does
    switches = np.mean(np.diff(np.minimum(g, 3)[:, 0]) != 0)
    assert switches > 0.4


def _deterministic_store(tmp_path):
    """Every round drafts 4 and accepts exactly 2: per position alpha = 1, 1, 0, (nan) - so rung b draws the very
    same G = 2 as the trace, while one scalar alpha (L(4, a) = 3) spreads G."""
    from specedge.traces.store import open_store

    st = open_store(tmp_path / "store")
    n = 600
    frame = pd.DataFrame({"dataset": "det", "request_id": [f"r{i // 30}" for i in range(n)],
                          "turn": np.zeros(n, dtype=np.int16), "round": np.arange(n) % 30,
                          "drafted": np.full(n, 4, dtype=np.int16), "accepted": np.full(n, 2, dtype=np.int16)})
    st.write(frame, "det", kind="acceptance", metadata={"source": "recorded"})
    return st


def test_rung_b_equals_the_trace_when_every_round_is_the_same(tmp_path):
    st = _deterministic_store(tmp_path)
    summary, curves = am.ladder(["det"], store=str(st.root), tasks=6, replications=3, l_values=(1, 2, 3, 4))
    b = curves[curves["model"] == am.MODEL_POSITIONAL].set_index("l")
    c = curves[curves["model"] == am.MODEL_TRACE].set_index("l")
    np.testing.assert_array_equal(b["makespan_s"].to_numpy(), c["makespan_s"].to_numpy())
    assert (b["error"] == 0).all() and not curves["extrapolated"].any()
    a = curves[curves["model"] == am.MODEL_IID].set_index("l")
    assert (a["error"].abs() > 1e-6).any()
    np.testing.assert_allclose(a["error"].to_numpy(), a["makespan_s"].to_numpy() / c["makespan_s"].to_numpy() - 1)
    row = summary.set_index("model").loc[am.MODEL_POSITIONAL]
    assert row["regret_pct"] == 0 and row["l_opt_model"] == row["l_opt_trace"]
    # fitted scalar alpha: L(4, a) = 3 tokens per round, i.e. a + a^2 + a^3 + a^4 = 2 (a ~ 0.7549)
    alpha = summary["alpha_fitted"].iloc[0]
    assert alpha + alpha**2 + alpha**3 + alpha**4 == pytest.approx(2.0, abs=1e-6)


def test_summary_on_hand_made_curves():
    rows = []
    trace = {1: 10.0, 2: 8.0, 3: 9.0}
    iid = {1: 9.0, 2: 8.5, 3: 7.0}  # picks l = 3, where the trace gives 9.0: regret 9/8 - 1
    pos = {1: 10.0, 2: 8.0, 3: 9.9}
    for model, curve in ((am.MODEL_TRACE, trace), (am.MODEL_IID, iid), (am.MODEL_POSITIONAL, pos)):
        for l, m in curve.items():
            rows.append({"dataset": "x", "model": model, "l": l, "makespan_s": m, "makespan_ci95_s": 0.4,
                         "error": m / trace[l] - 1, "pair": "p", "batches": 2})
    s = am.summarise(pd.DataFrame(rows), {"x": {"tau": 2.0}}).set_index("model")
    a, b = s.loc[am.MODEL_IID], s.loc[am.MODEL_POSITIONAL]
    assert (a["l_opt_model"], a["l_opt_trace"], a["l_opt_difference"]) == (3, 2, 1)
    assert a["regret_pct"] == pytest.approx(100 * (9.0 / 8.0 - 1))
    assert a["makespan_error_at_l_opt_trace_pct"] == pytest.approx(100 * (8.5 / 8 - 1))
    assert a["max_abs_makespan_error_pct"] == pytest.approx(100 * (1 - 7.0 / 9.0))
    assert b["regret_pct"] == 0 and b["max_abs_makespan_error_pct"] == pytest.approx(10.0)
    assert a["trace_ci95_pct"] == pytest.approx(5.0) and a["tau"] == 2.0
    assert not math.isnan(a["predicted_makespan_at_l_opt_model_s"])
