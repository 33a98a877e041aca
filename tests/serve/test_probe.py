"""The speed probe (specedge.serve.probe) on fake engines that record what they were asked to run, and on the real
engine of a tiny byte-GPT (functional only: no timing of the machine is asserted)."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install "
                                            "-e '.[record]')")

from specedge.errors import InputError
from specedge.serve.engine import RaggedCache
from specedge.serve.probe import PROBE_CONTEXT, PROBE_MIN_PASSES, PROBE_SHAPES, speed_probe

VOCAB = 13
KEYS = {"shape", "median_s", "p10_s", "p90_s", "passes", "window_s", "at_s"}


class FakeEngine:
    """new_cache/forward as the ragged engine, on a real RaggedCache without layers; each pass sleeps
    ``sleep_s`` and is logged with its (batch, new tokens, context before the pass)."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.sleep_s = sleep_s
        self.calls: list[tuple[int, int, int]] = []

    def new_cache(self, batch_size: int, capacity: int) -> RaggedCache:
        z = torch.zeros(batch_size, dtype=torch.int64)
        return RaggedCache(keys=[], values=[], offset=z.clone(), length=z.clone())

    def forward(self, tokens, counts, cache):
        b, x = tokens.shape
        assert int(tokens.max()) < VOCAB and torch.equal(counts, torch.full((b,), x, dtype=torch.int64))
        self.calls.append((b, x, int((cache.offset + cache.length).max())))
        if self.sleep_s:
            time.sleep(self.sleep_s)
        cache.length = cache.length + counts
        return torch.zeros((b, x, VOCAB))


@pytest.mark.parametrize("role", sorted(PROBE_SHAPES))
def test_the_probe_times_its_roles_fixed_shape_at_a_fixed_context(role):
    engine = FakeEngine()
    before = time.monotonic()
    out = speed_probe(engine, VOCAB, role, seconds=0.05)
    b, x = PROBE_SHAPES[role]
    assert set(out) == KEYS
    assert out["shape"] == {"batch_size": b, "new_tokens": x, "context_tokens": PROBE_CONTEXT}
    assert out["passes"] >= PROBE_MIN_PASSES and out["window_s"] >= 0.05
    assert 0 <= out["p10_s"] <= out["median_s"] <= out["p90_s"]
    assert before <= out["at_s"] <= time.monotonic()
    # an untimed prefill of PROBE_CONTEXT tokens, then every pass has the probe shape over PROBE_CONTEXT cached
    # tokens: the cache is cropped back after each pass
    assert engine.calls[0] == (b, PROBE_CONTEXT, 0)
    assert set(engine.calls[1:]) == {(b, x, PROBE_CONTEXT)}
    assert len(engine.calls) - 1 >= out["passes"] + 3  # at least 3 untimed passes before the timed ones


def test_min_passes_wins_over_a_short_window():
    out = speed_probe(FakeEngine(), VOCAB, "draft", seconds=0.0, min_passes=7)
    assert out["passes"] == 7


def test_a_slow_engine_is_timed_at_its_pass_time():
    sleep_s = 0.004
    out = speed_probe(FakeEngine(sleep_s), VOCAB, "verify", seconds=0.1)
    assert sleep_s <= out["median_s"] < sleep_s * 3  # a sleep never ends early; a loaded machine may stretch it
    assert out["p10_s"] >= sleep_s
    # the window is spent on passes: about window / pass time of them (crops and bookkeeping are cheap)
    assert out["passes"] >= 0.5 * out["window_s"] / out["p90_s"]


def test_an_unknown_role_is_refused():
    with pytest.raises(InputError, match="role"):
        speed_probe(FakeEngine(), VOCAB, "target", seconds=0.0)


def test_the_probe_runs_the_real_serving_engine_without_growing_its_cache():
    from specedge.record.bytegpt import ByteGPT, ByteGPTConfig
    from specedge.serve.engine import RaggedByteGPT

    torch.manual_seed(0)
    engine = RaggedByteGPT(ByteGPT(ByteGPTConfig(d_model=16, n_layer=1, n_head=2)))
    caches = []
    new_cache = engine.new_cache
    engine.new_cache = lambda b, cap: caches.append((new_cache(b, cap), cap)) or caches[-1][0]
    out = speed_probe(engine, 256, "verify", seconds=0.02, min_passes=3)
    assert out["passes"] >= 3 and out["median_s"] > 0
    ((cache, capacity),) = caches  # one cache, never grown, left at the probe's context
    assert cache.extent() == PROBE_CONTEXT and cache.capacity == capacity
