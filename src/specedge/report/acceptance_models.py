"""Section 7: the acceptance-model ladder — how wrong each simpler acceptance model is.

For every acceptance dataset in the store, the same plans are replayed with three models of that dataset:

- (a) ``a-iid``: one scalar i.i.d. α fitted to the trace (the α whose L(d, α) = (1 − α^(d+1)) / (1 − α) equals
  the trace's τ at its most common draft length d; ``AcceptanceStats.alpha``), rounds sampled with
  P(G ≥ i) = α^i — the model the edge-SD literature plans with [P];
- (b) ``b-per-position``: the trace's conditional α_i, rounds sampled independently
  (:class:`~specedge.latency.acceptance_positional.PositionalAcceptance`);
- (c) ``c-trace``: the recorded rounds replayed in order, each task one recorded request (the reference).

All three extrapolate beyond the recorded draft length with the trace's α_tail (< 1, supported by
:data:`~specedge.latency.acceptance_tail.TAIL_MIN_ROUNDS` rounds; rung a with its own α).

The plans [A]: the scenario is :data:`LADDER_PRESET` with its default pair, :data:`LADDER_TASKS` tasks of seed
:data:`LADDER_SEED` — the dataset's acceptance applied to that pair, whatever pair recorded it; the batching and
bandwidth are :data:`LADDER_POLICY`'s plan for the trace scenario; the speculation length is swept over
:data:`LADDER_L_VALUES` (every batch the same l). Each (model, l) is replayed :data:`LADDER_REPLICATIONS` times
(seeded; the mean makespan M_model(l)).

Errors, per dataset and model m ∈ {a, b}:

- makespan error at l: e_m(l) = M_m(l) / M_c(l) − 1 (reported at l*_c and as the largest |e_m(l)| over l);
- chosen speculation length: l*_m = argmin_l M_m(l) against l*_c = argmin_l M_c(l);
- regret of planning with m: M_c(l*_m) / M_c(l*_c) − 1 (what choosing l with model m costs on the trace).

Monte Carlo noise: ``trace_ci95_pct`` is the 95% half-width of M_c(l*_c) relative to its mean; an error smaller
than that is not distinguishable from noise at this replication count.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from specedge.latency.acceptance import IIDAcceptance
from specedge.latency.acceptance_positional import PositionalAcceptance

MODEL_IID, MODEL_POSITIONAL, MODEL_TRACE = "a-iid", "b-per-position", "c-trace"
#: Colours of the acceptance models: none is a policy colour of :mod:`specedge.report.palette` (the figures hold
#: one policy, :data:`LADDER_POLICY`; a red or blue model would read as dp-refined or paper-dp elsewhere).
MODEL_COLOURS = {"a-iid": "#843c39", "b-per-position": "#e7ba52", "c-trace": "#333333"}
MODELS = (MODEL_IID, MODEL_POSITIONAL, MODEL_TRACE)
#: Scenario preset of the ladder's plans [A].
LADDER_PRESET = "paper"
#: Tasks per scenario [A]: enough for several batches, few enough for the report's time budget.
LADDER_TASKS = 16
#: Replications per (model, l) [A].
LADDER_REPLICATIONS = 16
#: Speculation lengths swept (the paper's range) [P].
LADDER_L_VALUES = tuple(range(1, 11))
#: Policy whose batching and bandwidth every plan of a dataset shares [A].
LADDER_POLICY = "paper-dp"
#: Panels of the makespan-against-l figure (datasets with the largest error of rung a).
CURVE_PANELS = 6
#: Task and replay seed [A].
LADDER_SEED = 0


def ladder_sources(trace_source) -> dict[str, object]:
    """The three rungs for a recorded source: (a) scalar i.i.d. at its fitted α, (b) per-position, (c) itself."""
    st = trace_source.stats
    return {MODEL_IID: IIDAcceptance(min(float(st.alpha), float(np.nextafter(1.0, 0.0)))),
            MODEL_POSITIONAL: PositionalAcceptance.from_stats(st),
            MODEL_TRACE: trace_source}


def _half_width(values: np.ndarray) -> float:
    from specedge.replay import ci95_half_width

    return ci95_half_width(values)


def dataset_ladder(dataset_id: str, *, store=None, preset: str = LADDER_PRESET, tasks: int = LADDER_TASKS,
                   replications: int = LADDER_REPLICATIONS, l_values=LADDER_L_VALUES, seed: int = LADDER_SEED,
                   policy: str = LADDER_POLICY) -> pd.DataFrame:
    """Makespan of every (model, l) for one dataset: columns dataset, model, l, makespan_s, makespan_ci95_s,
    error (M_m(l) / M_c(l) − 1), extrapolated (l beyond the recorded draft length), pair, batches."""
    from specedge.policies import optimize
    from specedge.replay import evaluate
    from specedge.scenario import Scenario

    sc = Scenario.from_preset(preset, tasks=tasks, seed=seed, acceptance=dataset_id, store=store)
    base = optimize(sc, policy)
    rows = []
    for model, source in ladder_sources(sc.acceptance).items():
        sc_m = dataclasses.replace(sc, acceptance=source, alpha=float(source.stats.alpha))
        for l in l_values:
            plan = dataclasses.replace(base, speculation_length=(int(l),) * len(base.batches))
            runs = np.array([r.makespan_s for r in evaluate(sc_m, plan, replications=replications, seed=seed).runs])
            rows.append({"dataset": dataset_id, "model": model, "l": int(l), "makespan_s": float(runs.mean()),
                         "makespan_ci95_s": _half_width(runs)})
    out = pd.DataFrame(rows)
    ref = out[out["model"] == MODEL_TRACE].set_index("l")["makespan_s"]
    out["error"] = out["makespan_s"] / out["l"].map(ref) - 1.0
    out["extrapolated"] = out["l"] > int(sc.acceptance_stats.max_drafted or 0)
    out["pair"] = sc.pair
    out["batches"] = len(base.batches)
    return out


def summarise(curves: pd.DataFrame, stats_by_dataset: dict[str, dict]) -> pd.DataFrame:
    """One row per (dataset, model a or b): chosen l, regret, makespan errors (see the module doc)."""
    rows = []
    for name, part in curves.groupby("dataset", sort=False):
        by_model = {m: p.set_index("l") for m, p in part.groupby("model")}
        trace = by_model[MODEL_TRACE]
        l_c = int(trace["makespan_s"].idxmin())
        m_c = float(trace.loc[l_c, "makespan_s"])
        for model in (MODEL_IID, MODEL_POSITIONAL):
            cur = by_model[model]
            l_m = int(cur["makespan_s"].idxmin())
            rows.append({
                "dataset": name, "model": model, **stats_by_dataset.get(name, {}),
                "l_opt_model": l_m, "l_opt_trace": l_c, "l_opt_difference": l_m - l_c,
                "regret_pct": 100.0 * (float(trace.loc[l_m, "makespan_s"]) / m_c - 1.0),
                "makespan_error_at_l_opt_trace_pct": 100.0 * float(cur.loc[l_c, "error"]),
                "max_abs_makespan_error_pct": 100.0 * float(cur["error"].abs().max()),
                "predicted_makespan_at_l_opt_model_s": float(cur.loc[l_m, "makespan_s"]),
                "trace_makespan_at_l_opt_trace_s": m_c,
                "trace_ci95_pct": 100.0 * float(trace.loc[l_c, "makespan_ci95_s"]) / m_c,
                "pair": str(part["pair"].iloc[0]), "batches": int(part["batches"].iloc[0]),
            })
    return pd.DataFrame(rows)


def ladder(dataset_ids, *, store=None, progress=None, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, curves) for the given acceptance datasets (see :func:`dataset_ladder`, :func:`summarise`)."""
    from specedge.scenario import Scenario

    curves, stats_by = [], {}
    for n, ds in enumerate(dataset_ids):
        c = dataset_ladder(ds, store=store, **kw)
        st = Scenario.from_preset(kw.get("preset", LADDER_PRESET), tasks=1, acceptance=ds, store=store)
        s = st.acceptance_stats
        stats_by[ds] = {"tau": s.tau, "alpha_fitted": s.alpha, "alpha_tail": s.alpha_tail,
                        "alpha_tail_rounds": s.tail.rounds if s.tail is not None else None,
                        "max_drafted": s.max_drafted}
        curves.append(c)
        if progress:
            progress(n + 1, len(dataset_ids))
    curves = pd.concat(curves, ignore_index=True)
    return summarise(curves, stats_by), curves


