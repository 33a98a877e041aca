"""Round-by-round replay with a speculation-length controller (adaptive l).

A controller has ``choose_l(state) -> int``; it is asked before every round of every batch and sees only that
batch's history (:class:`BatchState`): the accepted counts of its members in the rounds so far. Acceptance does not
depend on timing, so each batch's rounds are played out first, producing a per-(batch, round) schedule of l, and
the vectorised core then times that schedule; the result is identical to replaying the schedule directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from specedge.errors import PolicyError
from specedge.latency.acceptance import expected_tokens_per_round
from specedge.replay.core import PreparedPlan

_EPS = 1e-9


@dataclass
class BatchState:
    """What a controller sees before round ``round`` of batch ``batch``.

    ``tasks``: the batch's task indices; ``live``: members still generating; ``committed``: tokens committed so
    far per member; ``output_tokens``: their target lengths; ``accepted``: one array per past round with each
    member's accepted draft count (nan for members that had already finished; fractional for the ``expected``
    source); ``speculation_lengths``: the l chosen in each past round. One state object per batch is updated in
    place between calls: copy what you keep.
    """

    batch: int
    round: int
    tasks: np.ndarray
    live: np.ndarray
    committed: np.ndarray
    output_tokens: np.ndarray
    accepted: list = field(default_factory=list)
    speculation_lengths: list = field(default_factory=list)


@runtime_checkable
class Controller(Protocol):
    def choose_l(self, state: BatchState) -> int: ...


def schedule_from_controller(sc, prep: PreparedPlan, draws, controller: Controller, max_l: int) -> list[np.ndarray]:
    """Play every batch round by round, asking ``controller`` for l; returns the l schedule of each batch."""
    schedule = []
    outputs = sc.tasks["output_tokens"].to_numpy()
    for m, members in enumerate(prep.plan.batches):
        tasks = np.asarray(members, dtype=np.int64)
        state = BatchState(batch=m, round=0, tasks=tasks, live=np.ones(tasks.size, dtype=bool),
                           committed=np.zeros(tasks.size), output_tokens=outputs[tasks])
        while state.live.any():
            l = controller.choose_l(state)
            if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not 1 <= int(l) <= max_l:
                raise PolicyError(f"controller chose l={l!r} in batch {m}, round {state.round}; expected an int in "
                                  f"1..{max_l} (max_speculation_length)")
            l = int(l)
            n = state.round
            if prep.mode == "ad":
                acc = np.zeros(tasks.size)
            elif draws is None:
                acc = np.full(tasks.size, float(expected_tokens_per_round(l, sc.acceptance.alpha)) - 1.0)
            else:
                g, _ = draws.get(max(n + 1, min(2 * draws.rounds, n + 256)))
                acc = np.minimum(g[n, tasks], l).astype(np.float64)
            acc = np.where(state.live, acc, np.nan)
            state.committed = np.where(state.live, state.committed + acc + 1.0, state.committed)
            state.accepted.append(acc)
            state.speculation_lengths.append(l)
            state.live = state.committed < state.output_tokens - _EPS
            state.round = n + 1
        schedule.append(np.asarray(state.speculation_lengths, dtype=np.int64))
    return schedule
