"""The report's sections, each filling a :class:`~specedge.report.document.Section` from computed data.

1. policy comparison (a sweep grid with Monte Carlo replications), 2. the paper's figure sweeps, 3. the paper's
headline numbers against specedge's (:mod:`specedge.experiments`), 4. the traces (acceptance statistics, the
i.i.d. fit, compute fits), 5. the optimizer (optimality gap against the oracle, asv results), 6. fidelity (replay
against the real serving runs in the store, :mod:`specedge.fidelity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from specedge.report import figures, tables
from specedge.report.config import ReportConfig
from specedge.report.document import Report

#: Metrics summarised in the policy comparison.
COMPARISON_METRICS = ("makespan_s", "mean_latency_s", "p99_latency_s", "ttft_s", "tpot_s", "speculation_length",
                      "num_batches")
#: Acceptance datasets shown in the per-dataset trace figures (all are in the tables).
DEFAULT_MAX_TRACE_PANELS = 16

INTERVALS = (
    "Intervals are 95% Student-t intervals of the mean over seeds: each seed draws a new task set (input and "
    "output lengths, user positions) and, for sampled acceptance (`iid` or a trace), new acceptance draws; with "
    "`replications` > 1 a cell first averages that many acceptance draws on its task set. Reductions are paired: "
    "each seed's policy is compared with the same seed's baseline on the same tasks. `expected` acceptance is "
    "deterministic (every round commits L(l, α) tokens), so its interval reflects only the task draw."
)


@dataclass
class Context:
    report: Report
    cfg: ReportConfig
    store: str | None
    workers: int
    stages: Any
    pool: Any = None
    #: work started early in the pool, by section name (the fidelity study, computed while earlier sections write)
    futures: dict = field(default_factory=dict)


def _ok(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["status"] == "ok"].copy()


def _in_grid_order(frame: pd.DataFrame, pairs) -> pd.DataFrame:
    """Rows ordered by the grid's pair order (figures draw panels in the order the pairs first appear)."""
    rank = {p: i for i, p in enumerate(pairs)}
    return frame.sort_values("pair", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)


def _errors(section, name: str, cells: pd.DataFrame) -> None:
    bad = cells[cells["status"] != "ok"]
    if bad.empty:
        return
    errs = (bad.groupby(["pair", "acceptance", "policy", "error"], dropna=False).size().rename("cells")
            .reset_index())
    section.note(f"{len(bad)} of {len(cells)} cells could not be evaluated (the policy or the scenario refused "
                 "them); they are left out of the figures and listed below.")
    section.table(name, errs, title="Cells that could not be evaluated")


def _extrapolation(section, name: str, ok: pd.DataFrame) -> None:
    """A note and a table when some cells replayed rounds beyond their trace's recorded draft length (replay then
    extrapolates acceptance from the trace's α tail; the CLI warns about the same thing)."""
    if "extrapolated_rounds" not in ok.columns:
        return
    hit = ok[ok["extrapolated_rounds"] > 0]
    if hit.empty:
        return
    per = (hit.groupby(["pair", "acceptance", "policy"], dropna=False)
           .agg(cells=("extrapolated_rounds", "size"), extrapolated_rounds=("extrapolated_rounds", "sum"))
           .reset_index())
    section.note(f"{len(hit)} of {len(ok)} cells replayed {int(hit['extrapolated_rounds'].sum()):,} round(s) beyond "
                 "the recorded draft length of their trace: there, acceptance is extrapolated from the trace's α "
                 "tail, not replayed. The table lists them.")
    section.table(name, per, title="Cells with extrapolated rounds")


def _acceptance_provenance(store: str | None, acceptance: list[str]) -> pd.DataFrame:
    from specedge.traces.store import open_store

    st = open_store(store)
    rows = []
    for acc in acceptance:
        if acc == "expected":
            rows.append({"acceptance": acc, "provenance": "model: i.i.d. α, in expectation (the paper's planning "
                         "assumption)", "draft_model": "", "target_model": ""})
        elif acc == "iid":
            rows.append({"acceptance": acc, "provenance": "model: i.i.d. α, sampled round by round",
                         "draft_model": "", "target_model": ""})
        else:
            info = st.info(acc)
            rows.append({"acceptance": acc, "provenance": tables.provenance(info.source),
                         "draft_model": info.metadata.get("draft_model", ""),
                         "target_model": info.metadata.get("target_model", "")})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- section 1
