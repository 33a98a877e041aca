"""The cell function of specedge's sweeps: build the scenario, ask the policy for a plan, replay it.

:func:`evaluate_cell` is a plain module-level function (so that process pools and Dask workers can import it).
It uses only the public pieces: :meth:`specedge.scenario.Scenario.from_preset`, :func:`specedge.optimize` and
:func:`specedge.evaluate`. Everything it returns is a deterministic function of the cell (preset, pair,
acceptance source, policy, seed, replications, overrides) — except ``plan_wall_s``, the policy's wall time,
which is a measurement and is excluded when two runs are compared (:data:`TIMING_METRICS`).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np

from specedge.sweep.grid import Cell

#: What a cell records (all float64; NaN where a metric does not apply).
METRICS = (
    "makespan_s",
    "makespan_s_low",
    "makespan_s_high",
    "mean_latency_s",
    "p50_latency_s",
    "p90_latency_s",
    "p99_latency_s",
    "ttft_s",
    "tpot_s",
    "upload_s",
    "num_batches",
    "speculation_length",
    "planned_makespan_s",
    "plan_wall_s",
)
#: Metrics that are measurements of this machine, not functions of the cell.
TIMING_METRICS = ("plan_wall_s",)
#: Scenario arguments a grid override may set besides :class:`~specedge.latency.params.ScenarioParams` fields.
SCENARIO_ARGUMENTS = ("alpha", "tasks")


@lru_cache(maxsize=64)
def _acceptance_source(store: str | None, dataset_id: str):
    """A trace/aggregate acceptance source, read once per process and dataset (sweeps reuse it many times)."""
    from specedge.latency.acceptance import source_from_frame
    from specedge.traces.store import open_store

    st = open_store(store)
    info = st.info(dataset_id)
    if info.kind == "compute":
        from specedge.errors import ScenarioError

        raise ScenarioError(f"dataset {dataset_id!r} is a compute trace; acceptance needs an acceptance or "
                            "aggregate one")
    return source_from_frame(st.read(dataset_id), name=dataset_id, kind=info.kind)


def acceptance_argument(acceptance: str, store: str | None) -> Any:
    """What :meth:`Scenario.from_preset` gets for a grid's acceptance entry (cached source for datasets)."""
    if acceptance in ("expected", "iid"):
        return acceptance
    return _acceptance_source(store, acceptance)


def build_scenario(cell: Cell, store: str | None):
    """The cell's scenario (preset + pair + acceptance + seed + overrides)."""
    from specedge.scenario import Scenario

    return Scenario.from_preset(cell.preset, pair=cell.pair, seed=cell.seed,
                                acceptance=acceptance_argument(cell.acceptance, store), store=store,
                                **dict(cell.overrides))


def evaluate_cell(cell: Cell, store: str | None) -> dict[str, float]:
    """Scenario → plan (``specedge.optimize``) → replay (``specedge.evaluate``) → the :data:`METRICS`."""
    import specedge

    scenario = build_scenario(cell, store)
    started = time.perf_counter()
    plan = specedge.optimize(scenario, policy=cell.policy)
    plan_wall_s = time.perf_counter() - started
    result = specedge.evaluate(scenario, plan, replications=cell.replications, seed=cell.seed)
    return {**result_metrics(result, plan), "plan_wall_s": plan_wall_s}


def result_metrics(result, plan) -> dict[str, float]:
    """The :data:`METRICS` of a replay result (per-task table + aggregates) and its plan."""
    summary = result.summary()
    ls = np.asarray(plan.speculation_length, dtype=np.float64)
    out = {
        "makespan_s": float(summary["makespan_s"]),
        "makespan_s_low": float(summary.get("makespan_s_low", np.nan)),
        "makespan_s_high": float(summary.get("makespan_s_high", np.nan)),
        "mean_latency_s": float(summary["mean_latency_s"]),
        "p50_latency_s": float(summary["p50_latency_s"]),
        "p90_latency_s": float(summary["p90_latency_s"]),
        "p99_latency_s": float(summary["p99_latency_s"]),
        "ttft_s": float(summary["ttft_s"]),
        "tpot_s": float(summary["tpot_s"]),
        "upload_s": float(summary["upload_s"]),
        "num_batches": float(len(plan.batches)),
        "speculation_length": float(ls.mean()) if plan.mode != "ad" else np.nan,
        "planned_makespan_s": float(summary.get("planned_makespan_s", np.nan)),
    }
    return out


# ------------------------------------------------------------------------------------- grid expansion and checks
#: Acceptance entries that stand for a set of datasets in the store (dataset ids never start with "@").
ACCEPTANCE_GROUPS = {
    "@traces": "every acceptance and aggregate dataset",
    "@recorded": "datasets recorded by specedge",
    "@ingested": "datasets ingested from another tool's output",
    "@published": "datasets derived from published numbers",
}


def expand_acceptance(entries, store: str | None, where: str = "grid") -> tuple[str, ...]:
    """Replace ``@traces``/``@recorded``/``@ingested``/``@published`` by the matching dataset ids (sorted)."""
    from specedge.sweep.grid import GridError

    out: list[str] = []
    infos = None
    for entry in entries:
        if not entry.startswith("@"):
            out.append(entry)
            continue
        if entry not in ACCEPTANCE_GROUPS:
            raise GridError(f"{where}: unknown acceptance group {entry!r}; groups are "
                            + ", ".join(f"{k} ({v})" for k, v in ACCEPTANCE_GROUPS.items()))
        if infos is None:
            from specedge.traces.store import open_store

            infos = [i for i in open_store(store).list() if i.kind in ("acceptance", "aggregate")]
        keep = {
            "@traces": lambda i: True,
            "@recorded": lambda i: i.source == "recorded",
            "@ingested": lambda i: i.source.startswith("ingested:"),
            "@published": lambda i: i.source == "derived-from-published",
        }[entry]
        out.extend(i.id for i in infos if keep(i))
    return tuple(dict.fromkeys(out))


def check_grid(grid, store: str | None) -> None:
    """Fail fast, before any work, on a grid naming an unknown preset, pair, dataset, policy or parameter.

    Builds one scenario per (preset, pair, acceptance) with the first value of every axis (so the scenario code
    gives its own precise message), then checks every policy name.
    """
    from specedge.errors import SpecedgeError
    from specedge.sweep.grid import GridError

    first = {**dict(grid.fixed), **{k: v[0] for k, v in grid.axes}}
    for preset in grid.presets:
        for pair in grid.pairs:
            for acceptance in grid.acceptance:
                cell = Cell(preset, pair, acceptance, grid.policies[0], grid.seeds[0], grid.replications,
                            tuple(first.items()))
                try:
                    build_scenario(cell, store)
                except SpecedgeError as exc:
                    raise GridError(f"{grid.source}: preset {preset!r}, pair {pair!r}, acceptance "
                                    f"{acceptance!r}: {exc}") from None
    from specedge.policies import available_policies, resolve_policy_name

    for policy in grid.policies:
        try:
            resolve_policy_name(policy)
        except SpecedgeError as exc:
            raise GridError(f"{grid.source}: field 'policies': {exc} (known: {', '.join(available_policies())})"
                            ) from None
