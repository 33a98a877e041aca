"""Fidelity results for reports: one table over every real run in the store, and a predicted-vs-measured figure.

>>> table, fig = fidelity_report()            # doctest: +SKIP
>>> fig.savefig("fidelity.png")               # doctest: +SKIP

``fidelity_table`` has one row per (run, predictor): pair, plan (batch sizes, l), tasks, load average at run time,
``noisy`` and ``foreign_work`` (:mod:`specedge.serve.quiet`), median and p90 per-task error, makespan error
(fractions), the KS statistic and p-value, and the measured makespan. :func:`write_fidelity_section` writes the
report's fidelity section: headline numbers over quiet runs only, per run, per plan (repeats and the noise floor,
prediction from the recorded acceptance) and rank fidelity (:mod:`specedge.fidelity.repeats`; its table, texts
and figure: :mod:`specedge.fidelity.rank_report`).
``fidelity_figure`` draws each task's predicted latency against the measured one, one panel per predictor, with the
y = x line and a ±10% band; every plan has its own colour (:func:`_plan_styles`), the marker tells the pairs apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge.fidelity.compare import STAGE_TIMES, compare_run
from specedge.report import palette
from specedge.fidelity.rank_report import (best_choice_text, rank_figure, rank_noise_text, rank_table,
                                           too_few_plans_note)

#: Relative band drawn around y = x in the figure (the issue's per-task target).
TARGET_BAND = 0.10
#: Smallest RGB distance (0-1 cube) between a spare-coloured plan's colour and any other colour in the figure.
MIN_COLOUR_DISTANCE = 0.2
#: Colours for plans without a policy colour of their own, in order: the report's non-policy colours
#: (:data:`specedge.report.palette.EXTRA_COLOURS` among them), then seaborn's "dark" and "colorblind" ones, new hues
#: first (none too light on white; policy colours and near ones are skipped).
SPARE_COLOURS = tuple(dict.fromkeys((
    "#3182bd", "#31a354", "#e6550d", "#555555", "#e7ba52", "#843c39", *palette.EXTRA_COLOURS,
    "#a23582", "#029e73", "#56b4e9", "#591e71", "#006374", "#8c0800", "#b8850a", "#001c7f", "#12711c", "#b1400d",
    "#592f0d", "#0173b2", "#de8f05", "#d55e00", "#cc78bc", "#ca9161")))
#: Plan markers: the first for every plan while the figure has colours enough, then one more per round of colours.
PLAN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _run_ids(store, run_ids):
    if run_ids is not None:
        return list(run_ids)
    return sorted(i.id for i in store.list() if i.kind == "run" and not i.metadata.get("online"))


def _label(result) -> str:
    """A plan's short name: its batch sizes ("4×6" when equal, else "10+14") and its speculation lengths."""
    plan = result.run["plan"]
    sizes = plan["batch_sizes"]
    ls = sorted(set(plan["speculation_length"]))
    batching = f"{len(sizes)}×{sizes[0]}" if len(set(sizes)) == 1 else "+".join(map(str, sizes))
    policy = result.run.get("policy")
    return f"{policy + ' · ' if policy else ''}{batching} l={','.join(map(str, ls))}"


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
                "temperature": res.run.get("temperature"), "load_1min": load[0],
                "noisy": res.run.get("noisy", True), "foreign_work": res.run.get("foreign_work"),
                "predictor": r["predictor"],
                "median_task_error": r["median_task_error"], "p90_task_error": r["p90_task_error"],
                "makespan_error": r["makespan_error"], "mean_signed_task_error": r["mean_signed_task_error"],
                "ks_statistic": r.get("ks_statistic"), "ks_pvalue": r.get("ks_pvalue"),
                "measured_makespan_s": r["measured_makespan_s"], "predicted_makespan_s": r["predicted_makespan_s"],
            })
    return pd.DataFrame(rows)