def comparison(ctx: Context, cells: pd.DataFrame) -> None:
    from specedge.report import front

    front.summary(ctx, cells)  # the page opens with the policy × pair summary and the assumptions
    grid = ctx.cfg.comparison
    sec = ctx.report.section(
        "comparison", "Policy comparison",
        f"Every policy on the same scenarios: preset(s) {', '.join(grid.presets)}, model pairs "
        f"{', '.join(grid.pairs)}, {len(grid.seeds)} seed(s), {grid.replications} replication(s) per cell, fixed "
        + ", ".join(f"`{k} = {v}`" for k, v in grid.fixed) + ". "
        "Each cell asks the policy for a plan (`specedge.optimize`) and replays it (`specedge.evaluate`); the "
        "makespan is the completion of the last task, the per-task latency runs from time 0 (all requests issue "
        "together) to the task's last token, and time to first token includes the upload.\n\n" + INTERVALS,
    )
    from specedge.policies import available_policies

    left_out = sorted(set(available_policies()) - set(grid.policies))
    if left_out:
        sec.text("Policies available but not in this grid: " + ", ".join(f"`{p}`" for p in left_out)
                 + " (the oracle is exhaustive search, see the optimizer section; add any of them with `--config`).")
    acceptance = sorted(cells["acceptance"].unique(), key=lambda a: (a not in ("expected", "iid"), a))
    sec.table("comparison-acceptance-sources", _acceptance_provenance(ctx.store, acceptance),
              title="Acceptance sources", caption="Where each acceptance source's numbers come from.")
    _errors(sec, "comparison-errors", cells)
    ok = _ok(cells)
    if ok.empty:
        sec.note("No cell of the comparison could be evaluated; see the errors above.")
        return
    _extrapolation(sec, "comparison-extrapolation", ok)
    by = ["preset", "pair", "acceptance", "policy"]
    summary = _in_grid_order(tables.summarise(ok, by, COMPARISON_METRICS), grid.pairs)
    # figures first, the raw tables (hundreds of rows) after them as downloads
    shown = [a for a in acceptance if a in ("expected", "iid")]
    from specedge.traces.store import open_store

    st = open_store(ctx.store)
    recorded = [a for a in acceptance if a not in ("expected", "iid") and st.info(a).source == "recorded"]
    shown += recorded[:2] or [a for a in acceptance if a not in shown][:2]  # four markers a row stay apart
    for preset, part in summary.groupby("preset", sort=True):
        sec.figure(f"comparison-makespan-{preset}", figures.policy_bars(part, "makespan_s", shown),
                   title=f"Makespan by policy ({preset} preset)",
                   caption="Mean makespan (dot) with its 95% interval (line), one colour per policy as in every "
                           "figure of this report, one marker per acceptance source: the model-based sources and up "
                           "to two recorded traces (every source is in the tables and the heatmaps). The axis is "
                           "logarithmic when the policies span decades.")
        sec.figure(f"comparison-mean-latency-{preset}", figures.policy_bars(part, "mean_latency_s", shown),
                   title=f"Mean task latency by policy ({preset} preset)")
    reductions = []
    for baseline in ctx.cfg.baselines:
        red = _in_grid_order(pd.concat(
            [tables.paired_reduction(ok, ["preset", "pair", "acceptance"], m, baseline).assign(metric=m)
             for m in ("makespan_s", "mean_latency_s", "p99_latency_s", "ttft_s")], ignore_index=True), grid.pairs)
        if red.empty:
            continue
        reductions.append((baseline, red))
        sec.figure(f"comparison-reduction-vs-{baseline}",
                   figures.reduction_heatmap(red[red["metric"] == "makespan_s"], baseline),
                   title=f"Makespan reduction against {baseline} (%)",
                   caption=f"Each cell: mean paired reduction of the makespan against {baseline} for one model "
                           "pair and acceptance source. Blue: faster than the baseline.")
    sec.table("comparison-summary", summary, title="Makespan, mean and p99 latency, time to first token",
              caption="Mean over seeds with the 95% interval (`_low`, `_high`); seconds.")
    for baseline, red in reductions:
        sec.table(f"comparison-reduction-vs-{baseline}", red, title=f"Reduction against {baseline}",
                  caption=f"1 − policy / {baseline}, paired by seed (positive: the policy is faster than "
                          f"{baseline}); mean and 95% interval.")


