"""Verifier scheduling across cells: which waiting verification job a shared MBS serves next (pluggable).

When the MBS becomes free at time ``now_s`` it sees the jobs whose drafts have arrived (a
:class:`VerifyQueue`: one entry per job, arrays) and a policy picks one by index. The built-in policies
(each a total order, so a choice is deterministic; ties go to the earlier-ready job, then the lower cell index):

- ``fcfs``: smallest ready time r_j (drafts arrived first) [A: the natural baseline];
- ``round-robin``: the first cell after the last one served, cyclically, that has a job; FCFS inside a cell;
- ``shortest-verify-first``: smallest predicted verification time t_v,j (shortest job first: minimises mean
  waiting at one server when jobs are all present [textbook SPT rule]);
- ``pipeline-aware``: smallest ``sbs_idle_at_s`` = the time the job's SBS runs out of drafting work if the job
  is not verified now. Verifying job j releases its batch's next drafting round on its SBS, so serving the cell
  whose drafting stage goes idle first keeps every cell's SBS busy (the two-stage pipeline's rule, docs/model.md
  section 5, applied across cells) [A].

A policy is any object with ``choose(queue) -> int``. Policies register by name (:func:`register_verifier_policy`),
by the ``specedge.verifier_policies`` entry-point group, or as ``path/to/file.py:Class``, as in
:mod:`specedge.policies.base`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from specedge.errors import PolicyError

ENTRY_POINT_GROUP = "specedge.verifier_policies"
_REGISTRY: dict[str, Callable[..., object]] = {}


@dataclass(frozen=True)
class VerifyQueue:
    """The verification jobs waiting at one MBS, one entry per job (equal-length arrays)."""

    cell: np.ndarray
    ready_s: np.ndarray
    verify_s: np.ndarray
    sbs_idle_at_s: np.ndarray
    now_s: float = 0.0
    last_cell: int = -1
    num_cells: int = 0

    def __post_init__(self) -> None:
        n = len(self.cell)
        for name in ("ready_s", "verify_s", "sbs_idle_at_s"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"VerifyQueue.{name} has {len(getattr(self, name))} entries, cell has {n}")
        if n == 0:
            raise ValueError("VerifyQueue is empty: a policy is asked only when a job waits")

    @classmethod
    def of(cls, cell, ready_s, verify_s, sbs_idle_at_s=None, *, now_s=0.0, last_cell=-1, num_cells=None):
        cell = np.asarray(cell, dtype=np.int64)
        ready = np.asarray(ready_s, dtype=np.float64)
        idle = ready if sbs_idle_at_s is None else np.asarray(sbs_idle_at_s, dtype=np.float64)
        n_cells = int(cell.max()) + 1 if num_cells is None else int(num_cells)
        return cls(cell, ready, np.asarray(verify_s, dtype=np.float64), idle, float(now_s), int(last_cell), n_cells)


def _first_by(*keys) -> int:
    """Index of the lexicographically smallest (keys[0], keys[1], ...) entry."""
    return int(np.lexsort(tuple(reversed(keys)))[0])


def register_verifier_policy(name: str):
    """Class decorator: register a verifier scheduling policy under ``name``."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name) or ":" in name:
        raise PolicyError(f"verifier policy name must be a non-empty string without spaces or ':', got {name!r}")

    def decorate(cls):
        if inspect.isclass(cls) and not callable(getattr(cls, "choose", None)):
            raise PolicyError(f"register_verifier_policy({name!r}): {cls.__qualname__} has no choose(queue)")
        _REGISTRY[name] = cls
        cls.policy_name = name
        return cls

    return decorate


@register_verifier_policy("fcfs")
class FCFS:
    """First come, first served: the job whose drafts arrived first."""

    def choose(self, q: VerifyQueue) -> int:
        return _first_by(q.ready_s, q.cell)


@register_verifier_policy("round-robin")
class RoundRobin:
    """Cells in turn: the first cell after ``last_cell`` (cyclically) with a waiting job; FCFS within it."""

    def choose(self, q: VerifyQueue) -> int:
        n = max(q.num_cells, int(q.cell.max()) + 1)
        turn = (q.cell - q.last_cell - 1) % n
        return _first_by(turn, q.ready_s)


@register_verifier_policy("shortest-verify-first")
class ShortestVerifyFirst:
    """The job with the smallest predicted verification time."""

    def choose(self, q: VerifyQueue) -> int:
        return _first_by(q.verify_s, q.ready_s, q.cell)


@register_verifier_policy("pipeline-aware")
class PipelineAware:
    """The job whose SBS would go idle first without it (keeps every cell's drafting stage busy)."""

    def choose(self, q: VerifyQueue) -> int:
        return _first_by(q.sbs_idle_at_s, q.ready_s, q.cell)


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # pragma: no cover - broken metadata of another distribution
        return {}


def available_verifier_policies() -> list[str]:
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_verifier_policy(spec=None):
    """An instance from a name (default ``fcfs``), an entry point, ``file.py:Class``, a class or an instance."""
    if spec is None:
        spec = "fcfs"
    if not isinstance(spec, str):
        obj = spec() if inspect.isclass(spec) else spec
        if not callable(getattr(obj, "choose", None)):
            raise PolicyError(f"not a verifier policy (no choose(queue) method): {spec!r}")
        return obj
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if ".py:" in spec:
        from specedge.policies.base import load_file_policy

        return get_verifier_policy(load_file_policy(spec))
    eps = _entry_points()
    if spec in eps:
        return get_verifier_policy(eps[spec].load())
    raise PolicyError(f"unknown verifier policy {spec!r}; available: {', '.join(available_verifier_policies())}")
