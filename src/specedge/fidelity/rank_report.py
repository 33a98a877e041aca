"""Rank fidelity in the report and the CLI: the rank table, its one-line texts (the measurement's own noise, the
ceiling, what replay's choice of best plan costs) and the predicted-vs-measured makespan figure, from the entries of
:meth:`specedge.fidelity.repeats.FidelityStudy.rank` (:mod:`specedge.fidelity.ranknoise` computes the numbers).
:mod:`specedge.fidelity.report` re-exports every name here."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rank_table(rank: list[dict]) -> pd.DataFrame:
    """One row per (pair, plan) of :meth:`FidelityStudy.rank` (a plan = a schedule, its runs pooled over the
    policies that produced it), with the pair's number of distinct plans, τ and same-best verdict, the rank's own
    noise (:data:`RANK_NOISE_COLUMNS`) and what replay's choice of best costs (:data:`BEST_CHOICE_COLUMNS`)."""
    rows = []
    for entry in rank:
        for p in entry["plans"]:
            rows.append({"pair": entry["pair"], "session": entry.get("session"), "plan": p["policy"],
                         "runs": len(p["run_ids"]),
                         "distinct_plans": entry["distinct_plans"],
                         "noisy": p["noisy"], "predicted_makespan_s": p["predicted_makespan_s"],
                         "measured_makespan_s": p["measured_makespan_s"],
                         "predicted_from_recorded_acceptance_s": p["predicted_from_recorded_acceptance_s"],
                         "kendall_tau": entry["kendall_tau"], "same_best": entry["same_best"],
                         "kendall_tau_recorded_acceptance": entry["kendall_tau_recorded_acceptance"],
                         **{k: entry.get(k) for k in RANK_NOISE_COLUMNS},
                         **{k: entry.get(k) for k in BEST_CHOICE_COLUMNS}})
    return pd.DataFrame(rows)


#: The rank's own noise (:mod:`specedge.fidelity.ranknoise`) in the rank table, one value per pair.
RANK_NOISE_COLUMNS = ("repeat_tau", "kendall_tau_resolved", "resolved_pairs", "discordant_resolved",
                      "unresolved_pairs", "tau_ceiling_median", "p_tau_at_least_target")
#: What replay's choice of best plan costs (:func:`specedge.fidelity.ranknoise.best_choice`), one value per pair.
BEST_CHOICE_COLUMNS = ("predicted_best", "measured_best", "regret", "best_gap", "best_resolved", "regret_resolved")
_JUDGED = {True: "resolved", False: "unresolved", None: "not judged: a plan has < 2 quiet repeats"}


def regret_text(entry: dict) -> str:
    """The regret in short (the text output's title clause): "regret 3.2 % (unresolved by the repeats)", the
    measured cost of choosing replay's best plan and whether the repeats resolve that choice from the measured best
    ("regret 0.0 %" when replay's best is the measured best); empty for an entry without it."""
    if entry.get("regret") is None:
        return ""
    text = f"regret {100 * entry['regret']:.1f} %"
    if entry["predicted_best"] == entry["measured_best"]:
        return text
    res = entry["regret_resolved"]
    return text + f" ({_JUDGED[res]}{'' if res is None else ' by the repeats'})"


def best_choice_text(entry: dict) -> str:
    """One sentence of what replay's choice of best plan costs (the report's note): replay's best and the measured
    best, the regret (:func:`regret_text`), and how far apart the measured best and runner-up lie and whether the
    repeats resolve them; empty for an entry without it."""
    if entry.get("regret") is None:
        return ""
    pb, mb = entry["predicted_best"], entry["measured_best"]
    head = f"replay's best {pb} is the measured best" if pb == mb else f"replay's best {pb}, measured best {mb}"
    gap = entry.get("best_gap")
    return f"{head}: {regret_text(entry)}" + ("" if gap is None else f"; best vs runner-up {100 * gap:.1f} % apart "
                                                                     f"({_JUDGED[entry['best_resolved']]})")


