"""Small scenarios for the policy tests (short outputs keep the round counts, and the tests, small)."""

from __future__ import annotations

from specedge import Scenario

PAIRS = ("llama-68m/llama-7b", "tinyllama-1.1b/llama-7b", "tinyllama-1.1b/llama-13b")


def small(k: int = 8, *, seed: int = 0, pair: str = PAIRS[1], alpha: float = 0.8, output_max: int = 200,
          input_max: int = 256, **kw) -> Scenario:
    return Scenario.from_preset("paper", pair=pair, alpha=alpha, tasks=k, seed=seed, output_tokens_max=output_max,
                                input_tokens_max=input_max, **kw)
