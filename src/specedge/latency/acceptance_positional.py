"""Per-position acceptance: rounds drawn independently from a trace's conditional rates α_i (the ladder's rung b).

The acceptance-model ladder (:mod:`specedge.report.acceptance_models`) replays the same plan with three models of
one recorded trace: (a) one scalar i.i.d. α (:class:`~specedge.latency.acceptance.IIDAcceptance`), (b) this
source, (c) the trace itself (:class:`~specedge.latency.acceptance.TraceAcceptance`). Rung b keeps the trace's
dependence *across positions within a round* and drops its dependence *across rounds* (a request that accepts well
keeps accepting well; clumping).

Model [A: rounds independent, positions by the chain rule]: with d = the trace's largest draft length,

    S(i) = Π_{j ≤ i} α_j   for i = 1..d   (α_j = conditional acceptance of position j, NaN → α_tail),
    P(G ≥ d + k) = S(d) · α_tail^k   for k ≥ 0   (the trace's supported tail, see acceptance_tail).

Sampling by inversion from one canonical uniform U per (round, task): G = #{i ≤ d : U < S(i)}; when G = d the
extra acceptances are geometric with α_tail, drawn from the rescaled uniform V = U / S(d) ∈ [0, 1):
extra = ⌊log(1 − V) / log α_tail⌋. Rounds with G ≥ d are flagged as extrapolated at l > d (``cap`` = d),
like the trace's fully accepted rounds.
"""

from __future__ import annotations

import numpy as np

from specedge.latency.acceptance import NO_CAP, AcceptanceStats, geometric_from_uniform


class PositionalAcceptance:
    """Samples G independently per round from per-position conditional rates ``alpha_i`` and a tail ``alpha_tail``."""

    kind = "positional"

    def __init__(self, alpha_i, alpha_tail: float, *, name: str = "positional", alpha: float | None = None):
        a = np.asarray(alpha_i, dtype=np.float64)
        if a.size == 0:
            raise ValueError("alpha_i must name at least one position")
        if not 0.0 <= alpha_tail < 1.0:
            raise ValueError(f"alpha_tail must be in [0, 1), got {alpha_tail}")
        a = np.where(np.isfinite(a), a, alpha_tail)
        if np.any((a < 0) | (a > 1)):
            raise ValueError(f"alpha_i must lie in [0, 1], got {alpha_i}")
        self.name = name
        self.alpha_i = a
        self.alpha_tail = float(alpha_tail)
        self.survival = np.cumprod(a)  # S(1..d)
        self.stats = AcceptanceStats(kind=self.kind, name=name, alpha=float(alpha if alpha is not None else a[0]),
                                     alpha_i=tuple(float(x) for x in a), alpha_tail=self.alpha_tail,
                                     min_drafted=int(a.size), max_drafted=int(a.size))

    @classmethod
    def from_stats(cls, stats: AcceptanceStats, *, name: str | None = None) -> PositionalAcceptance:
        """Rung b of a recorded source: its α_i and α_tail (its fitted scalar α kept as the summary ``alpha``)."""
        return cls(stats.alpha_i, float(stats.alpha_tail), name=name or f"per-position({stats.name})",
                   alpha=stats.alpha)

    def needs_uniforms(self, max_l: int) -> bool:
        return True

    def assign(self, num_tasks: int, rng: np.random.Generator) -> None:
        return None

    def draw(self, n0: int, n1: int, uniforms: np.ndarray, assignment) -> tuple[np.ndarray, np.ndarray]:
        u = np.asarray(uniforms, dtype=np.float64)
        d = self.survival.size
        g = np.searchsorted(-self.survival, -u, side="left")  # #{i : S(i) > u}, S non-increasing
        full = g >= d
        s_d = self.survival[-1]
        v = np.clip(u / s_d if s_d > 0 else u, 0.0, np.nextafter(1.0, 0.0))
        g = np.where(full, d + geometric_from_uniform(v, self.alpha_tail), g)
        return g.astype(np.int64), np.where(full, d, NO_CAP).astype(np.int64)
