"""The cell function of specedge's sweeps: build the scenario, ask the policy for a plan, replay it.

:func:`evaluate_cell` is a plain module-level function (so that process pools and Dask workers can import it).
It uses only the public pieces: :meth:`specedge.scenario.Scenario.from_preset`, the policy registry
(:func:`specedge.policies.get_policy`) and replay (:func:`specedge.policies.replay`, i.e. :func:`specedge.evaluate`
with the policy's controller when it adapts l between rounds). Everything it returns is a deterministic function
of the cell (preset, pair, acceptance source, policy, seed, replications, overrides) — except ``plan_wall_s``,
the policy's wall time, which is a measurement and is excluded when two runs are compared
(:data:`TIMING_METRICS`).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np

from specedge.sweep.grid import Cell

#: What a cell records (all float64; NaN where a metric does not apply). Means over the cell's replications;
#: ``makespan_s_ci95`` is the half-width of the 95% interval over them (NaN for one replication).
METRICS = (
    "makespan_s",
    "makespan_s_ci95",
    "mean_latency_s",
    "p50_latency_s",
    "p90_latency_s",
    "p99_latency_s",
    "ttft_s",
    "p99_ttft_s",
    "tpot_s",
    "upload_s",
    "tokens_per_round",
    "extrapolated_rounds",
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
    """Scenario → the policy's plan → replay (through the policy's controller, if it has one) → :data:`METRICS`.

    Uses :func:`specedge.policies.get_policy` (names, ``file.py:Class`` specs and presets alike) and
    :func:`specedge.policies.replay`, which is :func:`specedge.evaluate` plus the adaptive policies' controllers.
    """
    from specedge.policies import get_policy, replay

    scenario = build_scenario(cell, store)
    policy = get_policy(cell.policy)
    started = time.perf_counter()
    plan = policy.plan(scenario)
    plan_wall_s = time.perf_counter() - started
    result = replay(scenario, policy, plan=plan, replications=cell.replications, seed=cell.seed)
    return {**result_metrics(result, plan), "plan_wall_s": plan_wall_s}


def result_metrics(result, plan) -> dict[str, float]:
    """The :data:`METRICS` (but the wall time) of a :class:`~specedge.replay.ReplayResult` and its plan."""
    summary = result.summary
    ls = np.asarray(plan.speculation_length, dtype=np.float64)
    return {
        "makespan_s": float(summary["makespan_s"]),
        "makespan_s_ci95": float(summary.get("makespan_s_ci95", np.nan)),
        "mean_latency_s": float(summary["mean_latency_s"]),
        "p50_latency_s": float(summary["p50_latency_s"]),
        "p90_latency_s": float(summary["p90_latency_s"]),
        "p99_latency_s": float(summary["p99_latency_s"]),
        "ttft_s": float(summary["mean_ttft_s"]),
        "p99_ttft_s": float(summary["p99_ttft_s"]),
        "tpot_s": float(summary["mean_tpot_s"]),
        "upload_s": float(summary["upload_makespan_s"]),
        "tokens_per_round": float(summary["tokens_per_round"]),
        "extrapolated_rounds": float(summary["extrapolated_rounds"]),
        "num_batches": float(len(plan.batches)),
        "speculation_length": float(ls.mean()) if plan.mode != "ad" else np.nan,
        "planned_makespan_s": float(summary["planned_makespan_s"]),
    }


# ------------------------------------------------------------------------------------- grid expansion and checks
#: Acceptance entries that stand for a set of datasets in the store (dataset ids never start with "@").
ACCEPTANCE_GROUPS = {
    "@traces": "every acceptance and aggregate dataset",
    "@recorded": "datasets recorded by specedge",
    "@ingested": "datasets ingested from another tool's output",
    "@published": "datasets derived from published numbers",
}


def expand_acceptance(entries, store: str | None, where: str = "grid") -> tuple[str, ...]:
    """Replace ``@traces``/``@recorded``/``@ingested``/``@published`` by the matching dataset ids.

    ``@group:N`` keeps the first N of the group (recorded datasets first, then by id). A group that matches
    nothing contributes nothing; the caller decides whether an empty result is an error.
    """
    from specedge.sweep.grid import GridError

    out: list[str] = []
    infos = None
    for entry in entries:
        if not entry.startswith("@"):
            out.append(entry)
            continue
        group, _, limit_s = entry.partition(":")
        if group not in ACCEPTANCE_GROUPS or (limit_s and not (limit_s.isdigit() and int(limit_s) > 0)):
            raise GridError(f"{where}: unknown acceptance group {entry!r}; groups are "
                            + ", ".join(f"{k} ({v})" for k, v in ACCEPTANCE_GROUPS.items())
                            + ", each optionally with ':N' to keep the first N")
        if infos is None:
            from specedge.traces.store import open_store

            infos = [i for i in open_store(store).list() if i.kind in ("acceptance", "aggregate")]
            infos.sort(key=lambda i: (i.source != "recorded", i.id))
        keep = {
            "@traces": lambda i: True,
            "@recorded": lambda i: i.source == "recorded",
            "@ingested": lambda i: i.source.startswith("ingested:"),
            "@published": lambda i: i.source == "derived-from-published",
        }[group]
        matched = [i.id for i in infos if keep(i)]
        out.extend(matched[: int(limit_s)] if limit_s else matched)
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
    from specedge.policies import get_policy

    for policy in grid.policies:
        try:
            get_policy(policy)
        except SpecedgeError as exc:
            raise GridError(f"{grid.source}: field 'policies': {exc}") from None
