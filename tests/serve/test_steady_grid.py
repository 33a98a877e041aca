"""The steady grid measurer on a fake engine with a fake clock: a known pass time per shape plus a known penalty on
the first pass after a pass of another shape, so rows (steady passes only) and the shape-switch fit have exact
answers, and every timed pass is checked to see exactly its cell's context."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install "
                                            "-e '.[record]')")

from specedge.errors import InputError
from specedge.latency.compute import MeasuredCompute
from specedge.record.compute_trace import ComputeGrid
from specedge.serve.measure import GRID_MODES, RunGrid
from specedge.serve.steady_grid import measure_steady_compute
from tests.serve.fake_engine import VOCAB, FakeCache
from tests.serve.fake_engine import pass_ms as steady_ms

S_A_MS, S_S_MS = 0.3, 0.02  # penalty of a pass after a pass of another shape: 0.3 ms + 0.02 ms per sequence


class FakeEngine:
    """Advances a fake ns clock by steady_ms(b, x), plus the switch penalty when the shape differs from the last
    pass's; records the cache length every pass starts from."""

    def __init__(self) -> None:
        self.now_ns = 0
        self.last = None
        self.seen: list[tuple[int, int, int]] = []  # (b, x, cached tokens before the pass)

    def clock(self) -> int:
        return self.now_ns

    def new_cache(self, b: int, capacity: int) -> FakeCache:
        return FakeCache(b, capacity)

    def forward(self, tokens, counts, cache):
        b, x = tokens.shape
        assert int(cache.length.max()) + x <= cache.capacity, "the measurer sized a cache too small"
        self.seen.append((b, x, int(cache.length.max())))
        ms = steady_ms(b, x) + ((S_A_MS + S_S_MS * b) if self.last not in (None, (b, x)) else 0.0)
        self.last = (b, x)
        self.now_ns += int(round(ms * 1e6))
        cache.length = cache.length + counts
        return torch.zeros((b, x, VOCAB))


def grid(repeats: int = 2) -> RunGrid:
    kw = dict(batch_sizes=(1, 2, 4), new_tokens=(2, 5), repeats=repeats, warmup=1)
    return RunGrid(ComputeGrid(context_tokens=(8, 16), phases=("prefill",), **kw),
                   ComputeGrid(context_tokens=(16, 32), phases=("decode", "verify"), **kw))


def measure(engine, **kw):
    return measure_steady_compute(engine, grid(), vocab_size=VOCAB, name="fake", dataset_id="compute-fake",
                                  clock=engine.clock, **kw)


def test_rows_are_steady_passes_only_and_the_predictor_reads_them_back():
    eng = FakeEngine()
    frame, meta = measure(eng, warmup_passes=2, timed_passes=3)
    want = np.array([steady_ms(b, x) for b, x in zip(frame["batch_size"], frame["new_tokens"])])
    assert np.allclose(frame["latency_ms"].to_numpy(), want, rtol=1e-9, atol=0)  # no switch penalty in any row
    assert set(frame["dataset"]) == {"compute-fake"} and set(frame["model"]) == {"fake"}
    assert set(frame["device"]) == {"cpu"} and set(frame["dtype"]) == {"fp32"}
    assert set(frame.loc[frame["phase"] == "prefill", "context_tokens"]) == {0}
    assert set(frame.loc[frame["phase"] != "prefill", "context_tokens"]) == {16, 32}
    counts = frame.groupby("phase").size().to_dict()
    # 2 timed sweeps x 3 timed passes: 3 b x 2 c decode, 3 b x 2 c x 2 widths verify, 3 b x 2 widths prefill
    assert counts == {"decode": 2 * 3 * 3 * 2, "verify": 2 * 3 * 3 * 2 * 2, "prefill": 2 * 3 * 3 * 2}
    assert meta["grid_mode"] == "steady"
    pred = MeasuredCompute.from_trace(None, frame)
    assert float(pred.latency_s(2, 5, 16)) == pytest.approx(steady_ms(2, 5) / 1e3)
    assert float(pred.latency_s(4, 1, 32)) == pytest.approx(steady_ms(4, 1) / 1e3)


