"""The ``measured-probed`` predictor: the measured grid rescaled by each node core's speed probe.

The VM's per-core speed wanders (by up to 30 % between runs minutes apart, steady within a few seconds), so a
compute grid measured some minutes before a run can be uniformly too fast or too slow for it. The serving code
times a fixed *speed probe* (one small pass shape per node: draft (b, x, c) = (1, 1, 128), verify (4, 5, 128))
on each node core just before each run and before and after each compute grid, and records it in metadata:

- run: ``speed_probe = {"draft": {"before": P, "after": P}, "verify": {...}}`` ("after" may be missing);
- compute trace: ``speed_probe = {"before": P, "after": P}``;
- P: ``{"shape": {...}, "median_s", "p10_s", "p90_s", "passes", "window_s", "at_s"}``.

Per node, the run's speed relative to its grid's is

    f = median(run probe before) / ref(grid),   ref = mean(median(grid before), median(grid after))

(``ref`` is the "before" median alone when the grid has no "after"). ``measured-probed`` is ``measured`` with every
predicted pass time of a node multiplied by that node's f. Assumptions [A]:

- one uniform factor per node for every pass shape (the probe's shape speaks for all of them);
- only the run's "before" probe is used: the prediction is made before running, nothing measured during or after
  the run enters it (the run's "after" probe is reported as a diagnostic, :func:`speed_drift`);
- the grid's reference speed is the mean of its before and after probes (the grid took minutes to measure);
- the per-job host overhead (:mod:`specedge.latency.host_overhead`) is not scaled: it is fitted on runs, not
  measured with the grid, and added once per job on top of the scaled passes.

Runs or grids recorded without the probe (all older ones), or whose probe shapes differ, get no factor, and
``measured-probed`` is not added (the diagnostics say why).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from specedge.latency.host_overhead import JobOverhead

#: Name of the predictor this module adds, and of the predictor it rescales.
NAME = "measured-probed"
BASE = "measured"
NODES = ("draft", "verify")


def _median(probe) -> float | None:
    """The probe's median seconds when it is a finite number > 0, else None."""
    if not isinstance(probe, dict):
        return None
    try:
        value = float(probe.get("median_s"))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def _shape(probe: dict) -> dict:
    return {k: int(v) for k, v in (probe.get("shape") or {}).items()}


def grid_reference_s(grid_probe: dict | None) -> float | None:
    """The grid's reference probe median: mean of its "before" and "after" medians (only "before" without
    "after"); None without a usable "before"."""
    before = _median((grid_probe or {}).get("before"))
    if before is None:
        return None
    after = _median((grid_probe or {}).get("after"))
    return before if after is None else 0.5 * (before + after)


def speed_factor_why(run_probe: dict | None, grid_probe: dict | None) -> tuple[float | None, str]:
    """(factor, reason): the run's probe "before" median over the grid's reference (see the module docstring),
    or None with the reason it cannot be computed."""
    if not isinstance(run_probe, dict) or _median(run_probe.get("before")) is None:
        return None, "the run has no speed probe before it"
    if not isinstance(grid_probe, dict) or grid_reference_s(grid_probe) is None:
        return None, "the compute grid has no speed probe"
    run_shape, grid_shape = _shape(run_probe["before"]), _shape(grid_probe["before"])
    if run_shape != grid_shape:
        return None, f"probe shapes differ: run {run_shape}, grid {grid_shape}"
    after = grid_probe.get("after")
    if isinstance(after, dict) and _median(after) is not None and _shape(after) != grid_shape:
        return None, f"the grid's probes differ in shape: before {grid_shape}, after {_shape(after)}"
    return _median(run_probe["before"]) / grid_reference_s(grid_probe), "run before / grid reference"


def speed_factor(run_probe: dict | None, grid_probe: dict | None) -> float | None:
    """The run's speed relative to the grid's for one node (run "before" median / grid reference), or None when
    either probe is missing or their shapes differ (:func:`speed_factor_why` says which)."""
    return speed_factor_why(run_probe, grid_probe)[0]


def speed_drift(run_probe: dict | None) -> float | None:
    """after / before − 1 of a run's probe (how much the node's speed changed during the run), None without both."""
    before, after = (_median((run_probe or {}).get(k)) for k in ("before", "after"))
    return None if before is None or after is None else after / before - 1.0


@dataclass(frozen=True)
class ScaledCompute:
    """``base``'s pass latency times ``factor`` [A]; the host overhead (``job_overhead``) is this wrapper's own and
    is never scaled (the stage-time functions add it per job, :mod:`specedge.latency.rounds`)."""

    model: object
    base: object = field(repr=False)
    factor: float
    source: str = "speed probe"
    job_overhead: JobOverhead | None = None

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        return self.factor * np.asarray(self.base.latency_s(batch_size, new_tokens, context_tokens),
                                        dtype=np.float64)


def scaled(pred, factor: float) -> ScaledCompute:
    """``pred`` with its pass times times ``factor``; its host overhead moves to the wrapper, unscaled."""
    ovh = getattr(pred, "job_overhead", None)
    base = replace(pred, job_overhead=None) if ovh is not None else pred
    return ScaledCompute(pred.model, base, float(factor), source=f"{getattr(pred, 'source', 'grid')} x {factor:.4g}",
                         job_overhead=ovh)


def with_speed_probe(predictors, factors: dict) -> list:
    """``predictors`` plus ``measured-probed`` (``measured`` with each node's pass times times ``factors[node]``);
    unchanged when there is no ``measured`` pair or either node has no factor."""
    from specedge.fidelity.predictors import PredictorPair

    base = next((p for p in predictors if p.name == BASE), None)
    if base is None or any((factors or {}).get(n) is None for n in NODES):
        return list(predictors)
    nodes = {n: scaled(getattr(base, n), factors[n]) for n in NODES}
    note = ("measured grid x speed probe (run before / grid): "
            + ", ".join(f"{n} {factors[n]:.3f}" for n in NODES))
    return [*predictors, PredictorPair(NAME, nodes["draft"], nodes["verify"], note)]


def run_speed_probe(store, meta: dict, traces) -> tuple[dict, dict]:
    """({"draft": factor or None, "verify": ...}, description for the diagnostics) of a run (metadata ``meta``)
    predicted from compute traces ``traces`` (draft id, verify id; ("custom", "custom") for given predictors)."""
    if tuple(traces) == ("custom", "custom"):
        return {n: None for n in NODES}, {"source": "none", "reason": "predictors given, no compute traces"}
    run_probes = meta.get("speed_probe") or {}
    factors, info = {}, {}
    for node, trace in zip(NODES, traces):
        run_probe = run_probes.get(node) if isinstance(run_probes, dict) else None
        grid_probe = store.info(trace).metadata.get("speed_probe") if trace else None
        factor, why = speed_factor_why(run_probe, grid_probe)
        factors[node] = factor
        info[node] = {"factor": factor, "reason": why, "trace": trace,
                      "run_before_s": _median((run_probe or {}).get("before")),
                      "run_after_s": _median((run_probe or {}).get("after")),
                      "grid_reference_s": grid_reference_s(grid_probe), "drift": speed_drift(run_probe)}
    added = all(factors[n] is not None for n in NODES)
    return factors, {"source": "probes" if added else "none", "predictor": NAME if added else None, **info}
