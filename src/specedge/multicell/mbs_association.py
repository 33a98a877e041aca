"""Cell-to-MBS association: which MBS verifies each cell's drafts when a topology has several (pluggable, in the
registry style of :mod:`specedge.multicell.scheduling`).

A rule is any object with ``assign(topology, load) -> array of MBS index per cell``, where ``load[c, j]`` is cell
c's predicted verification load on MBS j (:func:`predicted_load`). Built in:

- ``fixed``: the preset's ``mbs`` field of every cell (what a topology without association does);
- ``nearest``: the MBS closest to the cell's SBS (``MBSSpec.position_m``);
- ``load-aware``: cells in decreasing order of their smallest load join the MBS whose predicted utilisation
  after adding them, sum_{c in j} load[c, j], is smallest (ties: nearer, then lower index); then two cells on
  different MBSs swap while that brings both nearer their MBS without raising the largest utilisation [A:
  greedy longest-processing-time list scheduling on unrelated machines; balanced, not optimal in general].

Predicted load [A]: a cell with requests at rate lambda_c (its workload's count over its arrival span), mean input
I and output O, at speculation length l and acceptance alpha_c keeps MBS j busy a fraction

    load[c, j] = lambda_c * (O / L(l, alpha_c)) * t_verify,j(1, I + O / 2, l)

of the time: rounds per request times one unbatched verification pass of MBS j's device and target at the mean
context (an upper bound: batching shares passes; it ranks cells and MBSs, which is what the rule needs).
Register a rule with ``@register_mbs_association(name)``, the ``specedge.mbs_associations`` entry-point group, or
``path/file.py:Class``.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np

from specedge.errors import PolicyError

ENTRY_POINT_GROUP = "specedge.mbs_associations"
_REGISTRY: dict[str, type] = {}


def register_mbs_association(name: str):
    def decorate(cls):
        if not callable(getattr(cls, "assign", None)):
            raise PolicyError(f"register_mbs_association({name!r}): {cls.__qualname__} has no assign(topology, load)")
        _REGISTRY[name] = cls
        cls.rule_name = name
        return cls

    return decorate


def _distances_m(topology) -> np.ndarray:
    """(cells, MBSs) distances from each SBS to each MBS."""
    mbs = np.array([m.position_m for m in topology.mbs], dtype=np.float64)
    d = topology.positions_m[:, None, :] - mbs[None, :, :]
    return np.hypot(d[..., 0], d[..., 1])


@register_mbs_association("fixed")
class Fixed:
    """Each cell's preset MBS."""

    def assign(self, topology, load) -> np.ndarray:
        return np.array([c.mbs for c in topology.cells], dtype=np.int64)


@register_mbs_association("nearest")
class Nearest:
    """The MBS nearest to the cell's SBS (ties: lower index)."""

    def assign(self, topology, load) -> np.ndarray:
        return np.argmin(_distances_m(topology), axis=1).astype(np.int64)


@register_mbs_association("load-aware")
class LoadAware:
    """Greedy balance of predicted verification load (module docstring)."""

    def assign(self, topology, load) -> np.ndarray:
        load = np.asarray(load, dtype=np.float64)
        dist = _distances_m(topology)
        util = np.zeros(load.shape[1])
        out = np.empty(load.shape[0], dtype=np.int64)
        for c in sorted(range(load.shape[0]), key=lambda c: (-load[c].min(), c)):
            after = util + load[c]
            j = min(range(load.shape[1]), key=lambda j: (after[j], dist[c, j], j))
            out[c] = j
            util[j] += load[c, j]
        # then swaps of two cells between MBSs that bring them nearer without raising the largest utilisation
        improved = True
        while improved:
            improved = False
            for a, b in ((a, b) for a in range(len(out)) for b in range(a + 1, len(out))):
                ja, jb = out[a], out[b]
                if ja == jb or dist[a, jb] + dist[b, ja] >= dist[a, ja] + dist[b, jb]:
                    continue
                trial = util.copy()
                trial[ja] += load[b, ja] - load[a, ja]
                trial[jb] += load[a, jb] - load[b, jb]
                if trial.max() <= util.max() * (1 + 1e-12):
                    out[a], out[b], util, improved = jb, ja, trial, True
        return out


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # pragma: no cover - broken metadata of another distribution
        return {}


def available_mbs_associations() -> list[str]:
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_mbs_association(spec=None):
    """An instance from a name (default ``fixed``), an entry point, ``file.py:Class``, a class or an instance."""
    spec = "fixed" if spec is None else spec
    if not isinstance(spec, str):
        obj = spec() if inspect.isclass(spec) else spec
        if not callable(getattr(obj, "assign", None)):
            raise PolicyError(f"not an MBS association rule (no assign(topology, load) method): {spec!r}")
        return obj
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if ".py:" in spec:
        from specedge.policies.base import load_file_policy

        return get_mbs_association(load_file_policy(spec))
    eps = _entry_points()
    if spec in eps:
        return get_mbs_association(eps[spec].load())
    raise PolicyError(f"unknown MBS association {spec!r}; available: {', '.join(available_mbs_associations())}")


def predicted_load(topology, workloads, *, speculation_length: int = 4, seed: int = 0) -> np.ndarray:
    """(cells, MBSs) predicted utilisation each cell would put on each MBS (module docstring)."""
    from specedge.latency.acceptance import expected_tokens_per_round
    from specedge.latency.rounds import sd_verify_s

    l = float(speculation_length)
    out = np.zeros((topology.num_cells, len(topology.mbs)))
    for c, w in enumerate(workloads):
        span = float(w.arrival_s.max() - w.arrival_s.min()) if w.num_requests > 1 else 0.0
        rate = (w.num_requests - 1) / span if span > 0 else 0.0
        i_mean, o_mean = float(w.input_tokens.mean()), float(w.output_tokens.mean())
        for j in range(len(topology.mbs)):
            cells = list(topology.cells)
            cells[c] = replace(cells[c], mbs=j)
            sc = replace(topology, cells=tuple(cells)).cell_scenario(c, seed=seed, tasks=1)
            rounds = o_mean / float(expected_tokens_per_round(l, sc.alpha))
            t_v = float(sd_verify_s(sc.verify_compute, 1.0, i_mean + o_mean / 2.0, i_mean, l, False))
            out[c, j] = rate * rounds * t_v
    return out


def associate_cells(topology, workloads, rule="fixed", *, speculation_length: int = 4, seed: int = 0):
    """``topology`` with every cell's ``mbs`` set by ``rule`` (a name or a rule object); returns (topology,
    assignment, load)."""
    obj = get_mbs_association(rule)
    load = predicted_load(topology, workloads, speculation_length=speculation_length, seed=seed)
    got = np.asarray(obj.assign(topology, load), dtype=np.int64)
    if got.shape != (topology.num_cells,) or got.min() < 0 or got.max() >= len(topology.mbs):
        raise PolicyError(f"MBS association {rule!r} returned {got.tolist()}; expected one MBS index in "
                          f"0..{len(topology.mbs) - 1} per cell")
    cells = tuple(replace(c, mbs=int(j)) for c, j in zip(topology.cells, got))
    return replace(topology, cells=cells), got, load