# ---------------------------------------------------------------------------------------------- section 2
def sweeps(ctx: Context, results: list) -> None:
    sec = ctx.report.section(
        "sweeps", "The paper's figure sweeps",
        "Each figure sweeps one quantity of the paper's setting with the others fixed, and replays every policy "
        "that the comparison in the paper involves. Lines are means over seeds, bands their 95% intervals.",
    )
    for spec, cells in results:
        grid = spec.grid
        _errors(sec, f"sweep-{spec.name}-errors", cells)
        ok = _ok(cells)
        if ok.empty:
            sec.note(f"{spec.title}: no cell could be evaluated.")
            continue
        _extrapolation(sec, f"sweep-{spec.name}-extrapolation", ok)
        axes = [k for k, _ in grid.axes]
        summary = _in_grid_order(tables.summarise(ok, ["pair", "acceptance", "policy", *axes], [spec.metric]),
                                 grid.pairs)
        series = summary["policy"].astype(str)
        if summary["acceptance"].nunique() > 1:
            series = series + " · " + summary["acceptance"].astype(str)
        for other in (a for a in axes if a != spec.x):
            series = series + f" · {other}=" + summary[other].astype(str)
        summary.insert(0, "series", series)
        fixed = ", ".join(f"`{k} = {v}`" for k, v in grid.fixed)
        caption = (spec.caption + " " if spec.caption else "") + (
            f"Fixed: {fixed}. " if fixed else "") + f"{len(grid.seeds)} seed(s) per point."
        sec.figure(f"sweep-{spec.name}",
                   figures.sweep_lines(summary, spec.x, spec.metric, hue="series", col="pair",
                                       x_scale=spec.x_scale, x_label=spec.x_label or None),
                   title=spec.title, caption=caption)


