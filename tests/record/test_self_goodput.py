"""The self-draft goodput curve on a synthetic store whose τ(l) and pass times are known, so its argmax is too.

Every pass of the 30-layer target takes 100 ms and of the 24-layer draft trace 84 ms, whatever its shape: under
uniform layer cost a k-layer draft pass takes 20 + k·(16/6) ms (head 20 ms, 8/3 ms a layer). Candidate A keeps
24 layers (84 ms) and accepts exactly 3 drafts every round; B keeps 12 layers (52 ms) and accepts exactly 1. A
round after the first at length l takes l·T_k + 100 ms and commits min(a, l) + 1 tokens, so (worked by hand)
A: l = 1, 2, 3, 4 give 2/184, 3/268, 4/352, 4/436 tokens per ms -> l* = 3;
B: l = 1, 2 give 2/152, 2/204 -> l* = 1; AD: 1/100 ms -> 10 tokens/s. B beats A beats AD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specedge.record.self_goodput import (INCONSISTENT, LayerScaledCompute, PENDING, best_per_candidate,
                                          goodput_curve)
from specedge.traces.store import open_store

TARGET, DRAFT = "compute-t", "compute-exit24"


def _compute(dataset: str, model: str, ms: float) -> pd.DataFrame:
    rows = [("prefill", x, 0) for x in (32, 256)] + [("decode", 1, c) for c in (32, 512)]
    rows += [("verify", x, c) for x in (2, 16) for c in (32, 512)]
    return pd.DataFrame({
        "dataset": pd.Series([dataset] * len(rows), dtype="string"),
        "model": pd.Series([model] * len(rows), dtype="string"),
        "device": pd.Series(["cpu-test"] * len(rows), dtype="string"),
        "dtype": pd.Series(["fp32"] * len(rows), dtype="string"),
        "phase": pd.Series([r[0] for r in rows], dtype="string"),
        "batch_size": np.ones(len(rows), dtype=np.int32),
        "new_tokens": np.asarray([r[1] for r in rows], dtype=np.int32),
        "context_tokens": np.asarray([r[2] for r in rows], dtype=np.int32),
        "latency_ms": np.full(len(rows), ms),
    })


def _acceptance(dataset: str, accepted: int, requests: int = 4, rounds: int = 40) -> pd.DataFrame:
    n = requests * rounds
    return pd.DataFrame({
        "dataset": pd.Series([dataset] * n, dtype="string"),
        "request_id": pd.Series([f"r{i // rounds}" for i in range(n)], dtype="string"),
        "turn": np.zeros(n, dtype=np.int16),
        "round": np.asarray([i % rounds for i in range(n)], dtype=np.int32),
        "drafted": np.full(n, 12, dtype=np.int16),
        "accepted": np.full(n, accepted, dtype=np.int16),
    })


def _draft_md(keep) -> dict:
    return {"source": "recorded", "draft": {"name": f"self{len(keep)}", "kept_layers": list(keep), "layers": len(keep),
                      "target_layers": 30, "parameters_shared_with_target": True}}


@pytest.fixture
def store(tmp_path):
    st = open_store(tmp_path / "store")
    st.write(_compute(TARGET, "smollm2-135m", 100.0), TARGET, kind="compute", metadata={"source": "recorded"})
    st.write(_acceptance("cand-a", 3), "cand-a", kind="acceptance", metadata=_draft_md(range(24)))
    st.write(_acceptance("cand-b", 1), "cand-b", kind="acceptance",
             metadata=_draft_md(list(range(6)) + list(range(24, 30))))
    return st


def _with_draft(st, ms: float):
    st.write(_compute(DRAFT, "smollm2-135m-exit24", ms), DRAFT, kind="compute",
             metadata={"source": "recorded", "model_description": {"layers": 24}})
    return st


def test_layer_scaling_by_hand():
    class Const:
        def __init__(self, s):
            self.s = s

        def latency_s(self, b, x, c):
            return np.full(np.broadcast(b, x, c).shape, self.s)

    pred = LayerScaledCompute(None, Const(0.100), Const(0.084), 30, 24, 12)
    assert float(pred.latency_s(1, 1, 64)) == pytest.approx(0.052)
    assert float(pred.per_layer_s(1, 1, 64)) == pytest.approx(0.016 / 6)


def test_argmax_and_values(store):
    curve = goodput_curve(_with_draft(store, 84.0), ["cand-a", "cand-b"], target_compute=TARGET,
                          draft_compute=DRAFT, lengths=range(1, 7), replications=4)
    best = best_per_candidate(curve)
    assert best["dataset"].tolist() == ["cand-b", "cand-a", ""]
    assert best["l_best"].tolist() == [1, 3, 0]
    assert best["goodput_tok_per_s"].iloc[-1] == pytest.approx(10.0, rel=1e-9)  # AD: one token per 100 ms
    # replay's TPOT: (completion - first token) / (64 - 1); the first round commits 2 (B) or 4 (A) tokens, then
    # 31 rounds of 152 ms (B) or 15 rounds of 352 ms (A) commit the other 62 or 60
    assert best["goodput_tok_per_s"].iloc[0] == pytest.approx(63 / (31 * 0.152), rel=1e-9)
    assert best["goodput_tok_per_s"].iloc[1] == pytest.approx(63 / (15 * 0.352), rel=1e-9)
    a = curve[curve["dataset"] == "cand-a"].set_index("l")
    assert a.loc[[1, 2, 3, 4], "tokens_per_round"].to_numpy() == pytest.approx([2, 3, 4, 4], rel=0.02)
    assert a["per_layer_ms"].iloc[0] == pytest.approx(16 / 6) and a["head_ms"].iloc[0] == pytest.approx(20.0)
    assert (curve["status"] == "measured").all()


def test_pending_without_the_draft_trace(store):
    curve = goodput_curve(store, ["cand-a", "cand-b"], target_compute=TARGET, draft_compute=DRAFT,
                          lengths=range(1, 6))
    assert (curve["status"] == PENDING).all() and curve["goodput_tok_per_s"].isna().all()
    a = curve[curve["dataset"] == "cand-a"].set_index("l")
    assert a["tokens_per_round"].tolist() == pytest.approx([2, 3, 4, 4, 4])
    assert best_per_candidate(curve)["l_best"].isna().all()


def test_inconsistent_traces_are_flagged(store):
    curve = goodput_curve(_with_draft(store, 120.0), ["cand-a"], target_compute=TARGET, draft_compute=DRAFT,
                          lengths=[1], replications=2)
    assert curve.loc[curve["dataset"] == "cand-a", "status"].eq(INCONSISTENT).all()
