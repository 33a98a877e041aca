"""Canonical acceptance randomness of one replication, drawn lazily round by round.

Per replication r of seed s, one generator ``numpy.random.default_rng([s, r])`` gives, in this order: the trace
assignment (trace sources), then, only if the source needs them for the largest speculation length in play,
K uniforms per round in round-major order. Any implementation that follows this order (the vectorised core, the
round-by-round controller path, bench/reference_replay.py) sees the same numbers, however it chunks the rounds.
"""

from __future__ import annotations

import numpy as np


def replication_rng(seed: int, replication: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(replication)])


class AcceptanceDraws:
    """Potential accepted counts G and extrapolation caps for every (round, task), extended on demand.

    ``get(rounds)`` returns ``(G, cap)``, both (rounds, K) int64 arrays in task order: a round at speculation
    length l accepts min(G, l) drafts, and is an extrapolation when l > cap (see
    :mod:`specedge.latency.acceptance`). Not used for the deterministic ``expected`` source.
    """

    def __init__(self, source, num_tasks: int, rng: np.random.Generator, max_l: int):
        self.source = source
        self.num_tasks = int(num_tasks)
        self.rng = rng
        self.assignment = source.assign(self.num_tasks, rng)
        self.use_uniforms = bool(source.needs_uniforms(int(max_l)))
        self._g = np.empty((0, self.num_tasks), dtype=np.int64)
        self._cap = np.empty((0, self.num_tasks), dtype=np.int64)

    @property
    def rounds(self) -> int:
        return self._g.shape[0]

    def get(self, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        have = self._g.shape[0]
        if rounds > have:
            u = self.rng.random((rounds - have, self.num_tasks)) if self.use_uniforms else None
            g, cap = self.source.draw(have, rounds, u, self.assignment)
            self._g = np.concatenate([self._g, np.asarray(g, dtype=np.int64)]) if have else np.asarray(g, np.int64)
            self._cap = np.concatenate([self._cap, np.asarray(cap, dtype=np.int64)]) if have else \
                np.asarray(cap, np.int64)
        return self._g[:rounds], self._cap[:rounds]