def online_table(store) -> pd.DataFrame:
    """One row per (online run, predictor): the online simulator against the real online runs in ``store``."""
    from specedge.fidelity.online_run import compare_online_run
    from specedge.traces.store import open_store

    store = store if hasattr(store, "list") else open_store(store)
    rows = []
    for info in store.list():
        if info.kind != "run" or not info.metadata.get("online"):
            continue
        res = compare_online_run(info.id, store=store)
        workload = res.run.get("workload") or {}
        for r in res.table.to_dict(orient="records"):
            rows.append({
                "run": res.run_id, "pair": res.run.get("pair"), "workload": workload.get("name"),
                "policy": res.run.get("policy"), "requests": res.run.get("num_tasks"),
                "noisy": res.run.get("noisy", True), "foreign_work": res.run.get("foreign_work"),
                "predictor": r["predictor"], "median_e2e_error": r["median_task_error"],
                "p90_e2e_error": r["p90_task_error"], "makespan_error": r["makespan_error"],
                "median_ttft_error": r.get("median_ttft_error"), "ks_pvalue": r.get("ks_pvalue"),
                "predicted_mean_batch": r.get("predicted_mean_batch_size"),
                "measured_mean_batch": r.get("measured_mean_batch_size"),
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

    from specedge.report.axes import wrap_title
    from specedge.report.figures import MAX_WIDTH_IN

    results = results if results is not None else compare_runs(run_ids, store=store, acceptance=acceptance)
    data = fidelity_points(results)
    if not include_stage_times:
        data = data[data["predictor"] != STAGE_TIMES]
    predictors = list(dict.fromkeys(data["predictor"])) or ["(no runs)"]
    styles = _plan_styles(results)
    colours = {lb: c for lb, (c, _) in styles.items()}
    # more plans than colours: each plan also gets its own marker (one legend entry per plan, colour + marker), which
    # takes the marker away from the pair; else the marker tells the pairs apart, as before
    by_marker = any(m != PLAN_MARKERS[0] for _, m in styles.values())
    fig = Figure(figsize=(min(3.2 * len(predictors) + 0.6, MAX_WIDTH_IN), 4.3), layout="constrained")
    axes = fig.subplots(1, len(predictors), squeeze=False, sharey=True)[0]
    # log-log: the pairs' latencies span two decades (stdlib about 1-11 s, SmolLM2 20-175 s); on linear axes
    # the faster pair's points collapse at the origin. The ±10 % band keeps a constant width on log axes.
    values = data[["measured_s", "predicted_s"]].to_numpy(dtype=float) if len(data) else np.array([[1.0]])
    values = values[np.isfinite(values) & (values > 0)]
    lo = float(values.min()) / 1.25 if values.size else 0.1
    hi = float(values.max()) * 1.25 if values.size else 1.0
    line = np.geomspace(lo, hi, 50)
    for ax, name in zip(axes, predictors):
        part = data[data["predictor"] == name]
        ax.fill_between(line, line * (1 - TARGET_BAND), line * (1 + TARGET_BAND), color="0.9", label="±10%")
        ax.plot(line, line, color="0.4", lw=1)
        if len(part):
            marks = ({"style": "plan", "markers": {lb: m for lb, (_, m) in styles.items()},
                      "style_order": list(styles)} if by_marker else {"style": "pair"})
            sns.scatterplot(data=part, x="measured_s", y="predicted_s", hue="plan", ax=ax, s=22,
                            palette=colours, hue_order=list(colours), legend=ax is axes[-1], **marks)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
               ylabel="predicted latency (s, log)" if ax is axes[0] else "")
        # seven panels (measured-probed added one): one-line titles such as "measured-contention" ran into the next
        ax.set_title(wrap_title(name, width=12), fontsize=10)
        ax.set_xlabel("measured (s, log)", fontsize=9)  # short: six panels' longer labels ran into each other
        if ax.get_legend() is not None:
            handles, labels = ax.get_legend_handles_labels()
            ax.get_legend().remove()
            fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False, fontsize=7.5)
    return fig