# ---------------------------------------------------------------------------------------------- section 4
def traces(ctx: Context) -> None:
    from specedge.traces.store import open_store

    st = open_store(ctx.store)
    infos = st.list()
    sec = ctx.report.section(
        "traces", "The traces",
        "What the replays above were driven by. τ (mean tokens per round) = 1 + mean accepted (Spec-Bench's "
        "'mean accepted tokens'); m (draft acceptance ratio) = Σ accepted / Σ drafted (vLLM's 'draft acceptance "
        "rate'); survival S(i) = P(accepted ≥ i) (vLLM's 'per-position acceptance'); conditional α_i = "
        "S(i)/S(i−1) (the paper's α if positions were i.i.d.). The i.i.d. fit is the single α a planner that "
        "assumes independent positions uses for the trace: the α whose expected tokens per round equals the "
        "trace's at its most common draft length.",
    )
    if not infos:
        sec.note(f"The trace store {st.root} holds no datasets. Add some with `specedge ingest` or `specedge "
                 "record` (see the README).")
        return
    sec.table("traces-catalog", tables.trace_catalog(infos), title="Datasets in the store",
              caption="`provenance` says whether a dataset was recorded by specedge, ingested from another tool's "
                      "output, or derived from a published number (synthetic rounds drawn to match it).")
    acc_infos = [i for i in infos if i.kind in ("acceptance", "aggregate")]
    stages = ctx.stages.stage("4. traces", len(acc_infos) + 1)
    frames = {}
    for n, info in enumerate(acc_infos):
        frames[info.id] = st.read(info.id)
        if stages:
            stages(n + 1, len(acc_infos) + 1)
    if frames:
        from specedge.traces.ingest.numbers import KEY

        summary = tables.acceptance_summary(frames, {i.id: i.source for i in acc_infos},
                                            {i.id: i.metadata[KEY] for i in acc_infos
                                             if isinstance(i.metadata.get(KEY), dict)})
        sec.table("traces-acceptance", summary, title="Acceptance per dataset",
                  caption="`numbers_from`: `tool` when rounds, τ and m are the ingested tool's own counts (as "
                          "`specedge traces show` prints them; empty where the tool does not define one), `table` "
                          "when computed from the stored rounds. `alpha_iid`: the fitted i.i.d. α; `survival_gap`: "
                          "the largest |S_trace(i) − S_iid(i)| (0 when the trace is i.i.d. at one α).")
        sec.figure("traces-tau", figures.tau_by_dataset(summary), title="τ per dataset")
        limit = int(ctx.cfg.traces.get("max_datasets", DEFAULT_MAX_TRACE_PANELS))
        order = sorted(frames, key=lambda k: (next(i.source for i in acc_infos if i.id == k) != "recorded", k))
        shown = {k: frames[k] for k in order[:limit]}
        if len(shown) < len(frames):
            sec.note(f"The per-dataset figures show {len(shown)} of {len(frames)} datasets (recorded ones first); "
                     "the tables hold all of them.")
        sec.figure("traces-histograms", figures.acceptance_histograms(shown), title="Accepted-count histograms",
                   caption="Share of rounds per number of accepted draft tokens.")
        sec.figure("traces-survival", figures.survival_vs_iid(shown), title="Survival S(i): trace vs i.i.d. fit",
                   caption="Solid: the recorded survival; dashed: what i.i.d. acceptance at the fitted α predicts "
                           "for the same draft lengths. Where they part, one global α misstates the trace.")
        sec.figure("traces-conditional-alpha", figures.conditional_alpha(shown),
                   title="Conditional acceptance α_i by draft position")
        per_cat = tables.tau_by_category(frames)
        if not per_cat.empty:
            sec.table("traces-tau-by-category", per_cat, title="τ and m per category")
            sec.figure("traces-tau-by-category", figures.tau_by_category(per_cat), title="τ per category")
        else:
            sec.text("No acceptance dataset in the store records request categories, so there is no per-category "
                     "breakdown.")
    compute = {i.id: st.read(i.id) for i in infos if i.kind == "compute"}
    if compute:
        fits, points = tables.compute_fits(compute)
        sec.table("traces-compute-fits", fits, title="Compute traces: affine and roofline fits",
                  caption="Affine: the paper's T = c1 · b · F + c2, least squares over every sample. Roofline: "
                          "T = max(b·F / (e_c · peak), bytes / (e_m · bandwidth)) + c2 with e_c, e_m, c2 fitted, "
                          "against the device card named in the trace. R² and RMSE over every sample.")
        if not points.empty:
            sec.figure("traces-compute-fit", figures.compute_fit(points),
                       title="Measured vs predicted pass latency",
                       caption="Each point: the median of one measured configuration (batch size, new tokens, "
                               "context) against each fit's prediction; the dashed line is y = x.")
    else:
        sec.text("The store holds no compute traces, so there is no fit of the compute model to measurements.")
    if stages:
        stages(len(acc_infos) + 1, len(acc_infos) + 1)


# ---------------------------------------------------------------------------------------------- section 5
#: Policies whose optimality gap section 5 measures when the config names none.
DEFAULT_GAP_POLICIES = ("paper-dp", "dp-refined")