def test_every_pass_of_a_cached_cell_sees_exactly_its_context_and_prefills_a_fresh_cache():
    eng = FakeEngine()
    measure(eng, warmup_passes=2, timed_passes=3)
    seen = np.array(eng.seen)
    small = seen[:, 1] <= 5  # decode and verify passes (prefill widths 8 and 16, context prefills 16 and 32)
    assert set(seen[small, 2]) == {16, 32}
    assert set(seen[~small, 2]) == {0}  # prefills (grid rows and the cache groups' own) start from empty


def test_the_shape_switch_term_is_measured_back_as_a_diagnostic():
    eng = FakeEngine()
    frame, meta = measure(eng)
    sw = meta["shape_switch"]
    cells = 3 * 2 * 3 + 3 * 2  # cached cells (b x c x {decode, 2 widths}) + prefill cells (b x widths)
    assert len(sw["samples"]) == 2 * cells  # timed sweeps only
    assert sw["fit"]["a_s"] == pytest.approx(S_A_MS / 1e3, abs=1e-9)
    assert sw["fit"]["per_seq_s"] == pytest.approx(S_S_MS / 1e3, abs=1e-9)
    assert sw["warmup_passes"] == 2 and sw["timed_passes"] == 4
    assert sw["version"] == 1 and sw["columns"] == ["batch_size", "new_tokens", "context_tokens", "first_ms",
                                                    "steady_ms"]
    # first_ms = steady + the switch penalty, steady_ms = the shape's steady time, per sample
    s = np.array(sw["samples"])
    assert np.allclose(s[:, 4], [steady_ms(b, x) for b, x in s[:, :2]], rtol=1e-9, atol=0)
    assert np.allclose(s[:, 3] - s[:, 4], S_A_MS + S_S_MS * s[:, 0], rtol=1e-9, atol=0)


def test_one_warm_up_pass_is_enough_and_the_seed_fixes_the_order():
    frame, meta = measure(FakeEngine(), warmup_passes=1, timed_passes=1, note="n")
    assert len(meta["shape_switch"]["samples"]) == 2 * (3 * 2 * 3 + 3 * 2)
    assert meta["note"] == "n" and meta["date"].endswith("+00:00") and "steady" in meta["timing"]
    assert meta["recording_wall_s"] >= 0
    again = measure(FakeEngine(), warmup_passes=1, timed_passes=1)[1]["shape_switch"]["samples"]
    eng = FakeEngine()
    other = measure_steady_compute(eng, grid(), vocab_size=VOCAB, name="fake", dataset_id="x", seed=1,
                                   warmup_passes=1, timed_passes=1, clock=eng.clock)[1]["shape_switch"]["samples"]
    assert sorted(other) == sorted(again)  # the same cells and times, in another order
    assert again == meta["shape_switch"]["samples"]  # cells in the seeded order
    assert other != again


def test_bad_pass_counts_are_refused_and_the_mode_is_registered():
    with pytest.raises(InputError, match="warmup_passes and timed_passes"):
        measure(FakeEngine(), warmup_passes=0)
    with pytest.raises(InputError, match="warmup_passes and timed_passes"):
        measure(FakeEngine(), timed_passes=0)
    assert "steady" in GRID_MODES


def test_measure_pair_writes_steady_traces_of_the_serving_engine(tmp_path):
    """End to end on the tiny random pair (functional only: a tiny grid, no timing asserted)."""
    from tests.serve.tiny import measure_tiny_pair

    kw = dict(batch_sizes=(1, 2), new_tokens=(2, 3), repeats=1, warmup=0)
    g = RunGrid(ComputeGrid(context_tokens=(8,), phases=("prefill",), **kw),
                ComputeGrid(context_tokens=(8, 16), phases=("decode", "verify"), **kw))
    st, ids = measure_tiny_pair(tmp_path, g, "steady")
    for role in ("draft", "verify"):
        meta = st.info(ids[role]).metadata
        assert meta["grid_mode"] == "steady" and meta["measure_mode"] == "co-run"
        assert meta["speed_probe"]["before"]["at_s"] < meta["speed_probe"]["after"]["at_s"]
        frame = st.read(ids[role])
        MeasuredCompute.from_trace(None, frame)
        # 1 timed sweep x 4 timed passes per cell: 2 b x 2 c decode, x 2 widths verify, 2 b prefill
        assert frame.groupby("phase").size().to_dict() == {"decode": 4 * 2 * 2, "verify": 4 * 2 * 2 * 2,
                                                          "prefill": 4 * 2}
