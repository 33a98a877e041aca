"""The compute-trace measurer on a tiny grid."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")


from specedge.errors import InputError
from specedge.record.compute_trace import ComputeGrid, measure_compute


def test_tiny_grid(tiny_pair):
    target, _ = tiny_pair
    grid = ComputeGrid(batch_sizes=(1, 2), new_tokens=(1, 3), context_tokens=(4, 8), repeats=2, warmup=1)
    frame, md = measure_compute(target, grid, dataset_id="compute-tiny", device="cpu-test", threads=1)
    assert list(frame.columns) == ["dataset", "model", "device", "dtype", "phase", "batch_size", "new_tokens",
                                   "context_tokens", "latency_ms"]
    # per batch size: 2 prefill + 2 contexts x (1 decode + 2 verify) = 8 configurations, 2 repeats each
    assert len(frame) == 2 * 8 * 2
    assert (frame["latency_ms"] > 0).all()
    pre = frame[frame["phase"] == "prefill"]
    assert (pre["context_tokens"] == 0).all() and set(pre["new_tokens"]) == {4, 8}
    assert set(frame.loc[frame["phase"] == "decode", "new_tokens"]) == {1}
    ver = frame[frame["phase"] == "verify"]
    assert set(zip(ver["new_tokens"], ver["context_tokens"])) == {(1, 4), (3, 4), (1, 8), (3, 8)}
    assert (frame["model"] == "tiny-target").all() and (frame["dtype"] == "fp64").all()
    assert md["source"] == "recorded" and md["torch_threads"] == 1 and md["grid"]["repeats"] == 2


def test_bad_grid():
    with pytest.raises(InputError, match="phase"):
        ComputeGrid(phases=("prefill", "train"))
    with pytest.raises(InputError, match="batch_sizes"):
        ComputeGrid(batch_sizes=())


def test_fit_table_recovers_an_affine_device():
    import numpy as np
    import pandas as pd

    from specedge.latency.cards import load_model_card
    from specedge.latency.flops import forward_flops
    from specedge.record.fit_report import compute_fit_table

    card = load_model_card("stdlib-bytegpt-3m")
    rng = np.random.default_rng(0)
    rows = [(ph, b, x, c) for ph, xs, cs in (("decode", [1], [64, 1024]), ("verify", [2, 8, 16], [64, 1024]))
            for b in (1, 4, 16) for x in xs for c in cs for _ in range(3)]
    f = pd.DataFrame(rows, columns=["phase", "batch_size", "new_tokens", "context_tokens"])
    true_ms = (f["batch_size"] * forward_flops(card, f["new_tokens"], f["context_tokens"]) / 2e10 + 5e-4) * 1e3
    f["latency_ms"] = true_ms * (1 + 0.01 * rng.standard_normal(len(f)))
    table = compute_fit_table(card, f).set_index("phase")
    assert list(table.index) == ["decode", "verify", "all"]
    assert table.loc["all", "affine_r2"] > 0.99
    assert abs(table.loc["all", "effective_flops_per_s"] / 2e10 - 1) < 0.05
    assert abs(table.loc["all", "c2_ms"] - 0.5) < 0.05
    assert table.loc["all", "median_abs_rel_residual"] < 0.03