def optimizer(ctx: Context, comparison_cells: pd.DataFrame | None = None) -> None:
    from specedge import experiments
    from specedge.report.asv_results import all_results, find_results_dir, latest

    opt = ctx.cfg.optimizer
    k = int(opt.get("tasks", 8))
    instances = int(opt.get("instances", 10))
    policies = list(opt.get("policies", DEFAULT_GAP_POLICIES))
    sec = ctx.report.section(
        "optimizer", "The optimizer",
        "How far each optimizer's plan is from the best plan, and how long it takes to find it. The oracle "
        "searches every contiguous partition of the input-sorted tasks and every l under the exact pipeline "
        f"recursion; that is affordable only for small K, so the gap is measured on {instances} random "
        f"paper-preset instances with K = {k} (cycling through the three pairs and α = 0.6–0.9; "
        "`specedge.experiments.optimality_gaps`). gap = makespan(policy) / makespan(oracle) − 1, both replayed "
        "the same way; a negative gap means the policy found a plan outside the oracle's search space (e.g. a "
        "speculation length per batch).",
    )
    if instances > 0 and policies:
        stage = ctx.stages.stage("5. optimality gap", 1)
        gaps = experiments.optimality_gaps(instances, tasks=k, policies=policies,
                                           first_seed=int(opt.get("seed", 0)))
        if stage:
            stage(1, 1)
        gaps = gaps.assign(gap=gaps["gap_pct"] / 100.0)
        summary = gaps.groupby("policy", sort=False).agg(
            instances=("gap", "size"), median_gap=("gap", "median"), mean_gap=("gap", "mean"),
            worst_gap=("gap", "max"), best_gap=("gap", "min")).reset_index()
        sec.table("optimizer-gap", summary, title=f"Optimality gap against the oracle (K = {k})",
                  caption="Fractions: 0.01 = 1% above the oracle's makespan.")
        sec.figure("optimizer-gap", figures.optimizer_gap(gaps), title="Gap per instance")
    if comparison_cells is not None and not comparison_cells.empty:
        ok = _ok(comparison_cells)
        speed = ok.groupby("policy").agg(cells=("plan_wall_s", "size"), median_plan_ms=("plan_wall_s", "median"),
                                         p90_plan_ms=("plan_wall_s", lambda s: float(np.percentile(s, 90))),
                                         max_plan_ms=("plan_wall_s", "max")).reset_index()
        for col in ("median_plan_ms", "p90_plan_ms", "max_plan_ms"):
            speed[col] = speed[col] * 1e3
        tasks = sorted({v for v in ok.get("tasks", pd.Series(dtype=float)).dropna().unique()})
        sec.table("optimizer-plan-time", speed.sort_values("median_plan_ms"),
                  title="Planning time per policy (this run)",
                  caption="Wall time of `policy.plan(scenario)` in the policy comparison's cells"
                          + (f" (K = {', '.join(str(int(t)) for t in tasks)})" if tasks else "")
                          + ", measured while the sweep ran on this machine's worker processes — indicative only; "
                            "asv below measures it properly.")
        sec.figure("optimizer-plan-time", figures.plan_time(ok), title="Planning time per policy, cell by cell")
    results = all_results()
    if results.empty:
        sec.note(f"No asv results found in {find_results_dir()}. Produce them with `asv run --python=same "
                 "--quick` (this commit, in the current environment) or `asv run main~5..main` (history, asv "
                 "builds each commit), then rebuild the report; `asv publish` and `asv preview` show the history "
                 "as asv's own web pages.")
        return
    current = latest(results)
    current = current.assign(optimizer=current["benchmark"].str.contains("optim|polic|dp|oracle|gap", case=False))
    current = current.sort_values(["optimizer", "machine", "benchmark", "params"],
                                  ascending=[False, True, True, True]).reset_index(drop=True)
    current["date"] = current["date"].dt.strftime("%Y-%m-%d %H:%M")
    machines = ", ".join(sorted(results["machine"].unique()))
    sec.text(f"asv results in {find_results_dir()}: {results['commit'].nunique()} commit(s), "
             f"{results['benchmark'].nunique()} benchmark(s), machine(s) {machines}. "
             "The table gives each benchmark's newest value (a partial `asv run` leaves older ones current).")
    sec.table("optimizer-asv", current, title="asv benchmarks: newest value of each",
              caption="`time_*` in seconds, `peakmem_*` in bytes, `track_*` in the unit asv reports; the "
                      "optimizer's benchmarks first; `commit` and `date` say which run measured it.")
    history = results[results["type"].eq("time") & results["value"].notna()]
    history = history[history.groupby(["machine", "benchmark", "params"])["commit"].transform("nunique") > 1]
    if not history.empty:
        sec.figure("optimizer-asv-history", figures.asv_history(history), title="asv history of the time benchmarks",
                   caption="Each line: one benchmark and parameter set, by the date of the commit asv measured.")


