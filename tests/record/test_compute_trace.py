"""The compute-trace measurer on a tiny grid."""

from __future__ import annotations

import pytest

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