def _plan_styles(results) -> dict[str, tuple[str, str]]:
    """Plan label -> (colour, marker), no two plans alike. The first plan (in the report's policy order) that a
    policy made ("dp-refined · 10+14 l=4,5") keeps that policy's report-wide colour (:mod:`specedge.report.palette`);
    every other plan (a policy's second plan, "dp-refined · 1×8 l=1", or a hand-written one) takes the next of
    :data:`SPARE_COLOURS` that is no policy colour and lies at least MIN_COLOUR_DISTANCE from every colour already in
    the figure. Markers are :data:`PLAN_MARKERS`' first while colours last; past that the figure's colours repeat
    with the next marker, so every plan still has its own (colour, marker)."""
    from matplotlib.colors import to_rgb

    labels = palette.order(dict.fromkeys(_label(r) for r in results))
    known, policies = {}, set()
    for lb in labels:
        policy = palette.policy_of(lb)
        if " · " in lb and policy in palette.POLICY_STYLES and policy not in policies:
            known[lb] = palette.colour(lb)
            policies.add(policy)
    taken = {st.colour for st in palette.POLICY_STYLES.values()}
    used = [np.array(to_rgb(c)) for c in known.values()]
    spare = []  # spare colours not within MIN_COLOUR_DISTANCE of a colour already in the figure
    for c in SPARE_COLOURS:
        rgb = np.array(to_rgb(c))
        if c not in taken and c not in spare and all(np.linalg.norm(rgb - u) >= MIN_COLOUR_DISTANCE for u in used):
            spare.append(c)
            used.append(rgb)
    cycle = [*known.values(), *spare] or ["#555555"]
    ranked = [*known, *(lb for lb in labels if lb not in known)]  # the k-th: colour k mod n, marker k div n
    styles = {lb: (cycle[k % len(cycle)], PLAN_MARKERS[k // len(cycle) % len(PLAN_MARKERS)])
              for k, lb in enumerate(ranked)}
    return {lb: styles[lb] for lb in labels}


def _plan_colours(results) -> dict[str, str]:
    """Plan label -> colour of :func:`_plan_styles`."""
    return {lb: c for lb, (c, _) in _plan_styles(results).items()}


def fidelity_report(run_ids=None, *, store=None, acceptance: str = "observed"):
    """(fidelity_table, fidelity_figure) over the same runs, replayed once."""
    results = compare_runs(run_ids, store=store, acceptance=acceptance)
    return fidelity_table(results=results), fidelity_figure(results=results)


def headline(plans: pd.DataFrame) -> pd.DataFrame:
    """Per pair and session (compute grid), over the plans with a quiet repeat recorded soon enough after the grid
    (``runs_used == "fresh"``): the median and worst of each plan's median error of its best predictor (observed
    acceptance), of the makespan error, the noise floor and the recorded-acceptance makespan error. Plans measured
    only under noise or only with a stale grid are left out (and counted)."""
    rows = []
    if "session" not in plans:
        plans = plans.assign(session="", runs_used=np.where(plans["noisy"], "noisy", "fresh"))
    for (pair, session), part in plans.groupby(["pair", "session"], sort=True):
        quiet = part[part["runs_used"] == "fresh"]
        rows.append({"pair": pair, "session": session, "plans": len(part), "quiet_plans": len(quiet),
                     "median_task_error": quiet["median_task_error"].median(),
                     "worst_median_task_error": quiet["median_task_error"].max(),
                     "makespan_error": quiet["makespan_error"].median(),
                     "worst_makespan_error": quiet["makespan_error"].max(),
                     "task_spread": quiet["task_spread"].median(), "makespan_spread": quiet["makespan_spread"].median(),
                     "recorded_makespan_error": quiet["recorded_makespan_error"].median()})
    return pd.DataFrame(rows)


def predictor_table(study) -> pd.DataFrame:
    """Per pair, session and predictor, over the fresh quiet runs (not noisy, not stale): the median over runs of the
    median task error and of the makespan error, with ONE predictor for every run. The headline's "best predictor"
    is chosen per run after seeing its errors, so it is the optimistic view; this is the honest one."""
    rows = []
    for row in study.index.itertuples():
        if row.noisy or row.stale:
            continue
        table = study.results[row.run].table
        for t in table[table["predictor"] != STAGE_TIMES].itertuples():
            rows.append({"pair": row.pair, "session": row.session, "predictor": t.predictor, "run": row.run,
                         "median_task_error": t.median_task_error, "makespan_error": t.makespan_error})
    if not rows:
        return pd.DataFrame(columns=["pair", "session", "predictor", "runs", "median_task_error", "makespan_error"])
    out = (pd.DataFrame(rows).groupby(["pair", "session", "predictor"], sort=True)
           .agg(runs=("run", "size"), median_task_error=("median_task_error", "median"),
                makespan_error=("makespan_error", "median")).reset_index())
    return out


def write_fidelity_section(sec, store, stage=None, precomputed=None) -> None:
    """The report's fidelity section (:mod:`specedge.report.sections`): every run in ``store`` compared once
    (``precomputed``: :func:`specedge.fidelity.repeats.study_results` of ``store``, computed elsewhere)."""
    from specedge.fidelity.repeats import MAX_GRID_AGE_S, RANK_PREDICTOR, FidelityStudy
    from specedge.serve.quiet import FOREIGN_WORK_LIMIT

    study = FidelityStudy(store, precomputed=precomputed)
    if stage:
        stage(1, 1)
    results = list(study.results.values())
    plans = study.plan_rows()
    head = headline(plans)
    noisy = int(study.index["noisy"].sum())
    sec.text(f"Protocol: each run samples the node cores' foreign work (CPU time of other processes) before and "
             f"during the run; a run above {FOREIGN_WORK_LIMIT:.0%} on either core is **noisy**: listed, but left out "
             f"of the headline numbers. {noisy} of the {len(study.index)} runs in the store are noisy. A *session* "
             "is one compute grid and the runs measured with it; a run recorded more than "
             f"{MAX_GRID_AGE_S / 60:.0f} min after its grid is *stale* (the machine's speed drifts over hours) and "
             f"is left out the same way: {int(study.index['stale'].sum())} runs are stale. Predictors "
             "carry each node's host overhead per job, fitted on the pair's other quiet runs (else the run's own "
             "records).")
    if head["quiet_plans"].sum() == 0:
        sec.note("No quiet run in the store: every run was measured with other work on the node cores, so no "
                 "headline number is given. Re-measure with `scripts/measure_fidelity.py` on a quiet machine.")
    else:
        sec.table("fidelity-headline", head, title="Headline per session: fresh quiet runs only, best predictor",
                  caption="Medians over plans of each plan's median over its quiet repeats; spreads are the noise "
                          "floor (run-to-run, same plan); recorded = predicted before running from the pair's "
                          "recorded acceptance.")
        sec.table("fidelity-predictors", predictor_table(study),
                  title="One predictor for every run: median errors per pair, session and predictor (fresh quiet runs)",
                  caption="The headline takes each run's best predictor, chosen after seeing the run; here each "
                          "predictor is held to all runs of the session.")
    sec.table("fidelity-plans", plans.drop(columns=["run_ids", "plan_sha256", "schedule_sha256"]),
              title="Per plan: repeats, noise floor and errors (best predictor, median over quiet repeats)")
    rank = study.rank(RANK_PREDICTOR)
    ranks = rank_table(rank)
    sec.table("fidelity-rank", ranks,
              title=f"Rank fidelity ({RANK_PREDICTOR} predictor): Kendall τ of predicted vs measured makespans")
    for entry in rank:
        if entry["too_few_plans"]:
            sec.note(too_few_plans_note(entry))
        if "repeat_tau" in entry:
            sec.note(f"{entry['pair']}: {rank_noise_text(entry)}; repeat τ = the quiet repeats ranked against each "
                     "other, τ resolved = over the plan pairs whose repeats' makespan ranges do not overlap; perfect "
                     "predictor = one that knows each plan's median over all its repeats, scored against medians of "
                     "its repeats resampled with replacement.")
        if best_choice_text(entry):
            sec.note(f"{entry['pair']}: {best_choice_text(entry)}; regret = measured makespan of replay's best plan "
                     "/ the measured best's − 1; resolved = the two plans' repeats' makespan ranges do not overlap, so "
                     "an unresolved regret lies within the measurement's own run-to-run noise.")
    sec.figure("fidelity-rank", (rank_figure(rank), ranks), title="Rank fidelity: predicted vs measured makespan",
               caption="One row per plan, fastest measured on top: measured makespan (filled) and predicted (open), "
                       "medians over the plan's quiet repeats (× = measured only under noise), observed acceptance. "
                       "Ceiling: how often a perfect predictor reaches the target τ against medians of the plans' "
                       "repeats resampled with replacement.")
    sec.table("fidelity", fidelity_table(results=results), title="Predicted vs measured, per run and predictor")
    online = online_table(study.store)  # the study's snapshot of the store (fidelity.memo)
    if len(online):
        sec.table("fidelity-online", online, title="Real online runs predicted by the online simulator",
                  caption="Task error = per-request end-to-end latency (completion − arrival); the run's own arrivals "
                          "and accepted counts, compute predictors from the run's compute traces (docs/online.md).")
    sec.figure("fidelity", (fidelity_figure(results=results), fidelity_points(results)),
               title="Predicted vs measured task latency",
               caption="One panel per compute predictor; the grey band is ±10%. One colour per plan (a policy's "
                       "first plan in that policy's colour), one marker per pair (one per plan instead when the "
                       "plans outnumber the colours).")
