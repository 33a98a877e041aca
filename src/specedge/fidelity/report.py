"""Fidelity results for reports: one table over every real run in the store, and a predicted-vs-measured figure.

>>> table, fig = fidelity_report()            # doctest: +SKIP
>>> fig.savefig("fidelity.png")               # doctest: +SKIP

``fidelity_table`` has one row per (run, predictor): pair, plan (batch sizes, l), tasks, load average at run time,
median and p90 per-task error, makespan error (fractions) and the measured makespan. ``fidelity_figure`` draws each
task's predicted latency against the measured one, one panel per predictor, with the y = x line and a ±10% band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge.fidelity.compare import STAGE_TIMES, compare_run

#: Relative band drawn around y = x in the figure (the issue's per-task target).
TARGET_BAND = 0.10


def _run_ids(store, run_ids):
    if run_ids is not None:
        return list(run_ids)
    return sorted(i.id for i in store.list() if i.kind == "run")


def _label(result) -> str:
    """A plan's short name: its batch sizes ("4×6" when equal, else "10+14") and its speculation lengths."""
    plan = result.run["plan"]
    sizes = plan["batch_sizes"]
    ls = sorted(set(plan["speculation_length"]))
    batching = f"{len(sizes)}×{sizes[0]}" if len(set(sizes)) == 1 else "+".join(map(str, sizes))
    return f"{batching} l={','.join(map(str, ls))}"


def compare_runs(run_ids=None, *, store=None, acceptance: str = "observed") -> list:
    """:func:`compare_run` on each run (every run in the store by default)."""
    from specedge.traces.store import open_store

    st = store if hasattr(store, "read") else open_store(store)
    return [compare_run(rid, store=st, acceptance=acceptance) for rid in _run_ids(st, run_ids)]


def fidelity_table(run_ids=None, *, store=None, acceptance: str = "observed", results=None) -> pd.DataFrame:
    """One row per (run, predictor) over the given runs (default: every run in the store)."""
    results = results if results is not None else compare_runs(run_ids, store=store, acceptance=acceptance)
    rows = []
    for res in results:
        load = res.run.get("load_average_before") or [np.nan]
        for r in res.table.to_dict(orient="records"):
            rows.append({
                "run": res.run_id, "pair": res.run.get("pair"), "plan": _label(res), "tasks": res.run.get("num_tasks"),
                "temperature": res.run.get("temperature"), "load_1min": load[0], "predictor": r["predictor"],
                "median_task_error": r["median_task_error"], "p90_task_error": r["p90_task_error"],
                "makespan_error": r["makespan_error"], "mean_signed_task_error": r["mean_signed_task_error"],
                "measured_makespan_s": r["measured_makespan_s"], "predicted_makespan_s": r["predicted_makespan_s"],
            })
    return pd.DataFrame(rows)


def fidelity_points(results) -> pd.DataFrame:
    """Per-task predicted and measured latency of every (run, predictor), labelled with the plan and pair."""
    frames = [r.tasks.assign(plan=_label(r), pair=r.run.get("pair")) for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["predictor", "measured_s", "predicted_s", "plan", "pair"])


def fidelity_figure(run_ids=None, *, store=None, acceptance: str = "observed", results=None,
                    include_stage_times: bool = False):
    """Predicted vs measured latency per task (seaborn scatter), one panel per predictor; returns the Figure."""
    import seaborn as sns
    from matplotlib.figure import Figure

    results = results if results is not None else compare_runs(run_ids, store=store, acceptance=acceptance)
    data = fidelity_points(results)
    if not include_stage_times:
        data = data[data["predictor"] != STAGE_TIMES]
    predictors = list(dict.fromkeys(data["predictor"])) or ["(no runs)"]
    fig = Figure(figsize=(4.2 * len(predictors) + 2.0, 4.2), layout="constrained")
    axes = fig.subplots(1, len(predictors), squeeze=False)[0]
    hi = float(np.nanmax(data[["measured_s", "predicted_s"]].to_numpy())) * 1.05 if len(data) else 1.0
    line = np.linspace(0.0, hi, 2)
    for ax, name in zip(axes, predictors):
        part = data[data["predictor"] == name]
        ax.fill_between(line, line * (1 - TARGET_BAND), line * (1 + TARGET_BAND), color="0.9", label="±10%")
        ax.plot(line, line, color="0.4", lw=1)
        if len(part):
            sns.scatterplot(data=part, x="measured_s", y="predicted_s", hue="plan", style="pair", ax=ax, s=28)
        ax.set(xlim=(0, hi), ylim=(0, hi), title=name, xlabel="measured latency (s)", ylabel="predicted latency (s)")
        if ax.get_legend() is not None:
            if ax is axes[-1]:
                sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
            else:
                ax.get_legend().remove()
    return fig


def fidelity_report(run_ids=None, *, store=None, acceptance: str = "observed"):
    """(fidelity_table, fidelity_figure) over the same runs, replayed once."""
    results = compare_runs(run_ids, store=store, acceptance=acceptance)
    return fidelity_table(results=results), fidelity_figure(results=results)
