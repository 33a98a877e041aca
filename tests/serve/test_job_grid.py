"""The job-shaped grid measurer on a fake engine with a fake clock: known warm pass times and a known wake-up cost
after every blocking wait, so rows and the fitted per-job term have exact answers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install "
                                            "-e '.[record]')")

from specedge.latency.compute import MeasuredCompute
from specedge.record.compute_trace import ComputeGrid
from specedge.serve.job_grid import fit_wake_up, measure_job_compute, plus, wake_up_overhead
from specedge.serve.measure import RunGrid
from tests.serve.fake_engine import VOCAB, FakeCache
from tests.serve.fake_engine import pass_ms as warm_ms

W_A_MS, W_S_MS = 0.7, 0.05  # wake-up cost of a first pass after a wait: 0.7 ms + 0.05 ms per sequence


class FakeEngine:
    """Advances a fake ns clock by warm_ms(b, x), plus the wake-up cost on the first pass after a wait."""

    def __init__(self) -> None:
        self.now_ns = 0
        self.woken = False
        self.waits: list[float] = []
        self.caches = 0

    def clock(self) -> int:
        return self.now_ns

    def idle(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now_ns += int(seconds * 1e9)
        self.woken = True

    def new_cache(self, b: int, capacity: int) -> FakeCache:
        self.caches += 1
        return FakeCache(b, capacity)

    def forward(self, tokens, counts, cache):
        b, x = tokens.shape
        assert int(cache.length.max()) + x <= cache.capacity, "the measurer sized a cache too small"
        ms = warm_ms(b, x) + ((W_A_MS + W_S_MS * b) if self.woken else 0.0)
        self.woken = False
        self.now_ns += int(round(ms * 1e6))
        cache.length = cache.length + counts
        return torch.zeros((b, x, VOCAB))


def grid(repeats: int = 3) -> RunGrid:
    kw = dict(batch_sizes=(1, 2, 4), new_tokens=(2, 4), repeats=repeats, warmup=1)
    return RunGrid(ComputeGrid(context_tokens=(8, 16), phases=("prefill",), **kw),
                   ComputeGrid(context_tokens=(16, 32), phases=("decode", "verify"), **kw))


def measure(engine: FakeEngine, first_tokens: int = 1, decode_passes: int = 3, g=None):
    return measure_job_compute(engine, g or grid(), vocab_size=VOCAB, name="fake", dataset_id="compute-fake",
                               first_tokens=first_tokens, decode_passes=decode_passes, idle_s=0.005,
                               clock=engine.clock, idle=engine.idle)


@pytest.mark.parametrize("first_tokens", [1, 4])
def test_rows_are_warm_passes_prefills_cold_and_the_cold_first_pass_is_not_a_row(first_tokens):
    eng = FakeEngine()
    frame, meta = measure(eng, first_tokens=first_tokens)
    # decode/verify rows: warm; prefill rows: a job's first pass after the wait, so warm + the wake-up cost
    cold = (frame["phase"] == "prefill").to_numpy()
    want = np.array([warm_ms(b, x) for b, x in zip(frame["batch_size"], frame["new_tokens"])])
    want = want + cold * (W_A_MS + W_S_MS * frame["batch_size"].to_numpy())
    assert np.allclose(frame["latency_ms"].to_numpy(), want, atol=1e-6)
    counts = frame.groupby("phase").size().to_dict()
    # 3 timed sweeps: 3 b x 2 c x 3 decode passes, 3 b x 2 c x 2 widths, 3 b x 2 prefill widths
    assert counts == {"decode": 3 * 3 * 2 * 3, "verify": 3 * 3 * 2 * 2, "prefill": 3 * 3 * 2}
    assert meta["grid_mode"] == "job"
    # every phase's grid is complete: the ordinary predictor reads it and gives the warm times back
    pred = MeasuredCompute.from_trace(None, frame)
    assert float(pred.latency_s(2, 4, 16)) == pytest.approx(warm_ms(2, 4) / 1e3)
    assert float(pred.latency_s(4, 1, 32)) == pytest.approx(warm_ms(4, 1) / 1e3)


def test_one_blocking_wait_before_every_job():
    eng = FakeEngine()
    _, meta = measure(eng)
    jobs = (1 + 3) * (3 * 2 + 3 * 2)  # (warm-up + timed sweeps) x (cache groups + prefill cells)
    assert eng.waits == [0.005] * jobs
    assert len(meta["wake_up"]["samples"]) == 3 * 3 * 2  # timed sweeps only
    assert meta["wake_up"]["idle_s"] == 0.005


@pytest.mark.parametrize("first_tokens", [1, 4])
def test_the_wake_up_term_is_measured_back(first_tokens):
    eng = FakeEngine()
    _, meta = measure(eng, first_tokens=first_tokens)
    fit = meta["wake_up"]["fit"]
    assert fit["a_s"] == pytest.approx(W_A_MS / 1e3, abs=1e-9)
    assert fit["per_seq_s"] == pytest.approx(W_S_MS / 1e3, abs=1e-9)
    ovh = wake_up_overhead(meta)
    assert float(ovh.job_s(3, 5)) == pytest.approx((W_A_MS + 3 * W_S_MS) / 1e3)


def test_fit_by_hand_and_degenerate_cases():
    # per-b medians: b=1 -> 2.0 ms, b=3 -> 3.0 ms: w_a = 1.5 ms, w_s = 0.5 ms; the outlier is out-voted
    samples = [[1, 1, 16, 5.0, 3.0], [1, 1, 32, 5.0, 3.0], [1, 1, 64, 90.0, 3.0],
               [3, 1, 16, 6.0, 3.0], [3, 1, 32, 6.0, 3.0]]
    a, s = fit_wake_up(samples)
    assert (a, s) == pytest.approx((1.5e-3, 0.5e-3))
    assert fit_wake_up([[2, 1, 16, 4.0, 3.0]]) == pytest.approx((1e-3, 0.0))
    assert fit_wake_up([]) == (0.0, 0.0)
    # a cold pass faster than the warm one never gives a negative term
    assert fit_wake_up([[1, 1, 16, 2.0, 3.0], [2, 1, 16, 2.0, 3.0]]) == (0.0, 0.0)


def test_pass_shaped_traces_have_no_wake_up_term_and_overheads_add():
    from specedge.latency.host_overhead import JobOverhead

    assert wake_up_overhead({"grid_mode": "pass"}) is None
    assert wake_up_overhead({}) is None
    host = JobOverhead(1e-3, 2e-4, 3e-5, source="host")
    wake = JobOverhead(4e-4, 5e-5, 0.0, source="wake")
    both = plus(host, wake)
    assert float(both.job_s(3, 4)) == pytest.approx(float(host.job_s(3, 4)) + float(wake.job_s(3, 4)))
    assert plus(None, wake) is wake and plus(host, None) is host and plus(None, None) is None


def test_first_pass_width_must_be_measured():
    from specedge.errors import InputError

    with pytest.raises(InputError, match="not a measured width"):
        measure(FakeEngine(), first_tokens=3)


def test_measure_pair_writes_job_shaped_traces_of_the_serving_engine(tmp_path):
    """End to end on the tiny random pair (functional only: a tiny grid, no timing asserted): both traces are
    job-shaped, carry the wake-up samples and read as complete grids."""
    from tests.serve.tiny import measure_tiny_pair

    kw = dict(batch_sizes=(1, 2), new_tokens=(2, 3), repeats=1, warmup=0)
    g = RunGrid(ComputeGrid(context_tokens=(8,), phases=("prefill",), **kw),
                ComputeGrid(context_tokens=(8, 16), phases=("decode", "verify"), **kw))
    st, ids = measure_tiny_pair(tmp_path, g, "job")
    for role, first, jobs in (("draft", 1, 5), ("verify", 3, 1)):  # the draft model gets >= 5 jobs per group
        meta = st.info(ids[role]).metadata
        assert meta["grid_mode"] == "job" and meta["measure_mode"] == "co-run"
        assert meta["wake_up"]["first_tokens"] == first
        probe = meta["speed_probe"]  # the model's speed probe right before and right after its grid
        assert probe["before"]["at_s"] < probe["after"]["at_s"] and probe["after"]["passes"] >= 5
        assert len(meta["wake_up"]["samples"]) == jobs * 2 * 2  # timed jobs x b x c
        frame = st.read(ids[role])
        MeasuredCompute.from_trace(None, frame)
        assert set(frame["phase"]) == {"prefill", "decode", "verify"}
