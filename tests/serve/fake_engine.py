"""Pieces of the fake ragged engine the engine-timed grid tests share (test_job_grid, test_steady_grid): a cache
that only tracks lengths, and a pass time that depends on b and x only (so a row's context label cannot matter);
each test's engine adds its own cost on top (a wake-up after a wait, a shape switch)."""

from __future__ import annotations

import torch

VOCAB = 11


def pass_ms(b: int, x: int) -> float:
    """The fake engine's base pass time (ms)."""
    return 1.0 + 0.25 * b + 0.125 * x


class FakeCache:
    def __init__(self, b: int, capacity: int) -> None:
        self.length = torch.zeros(b, dtype=torch.int64)
        self.capacity = capacity

    def crop(self, lengths) -> None:
        new = torch.as_tensor(lengths, dtype=torch.int64)
        assert bool((new <= self.length).all()), "crop may only shorten"
        self.length = new.clone()