def figure(summary: pd.DataFrame, curves: pd.DataFrame):
    """Left: makespan error of (a) and (b) at the trace's best l; right: the l each model chooses."""
    from specedge.report.figures import MAX_WIDTH_IN, _setup

    plt, sns = _setup()
    order = summary.drop_duplicates("dataset").sort_values("tau")["dataset"].tolist()
    err = summary[["dataset", "model", "makespan_error_at_l_opt_trace_pct", "regret_pct"]]
    chosen = pd.concat([
        summary[["dataset", "model", "l_opt_model"]].rename(columns={"l_opt_model": "l_opt"}),
        summary.drop_duplicates("dataset")[["dataset", "l_opt_trace"]].rename(columns={"l_opt_trace": "l_opt"})
        .assign(model=MODEL_TRACE)], ignore_index=True)
    data = err.merge(chosen, on=["dataset", "model"], how="outer")
    height = max(3.5, 0.3 * len(order) + 1.4)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, height), sharey=True,
                                   gridspec_kw={"width_ratios": [1.4, 1.0]})
    palette = MODEL_COLOURS
    sns.barplot(err, y="dataset", x="makespan_error_at_l_opt_trace_pct", hue="model", order=order,
                hue_order=[MODEL_IID, MODEL_POSITIONAL], palette=palette, ax=ax1, orient="h")
    ax1.axvline(0, color="black", lw=0.8)
    noise = summary.drop_duplicates("dataset").set_index("dataset").loc[order, "trace_ci95_pct"].to_numpy()
    ax1.errorbar(np.zeros(len(order)), np.arange(len(order)), xerr=noise, fmt="none", ecolor="#888888",
                 elinewidth=5, alpha=0.45, capsize=0, zorder=0, label="±95% noise of the trace replay")
    ax1.set_xlabel("makespan error vs trace replay\nat the trace's best l (%)", fontsize=9)
    ax1.set_ylabel("")
    ax1.tick_params(axis="y", labelsize=8)
    ax1.tick_params(axis="x", labelsize=8)
    ax1.legend(title="", fontsize=7.5, loc="lower left")
    markers = {MODEL_IID: "s", MODEL_POSITIONAL: "^", MODEL_TRACE: "o"}
    offsets = {MODEL_IID: -0.22, MODEL_POSITIONAL: 0.0, MODEL_TRACE: 0.22}
    ypos = {d: i for i, d in enumerate(order)}
    for model in (MODEL_TRACE, MODEL_IID, MODEL_POSITIONAL):
        sub = chosen[chosen["model"] == model]
        ax2.scatter(sub["l_opt"], sub["dataset"].map(ypos) + offsets[model], marker=markers[model],
                    color=palette[model], edgecolor="black", lw=0.4, label=model, s=28, zorder=3)
    ax2.set_xlabel(f"speculation length l* chosen\n(argmin of mean makespan, policy {LADDER_POLICY})", fontsize=9)
    ax2.set_xticks(list(LADDER_L_VALUES))
    ax2.tick_params(axis="x", labelsize=8)
    ax2.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    ax2.grid(True, axis="x", alpha=0.5)
    fig.tight_layout()
    return fig, data