def rank_noise_text(entry: dict) -> str:
    """One line of a rank entry's own noise: repeat τ (the measurement against itself) and τ over the plan pairs
    the measurement resolves (empty for an entry without them); then, where the entry has it, the rank target's
    ceiling (how often a perfect predictor reaches the target τ against this measurement)."""
    from specedge.fidelity.ranknoise import RANK_TARGET_TAU

    if "repeat_tau" not in entry:
        return ""
    rep, res = entry["repeat_tau"], entry["kendall_tau_resolved"]
    p = entry.get("p_tau_at_least_target")
    return (f"repeat τ {'n/a' if rep is None else f'{rep:.2f}'}, τ resolved "
            f"{'n/a' if res is None else f'{res:.2f}'} ({entry['resolved_pairs']} pairs resolved, "
            f"{entry['discordant_resolved']} discordant, {entry['unresolved_pairs']} unresolved)"
            + ("" if p is None else f"; a perfect predictor reaches τ ≥ {RANK_TARGET_TAU:g} in {100 * p:.0f} % of "
               "resamples"))


def ceiling_text(entry: dict) -> str:
    """The rank target's ceiling in short (a panel title's line): "ceiling: τ ≥ 0.9 in 44 % of resamples", how often
    a perfect predictor reaches the target τ against this measurement; empty for an entry without it."""
    from specedge.fidelity.ranknoise import RANK_TARGET_TAU

    p = entry.get("p_tau_at_least_target")
    return "" if p is None else f"ceiling: τ ≥ {RANK_TARGET_TAU:g} in {100 * p:.0f} % of resamples"


def too_few_plans_note(entry: dict) -> str:
    """One line for a rank-fidelity entry with fewer distinct plans (schedules) than the issue asks for."""
    from specedge.fidelity.repeats import MIN_DISTINCT_PLANS

    pooled = [p["policy"] for p in entry["plans"] if " = " in p["policy"]]
    return (f"{entry['pair']}: only {entry['distinct_plans']} distinct plans (at least {MIN_DISTINCT_PLANS} "
            "wanted); runs of one schedule from several policies count once"
            + (f" ({'; '.join(pooled)})" if pooled else "")
            + ". `scripts/measure_fidelity.py --extra-plans` measures more.")


def rank_figure(rank: list[dict]):
    """Per pair, one row per plan (fastest measured on top): its measured makespan (filled) and its predicted one
    (open, median over repeats), joined by a line. Rank fidelity is whether the open markers keep the filled ones'
    order; plan names are the y tick labels, so no label can cover another. Titles end with the rank's own noise
    (repeat τ, τ resolved) and the rank target's ceiling (:func:`ceiling_text`) where the entry has them."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from specedge.report.axes import wrap_title
    from specedge.report.figures import MAX_WIDTH_IN

    n = max(len(rank), 1)
    rows = max([len(e["plans"]) for e in rank] or [1])
    height_in = 1.2 + 0.36 * rows + 0.16 * any(ceiling_text(e) for e in rank)  # + the ceiling's title line
    fig = Figure(figsize=(min(4.6 * n + 0.4, MAX_WIDTH_IN), height_in), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, entry in zip(axes, rank):
        plans = sorted(entry["plans"], key=lambda p: p["measured_makespan_s"])
        y = np.arange(len(plans))
        meas = np.array([p["measured_makespan_s"] for p in plans])
        pred = np.array([p["predicted_makespan_s"] for p in plans])
        ax.hlines(y, np.minimum(meas, pred), np.maximum(meas, pred), color="0.7", lw=1.5)
        ax.scatter(meas, y, color="0.15", s=30, zorder=3)
        ax.scatter(pred, y, facecolor="none", edgecolor="#3182bd", linewidth=1.5, s=34, zorder=4)
        ax.set_yticks(y, [p["policy"] + (" ×" if p["noisy"] else "") for p in plans], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0.0, max(meas.max(), pred.max()) * 1.08)
        ax.set_xlabel("makespan (s)", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="0.9")
        tau = entry["kendall_tau"]
        session = f" (grid {entry['session']})" if entry.get("session") else ""
        ax.set_title(f"{wrap_title(entry['pair'] + session, width=48, max_lines=2)}\nKendall τ = "
                     f"{'n/a' if tau is None else f'{tau:.2f}'}, same best: {'yes' if entry['same_best'] else 'no'}"
                     + (f"\n{rank_noise_text(entry).split(' (')[0]}" if "repeat_tau" in entry else "")
                     + (f"\n{wrap_title(ceiling_text(entry), width=48, max_lines=2)}" if ceiling_text(entry) else ""),
                     fontsize=9)
    handles = [Line2D([], [], marker="o", ls="", color="0.15", label="measured (median over repeats)"),
               Line2D([], [], marker="o", ls="", markerfacecolor="none", markeredgecolor="#3182bd",
                      label="predicted, observed acceptance")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    return fig
