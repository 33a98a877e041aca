"""measured-blend: alone and co-run grids weighted by the other node's replayed busy share (synthetic grids)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import PredictorPair, compare_run
from specedge.fidelity.blend import BlendedCompute, grid_contention
from specedge.fidelity.contention import replayed_busy_share
from specedge.latency.compute import MeasuredCompute
from specedge.traces.store import open_store
from tests.fidelity.test_synthetic import PLANS, base_scenario, plain_predictors, synthetic_run

B = (1, 2, 3, 4, 6)
C = (8, 16, 32, 64, 128)


def grid_frame(pred, model: str, scale: float, mode: str = "") -> pd.DataFrame:
    """A complete compute grid of ``pred`` times ``scale`` (decode, verify and prefill phases)."""
    rows = []
    for phase, xs, cs in (("decode", (1,), C), ("verify", (2, 3, 4, 5), C), ("prefill", (4, 8, 16, 32), (0,))):
        for b, x, c in itertools.product(B, xs, cs):
            rows.append({"dataset": f"compute-{model}", "model": model, "device": "cpu-synthetic", "dtype": "fp32",
                         "phase": phase, "batch_size": b, "new_tokens": x, "context_tokens": c,
                         "latency_ms": 1e3 * scale * float(pred.latency_s(b, x, c))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("blend-store"))
    synthetic_run(st, "run-a", PLANS["a"])
    sc = base_scenario()
    plain = plain_predictors(sc)
    frames = {}
    for mode, scale in (("alone", 1.0), ("co-run", 1.5)):
        for node, model in (("draft", sc.draft.name), ("verify", sc.target.name)):
            frame = grid_frame(getattr(plain, node), model, scale).assign(dataset=f"compute-{model}-{mode}")
            frames[(mode, node)] = frame
            st.write(frame, f"compute-{model}-{mode}", kind="compute",
                     metadata={"source": "recorded", "note": "synthetic (tests)", "model": model, "measure_mode": mode})
    return st, frames


def test_blend_is_alone_plus_u_times_the_co_run_excess(grids):
    st, frames = grids
    sc = base_scenario()
    corun = {n: MeasuredCompute.from_trace(m, frames[("co-run", n)], source=f"co-{n}")
             for n, m in (("draft", sc.draft), ("verify", sc.target))}
    alone = {n: MeasuredCompute.from_trace(m, frames[("alone", n)], source=f"alone-{n}")
             for n, m in (("draft", sc.draft), ("verify", sc.target))}
    g = float(alone["verify"].latency_s(3, 4, 32))
    blend = BlendedCompute(sc.target, alone["verify"], corun["verify"], other_busy=0.25)
    assert float(blend.latency_s(3, 4, 32)) == pytest.approx(g * (1 + 0.25 * 0.5))
    res = compare_run("run-a", store=st, host_overhead="none",
                      predictors=[PredictorPair("measured", corun["draft"], corun["verify"])])
    info = res.diagnostics["contention"]["blend"]
    assert info["source"] == "alone grids"
    row = res.table.set_index("predictor")
    assert "measured-blend" in row.index
    u = info["other_busy"]
    assert 0.0 <= u["draft"] <= 1.0 and 0.0 <= u["verify"] <= 1.0
    # a fixed point: replaying the run's scenario (its own rounds) with the final u gives that u back
    from dataclasses import replace

    from specedge.fidelity.compare import observed_acceptance, run_scenario
    from specedge.plan import Plan
    from specedge.replay import evaluate
    from specedge.serve.dataset import split_records

    meta = st.info("run-a").metadata
    parts = split_records(st.read("run-a"))
    tasks = parts["task"].sort_values("task").reset_index(drop=True)
    run_sc = run_scenario(meta, tasks, observed_acceptance(parts["round"], len(tasks)), store=st)
    final = {n: BlendedCompute(m, alone[n], corun[n], u[n]) for n, m in (("draft", sc.draft), ("verify", sc.target))}
    again = replayed_busy_share(evaluate(replace(run_sc, draft_compute=final["draft"],
                                                 verify_compute=final["verify"]), Plan.from_dict(meta["plan"])).runs[0])
    assert again["draft"] == pytest.approx(u["draft"], abs=2e-3)
    assert again["verify"] == pytest.approx(u["verify"], abs=2e-3)
    # partly idle nodes: the blend predicts between the alone and the co-run grids
    span = {n: row.loc[n, "predicted_makespan_s"] for n in ("measured", "measured-blend")}
    assert span["measured-blend"] < span["measured"]


def test_no_alone_grid_no_blend(tmp_path):
    st = open_store(tmp_path / "s")
    synthetic_run(st, "run-a", PLANS["a"])
    base = plain_predictors(base_scenario())
    res = compare_run("run-a", store=st, host_overhead="none",
                      predictors=[PredictorPair("measured", base.draft, base.verify)])
    assert "measured-blend" not in set(res.table["predictor"])
    assert "no alone compute grid" in res.diagnostics["contention"]["blend"]["reason"]


def test_grid_contention_by_hand(grids):
    _, frames = grids
    table = grid_contention(frames[("co-run", "verify")], frames[("alone", "verify")]).set_index("phase")
    assert set(table.index) == {"decode", "verify", "prefill"}
    assert np.allclose(table[["median_ratio", "q25_ratio", "q75_ratio", "sum_ratio"]].to_numpy(), 1.5)
    assert table.loc["verify", "cells"] == len(B) * 4 * len(C)