# ---------------------------------------------------------------------------------------------- section 3
def headline(ctx: Context) -> None:
    sec = ctx.report.section(
        "headline", "The paper's headline numbers",
        "The comparisons the paper reports (docs/model.md §7), each rerun by specedge on the scenario that matches "
        "the paper's conditions, side by side, with a sentence for each difference. `basis` says whether a "
        "parameter of the preset was solved to match the claim (`fitted`, an agreement by construction) or not "
        "(`predicted`); the next section audits this.",
    )
    from specedge import experiments

    stage = ctx.stages.stage("3. headline numbers", 1)
    table = experiments.paper_comparisons(preset=str(ctx.cfg.headline.get("preset", "paper")),
                                          seed=int(ctx.cfg.headline.get("seed", 0)))
    if stage:
        stage(1, 1)
    sec.table("headline", table, title="The paper's numbers and specedge's",
              caption="`paper_value` and `specedge_value`: percent change of the latency (negative: the first "
                      "policy is faster); for 'SD vs AD' rows the paper gives a direction (−1: SD lower at every α) "
                      "and `specedge_value` is the change at the largest α (`changes` lists every α). `agrees`: same "
                      f"direction and within {experiments.TOLERANCE_PP:g} percentage points.")
    numeric = table[table["difference_pp"].notna()]
    if not numeric.empty:
        sec.figure("headline", figures.headline_bars(numeric), title="Latency change: paper vs specedge")
    for row in table.itertuples(index=False):
        if row.difference_pp == row.difference_pp:  # not NaN: a number to compare
            verdict = (f"paper {row.paper_value:+.1f}%, specedge {row.specedge_value:+.1f}% "
                       f"({row.difference_pp:+.1f} points)")
        else:
            verdict = f"specedge {row.specedge_value:+.1f}% at the largest α"
        if row.agrees and getattr(row, "basis", "predicted") == "fitted":
            said = (f"Agrees with the paper, but FITTED: {', '.join(row.tuned)} was solved to match this claim, so "
                    "the agreement is by construction, not a prediction.")
        elif row.agrees:
            said = "Agrees with the paper (predicted: no parameter was tuned on it)."
        else:
            said = str(row.explanation)
        sec.text(f"**{row.claim}** — {verdict}. " + said)


def fidelity(ctx: Context):
    """Section 6: how well replay predicted the real two-node runs stored in the trace store. When its study was
    started early in the pool (``ctx.futures["fidelity"]``), the section is created here, in its place, and a
    function that fills it once the study is done is returned (the caller writes later sections meanwhile);
    otherwise it is filled here and None is returned."""
    from specedge.fidelity.report import write_fidelity_section
    from specedge.traces.store import open_store

    sec = ctx.report.section(
        "fidelity", "Fidelity: replay against real runs",
        "Each real run (`specedge serve-real`: a draft-node and a verify-node process, each on its own core) is "
        "replayed with the acceptance it actually saw and with each compute predictor fitted to the compute traces "
        "measured for that run; the table gives per-task latency errors |predicted − measured| / measured (median, "
        "p90) and the makespan error. `stage-times` replays the recursion with the measured job durations: it "
        "isolates the pipeline model from the compute model.",
    )
    early = ctx.futures.pop("fidelity", None)
    runs = [i.id for i in open_store(ctx.store).list() if i.kind == "run"]
    if not runs:
        sec.note("The trace store holds no real run. Record one with `specedge serve-real` (see the README).")
        return None
    stage = ctx.stages.stage("6. fidelity", 1)

    def fill() -> None:  # quiet-machine protocol, headline, repeats and noise floor, rank fidelity (issue 10)
        write_fidelity_section(sec, ctx.store, stage, precomputed=early.result() if early is not None else None)

    if early is None:
        fill()
        return None
    return fill
