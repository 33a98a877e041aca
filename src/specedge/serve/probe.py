"""The speed probe: a fixed forward pass timed on a node's core right before (and after) a run or a compute grid.

This machine's per-core speed wanders (the same pass is up to ~30 % slower minutes apart, with seconds-long
bursts), so a compute grid measured at one moment mispredicts a run made at another. Every real run and every
compute grid therefore times the same fixed pass, the probe, on each node core; the fidelity predictor scales a
grid by the ratio of the run's probe to the grid's probe (docs/fidelity.md, "Speed probe").

The probe runs the serving engine (:mod:`specedge.serve.engine`) on a fresh ragged cache holding
:data:`PROBE_CONTEXT` random tokens (seeded, untimed prefill), makes a few untimed passes of the role's fixed shape
(:data:`PROBE_SHAPES`), then times back-to-back passes of that shape for :data:`PROBE_S` seconds (at least
:data:`PROBE_MIN_PASSES`); after every pass the cache is cropped back to :data:`PROBE_CONTEXT` tokens outside the
timed region, so every timed pass sees the same context.

Constants marked [A] are assumptions (chosen, not measured to be optimal).
"""

from __future__ import annotations

import time

import numpy as np

from specedge.errors import InputError

#: [A] Seconds of timed probing (each probe; a run probes before and after serving, a grid before and after).
PROBE_S = 1.0
#: [A] Timed passes at least, whatever ``PROBE_S`` (a slow model still gets a median of several passes).
PROBE_MIN_PASSES = 5
#: [A] Cached tokens every timed probe pass attends over (the cache is cropped back to this after each pass).
PROBE_CONTEXT = 128
#: [A] The fixed probe pass per node role, (batch_size, new_tokens): the draft node's single-token decode at b = 1
#: and the verify node's b = 4 verification of 5 tokens (l = 4 drafts + 1).
PROBE_SHAPES = {"draft": (1, 1), "verify": (4, 5)}
#: Untimed passes of the probe shape after the prefill and before the timed ones.
PROBE_WARMUP_PASSES = 3
#: Seed of the probe's random tokens.
PROBE_SEED = 0


def speed_probe(engine, vocab_size: int, role: str, *, seconds: float = PROBE_S,
                min_passes: int = PROBE_MIN_PASSES, torch=None) -> dict:
    """Time the ``role``'s fixed probe pass (:data:`PROBE_SHAPES`) back to back on ``engine`` (a ragged serving
    engine: ``new_cache(b, capacity)``, ``forward(tokens, counts, cache)``) at a fixed context of
    :data:`PROBE_CONTEXT` cached tokens, for ``seconds`` and at least ``min_passes`` passes.

    Returns ``{"shape": {"batch_size", "new_tokens", "context_tokens"}, "median_s", "p10_s", "p90_s", "passes",
    "window_s", "at_s"}``: per-pass seconds (time.perf_counter around each forward pass only), the number of timed
    passes, the timed window's length and its start on time.monotonic (the clock of the run's records).
    """
    if role not in PROBE_SHAPES:
        raise InputError(f"speed probe: role {role!r}; expected one of {', '.join(PROBE_SHAPES)}")
    if torch is None:
        import torch
    b, x = PROBE_SHAPES[role]
    gen = torch.Generator().manual_seed(PROBE_SEED)
    keep = [PROBE_CONTEXT] * b
    with torch.inference_mode():
        cache = engine.new_cache(b, PROBE_CONTEXT + x + 8)
        engine.forward(torch.randint(0, int(vocab_size), (b, PROBE_CONTEXT), generator=gen),
                       torch.full((b,), PROBE_CONTEXT, dtype=torch.int64), cache)
        tokens = torch.randint(0, int(vocab_size), (b, x), generator=gen)
        counts = torch.full((b,), x, dtype=torch.int64)
        for _ in range(PROBE_WARMUP_PASSES):
            engine.forward(tokens, counts, cache)
            cache.crop(keep)
        times = []
        at = time.monotonic()
        start = time.perf_counter()
        while True:
            t = time.perf_counter()
            engine.forward(tokens, counts, cache)
            times.append(time.perf_counter() - t)
            cache.crop(keep)
            if len(times) >= min_passes and time.perf_counter() - start >= seconds:
                break
        window = time.perf_counter() - start
    s = np.asarray(times)
    return {"shape": {"batch_size": b, "new_tokens": x, "context_tokens": PROBE_CONTEXT},
            "median_s": round(float(np.median(s)), 9), "p10_s": round(float(np.percentile(s, 10)), 9),
            "p90_s": round(float(np.percentile(s, 90)), 9), "passes": len(times), "window_s": round(window, 6),
            "at_s": round(at, 6)}
