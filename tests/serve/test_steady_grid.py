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
K_A_MS, K_S_MS = 0.4, 0.05  # penalty of a pass returning to a cache after a pass on another one
W_T_MS = 0.03  # after a wait (until the next cache is allocated): every pass 0.03 ms per sequence slower


class FakeEngine:
    """Advances a fake ns clock by steady_ms(b, x), plus the shape-switch penalty when the shape differs from the
    last pass's, the cache-switch penalty when a pass returns to a cache after a pass on another one, and the
    wake penalty on every pass after a wait (until a new cache is allocated); records the cache length every pass
    starts from and the waits."""

    def __init__(self) -> None:
        self.now_ns = 0
        self.last = None
        self.last_cache = None
        self.woken = False
        self.waits: list[float] = []
        self.seen: list[tuple[int, int, int]] = []  # (b, x, cached tokens before the pass)

    def clock(self) -> int:
        return self.now_ns

    def idle(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.woken = True

    def new_cache(self, b: int, capacity: int) -> FakeCache:
        self.woken = False
        return FakeCache(b, capacity)

    def forward(self, tokens, counts, cache):
        b, x = tokens.shape
        assert int(cache.length.max()) + x <= cache.capacity, "the measurer sized a cache too small"
        self.seen.append((b, x, int(cache.length.max())))
        ms = steady_ms(b, x) + ((S_A_MS + S_S_MS * b) if self.last not in (None, (b, x)) else 0.0)
        if getattr(cache, "fake_used", False) and self.last_cache is not cache:
            ms += K_A_MS + K_S_MS * b
        ms += W_T_MS * b if self.woken else 0.0
        self.last, self.last_cache = (b, x), cache
        cache.fake_used = True
        self.now_ns += int(round(ms * 1e6))
        cache.length = cache.length + counts
        return torch.ones((b, x, VOCAB))


def grid(repeats: int = 2) -> RunGrid:
    kw = dict(batch_sizes=(1, 2, 4), new_tokens=(2, 5), repeats=repeats, warmup=1)
    return RunGrid(ComputeGrid(context_tokens=(8, 16), phases=("prefill",), **kw),
                   ComputeGrid(context_tokens=(16, 32), phases=("decode", "verify"), **kw))


def measure(engine, **kw):
    return measure_steady_compute(engine, grid(), vocab_size=VOCAB, name="fake", dataset_id="compute-fake",
                                  clock=engine.clock, idle=engine.idle, **kw)


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
    measure(eng, warmup_passes=2, timed_passes=3, switch_rounds=0)
    assert eng.waits == []
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
                                   warmup_passes=1, timed_passes=1, clock=eng.clock,
                                   idle=eng.idle)[1]["shape_switch"]["samples"]
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


def test_the_job_switch_term_is_measured_back_exactly():
    """Draft-like jobs (first pass x = 1, 1/3/5 passes): each job's excess over the steady medians is the cache
    switch on its first pass plus the wake penalty on every pass, so the fit is exact: a = K_A, s = K_S, t = W_T."""
    eng = FakeEngine()
    frame, meta = measure(eng)
    sw = meta["job_switch"]
    assert sw["version"] == 1 and sw["lengths"] == [1, 3, 5] and sw["first_tokens"] == 1 and sw["rounds"] == 3
    assert len(sw["samples"]) == 2 * 3 * 2 * 3 * 2  # timed sweeps x b x c x rounds x two caches
    assert len(eng.waits) == len(sw["samples"]) and set(eng.waits) == {sw["idle_s"]}
    fit = sw["fit"]
    assert fit["a_s"] == pytest.approx(K_A_MS / 1e3, abs=1e-9)
    assert fit["per_seq_s"] == pytest.approx(K_S_MS / 1e3, abs=1e-9)
    assert fit["per_token_s"] == pytest.approx(W_T_MS / 1e3, abs=1e-9)
    s = np.array(sw["samples"])
    assert sorted(set(s[:, 1])) == [1, 3, 5] and set(s[:, 2]) == {16, 32}
    assert np.allclose(s[:, 4], [steady_ms(b, 1) * d for b, d in s[:, :2]], rtol=1e-9, atol=0)
    # rows are untouched by the switch jobs: still the steady times
    want = np.array([steady_ms(b, x) for b, x in zip(frame["batch_size"], frame["new_tokens"])])
    assert np.allclose(frame["latency_ms"].to_numpy(), want, rtol=1e-9, atol=0)