def curves_figure(curves: pd.DataFrame, datasets):
    """Mean makespan against l under each model, one panel per dataset (the datasets the summary flags)."""
    from specedge.report.figures import _facets, _panels, _setup

    plt, sns = _setup()
    data = curves[curves["dataset"].isin(list(datasets))]
    titles = _panels(pd.Series(list(datasets)))
    fig, axes = _facets(plt, len(datasets), ncols=3, sharey=False)
    palette = MODEL_COLOURS
    for n, (ax, name, title) in enumerate(zip(axes, datasets, titles)):
        sub = data[data["dataset"] == name]
        for model in MODELS:
            m = sub[sub["model"] == model]
            ax.errorbar(m["l"], m["makespan_s"], yerr=m["makespan_ci95_s"], marker="o", ms=3, lw=1.2, capsize=2,
                        color=palette[model], label=model)
        ext = sub.loc[sub["extrapolated"], "l"]
        if not ext.empty:
            ax.axvspan(ext.min() - 0.5, ext.max() + 0.5, color="#dddddd", alpha=0.5, lw=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("speculation length l")
        ax.set_ylabel("mean makespan (s)")
        if n == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, data.reset_index(drop=True)


def section(ctx) -> None:
    """Section 7 of the report: the ladder for every acceptance dataset in the store."""
    from specedge.traces.store import open_store

    sec = ctx.report.section(
        "acceptance-models", "Acceptance models: how wrong is one α?",
        "Every acceptance dataset's plans replayed with (a) one scalar i.i.d. α fitted to the trace (what edge-SD "
        "planners assume), (b) the trace's per-position conditional α_i with rounds independent, and (c) the "
        "recorded rounds themselves. Same scenario, batching and bandwidth for all three "
        f"(`{LADDER_POLICY}` on the `{LADDER_PRESET}` preset, K = {LADDER_TASKS}); l swept over "
        f"{LADDER_L_VALUES[0]}–{LADDER_L_VALUES[-1]} with every batch at the same l; {LADDER_REPLICATIONS} seeded "
        "replications per point. Error = M_model(l) / M_trace(l) − 1; regret = M_trace(l*_model) / M_trace(l*_trace) "
        "− 1, the cost of choosing l with the simpler model. Each dataset's acceptance drives the preset's model "
        "pair, not the pair that recorded it; beyond a dataset's recorded draft length all three extrapolate "
        "with its α_tail.",
    )
    infos = [i for i in open_store(ctx.store).list() if i.kind in ("acceptance", "aggregate")]
    if not infos:
        sec.note("The trace store holds no acceptance dataset, so there is no ladder.")
        return
    stage = ctx.stages.stage("7. acceptance models", len(infos))
    summary, curves = ladder([i.id for i in infos], store=ctx.store, progress=stage)
    provenance = {i.id: i.source for i in infos}
    summary.insert(1, "source", summary["dataset"].map(provenance))
    sec.table("acceptance-models", summary, title="Error of the simpler acceptance models against trace replay",
              caption="Per dataset and model: `l_opt_model` / `l_opt_trace` the speculation length each chooses; "
                      "`regret_pct` what the model's choice costs on the trace; `makespan_error_at_l_opt_trace_pct` "
                      "and `max_abs_makespan_error_pct` the makespan error; `trace_ci95_pct` the Monte Carlo noise "
                      "of the reference. `alpha_fitted` is rung a's α (fitted), `alpha_tail_rounds` the rounds "
                      "behind α_tail.")
    sec.table("acceptance-models-curves", curves, title="Makespan by speculation length and model",
              caption="`extrapolated`: l beyond the dataset's recorded draft length (acceptance there is the "
                      "α_tail extrapolation).")
    sec.figure("acceptance-models", figure(summary, curves), title="Makespan error and chosen l, per dataset",
               caption="Datasets ordered by τ (top: weakest drafter). Left: error of (a) and (b) at the l that is "
                       "best under trace replay; the grey band is the 95% Monte Carlo half-width of the reference, "
                       "so bars inside it are noise. Right: the l each model picks; where (a)'s square leaves the "
                       "trace's circle, planning with one α picks another l.")
    worst = (summary[summary["model"] == MODEL_IID].assign(err=lambda f: f["max_abs_makespan_error_pct"])
             .sort_values("err", ascending=False)["dataset"].head(CURVE_PANELS).tolist())
    sec.figure("acceptance-models-curves", curves_figure(curves, worst),
               title=f"Makespan against l: the {len(worst)} datasets where one α errs most",
               caption="Mean makespan with its 95% interval under each model. Shaded: l beyond the recorded draft "
                       "length (every model extrapolates with α_tail there).")