def test_target_like_switch_jobs_are_one_wide_pass_and_fit_no_per_token_term():
    eng = FakeEngine()
    _, meta = measure(eng, switch_first_tokens=5, switch_lengths=(1,), switch_rounds=2)
    sw = meta["job_switch"]
    s = np.array(sw["samples"])
    assert len(s) == 2 * 3 * 2 * 2 * 2 and set(s[:, 1]) == {1}
    assert np.allclose(s[:, 4], [steady_ms(b, 5) for b in s[:, 0]], rtol=1e-9, atol=0)
    assert sw["fit"]["a_s"] == pytest.approx(K_A_MS / 1e3, abs=1e-9)
    assert sw["fit"]["per_seq_s"] == pytest.approx((K_S_MS + W_T_MS) / 1e3, abs=1e-9)
    assert sw["fit"]["per_token_s"] == 0.0


def test_switch_job_passes_start_at_the_cells_context_and_grow_by_one():
    eng = FakeEngine()
    measure(eng, switch_first_tokens=2, switch_lengths=(3,), switch_rounds=2)
    seen = np.array(eng.seen)
    woken_x = seen[(seen[:, 1] == 2) | (seen[:, 1] == 1)]
    # after the steady passes (context 16 or 32), a switch job: (b, 2) at c, then (b, 1) at c + 2 and c + 3
    assert {16 + 2, 16 + 3, 32 + 2, 32 + 3} <= set(woken_x[woken_x[:, 1] == 1, 2])
    assert set(woken_x[woken_x[:, 1] == 2, 2]) == {16, 32}


def test_no_switch_rounds_no_switch_term_and_bad_switch_settings_are_refused():
    _, meta = measure(FakeEngine(), switch_rounds=0)
    assert meta["job_switch"]["samples"] == [] and set(meta["job_switch"]["fit"].values()) == {0.0}
    for bad in (dict(switch_rounds=-1), dict(switch_lengths=()), dict(switch_lengths=(0, 2)),
                dict(switch_first_tokens=3)):
        with pytest.raises(InputError, match="switch_rounds must be >= 0"):
            measure(FakeEngine(), **bad)


def test_caches_hold_exactly_the_longest_switch_job_without_slack(monkeypatch):
    """With no slack slots, a cached group's caches are sized for the widest of its verify widths and its longest
    switch job (first pass + D - 1 decode passes), and every pass fits (the fake cache asserts it)."""
    import specedge.serve.steady_grid as sg

    monkeypatch.setattr(sg, "CACHE_SLACK_SLOTS", 0)
    kw = dict(batch_sizes=(1, 2), new_tokens=(3, 5), repeats=1, warmup=0)
    g = RunGrid(ComputeGrid(context_tokens=(8,), phases=("prefill",), **kw),
                ComputeGrid(context_tokens=(16,), phases=("decode", "verify"), **kw))
    eng = FakeEngine()
    sizes = []
    eng.new_cache = lambda b, capacity: (sizes.append(capacity), FakeCache(b, capacity))[1]
    _, meta = measure_steady_compute(eng, g, vocab_size=VOCAB, name="fake", dataset_id="x", clock=eng.clock,
                                     idle=eng.idle, switch_lengths=(9,), switch_rounds=1)
    assert len(meta["job_switch"]["samples"]) == 2 * 2  # b x two caches: widths (3, 5) still give switch jobs
    assert set(sizes) == {8, 16 + 9}  # prefill cells: exactly x; cached groups: c + 1 + 9 - 1
