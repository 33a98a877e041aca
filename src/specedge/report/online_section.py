"""Report section "online serving": latency percentiles and goodput against arrival rate, per online policy.

The grid (:data:`POLICIES` x :data:`RATES_RPS`, :data:`REQUESTS` Poisson requests, seed :data:`SEED`) runs through
the sweep engine with :func:`specedge.online.sweep.evaluate_online_cell`. The knee of a policy is the largest rate
at which it still meets the SLO for :data:`KNEE_ATTAINMENT` of the requests. "Where speculation stops paying": the
lowest rate at which an SD policy's median end-to-end latency is no better than the AD policy's. Two regimes
(:data:`REGIMES`): the paper preset as it is, and one where the uplink is lifted so that load reaches the verifier.
"""

from __future__ import annotations

import pandas as pd

from specedge.online.sweep import ONLINE_METRICS, evaluate_online_cell

PRESET = "paper"
PAIR = "llama-68m/llama-7b"
POLICIES = ("fcfs", "smartspec", "sd-ad-switch", "spec-off-above-load", "threshold", "ad")
#: The two regimes [A], each a grid over arrival rates (requests/s):
#: - ``uplink-bound``: the paper preset as it is (B = 20 MHz: the mean upload needs about 1 s of the whole band, so
#:   the uplink saturates near 1 request/s), batches of up to 32;
#: - ``verifier-bound``: the uplink made irrelevant (B = 2 GHz) and batches of up to 512, so that load reaches the
#:   verifier and batches grow until its compute, not its fixed cost per pass, dominates.
REGIMES = {
    "uplink-bound": {"rates": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), "fixed": ()},
    "verifier-bound": {"rates": (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
                       "fixed": (("bandwidth_hz", 2e9), ("max_batch_size", 512))},
}
#: Requests per cell [A]: enough for a p99, few enough for the report's time budget.
REQUESTS = 600
SEED = 0
KNEE_ATTAINMENT = 0.9


def run(out, *, workers: int = 1, pool=None, store=None, progress=None) -> pd.DataFrame:
    """Every regime's grid through the sweep engine; one frame with a ``regime`` column."""
    from pathlib import Path

    from specedge.sweep import Grid, read_results, run_sweep

    frames = []
    for regime, spec in REGIMES.items():
        grid = Grid(presets=(PRESET,), pairs=(PAIR,), acceptance=("expected",), policies=POLICIES, seeds=(SEED,),
                    fixed=(("requests", REQUESTS), *spec["fixed"]), axes=(("rate_rps", spec["rates"]),),
                    chunk_size=7, source=f"report: online serving, {regime}")
        where = Path(out) / regime
        run_sweep(grid, where, cell_fn=evaluate_online_cell, metrics=ONLINE_METRICS, workers=workers, pool=pool,
                  executor="inline" if workers <= 1 else "local", store=store, progress=progress)
        cells = read_results(where)
        frames.append(cells[cells["status"] == "ok"].assign(regime=regime))
    return pd.concat(frames, ignore_index=True).sort_values(["regime", "policy", "rate_rps"]).reset_index(drop=True)


def summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per policy: the knee (largest rate with SLO attainment >= KNEE_ATTAINMENT) and the goodput there."""
    rows = []
    for (regime, pol), g in cells.groupby(["regime", "policy"], sort=False):
        ok = g[g["slo_attainment"] >= KNEE_ATTAINMENT]
        knee = float(ok["rate_rps"].max()) if len(ok) else float("nan")
        rows.append({"regime": regime, "policy": pol, "knee_rate_rps": knee,
                     "max_goodput_rps": float(g["goodput_rps"].max()),
                     "rate_at_max_goodput_rps": float(g.loc[g["goodput_rps"].idxmax(), "rate_rps"]),
                     "e2e_p50_at_lowest_rate_s": float(g.sort_values("rate_rps")["e2e_p50_s"].iloc[0])})
    return pd.DataFrame(rows)


def speculation_stops_paying(cells: pd.DataFrame) -> pd.DataFrame:
    """Per regime and SD policy: the lowest rate at which its median e2e latency is no better than AD's."""
    rows = []
    for regime, sub in cells.groupby("regime", sort=False):
        pivot = sub.pivot_table(index="rate_rps", columns="policy", values="e2e_p50_s")
        if "ad" not in pivot:
            continue
        for pol in pivot.columns.drop("ad"):
            worse = pivot.index[(pivot[pol] >= pivot["ad"]).to_numpy()]
            rows.append({"regime": regime, "policy": pol,
                         "sd_stops_paying_at_rps": float(worse.min()) if worse.size else float("nan"),
                         "best_e2e_p50_vs_ad": float((pivot[pol] / pivot["ad"]).min()),
                         "worst_e2e_p50_vs_ad": float((pivot[pol] / pivot["ad"]).max())})
    return pd.DataFrame(rows)


def figure(cells: pd.DataFrame, tpot_slo_s: float = 0.05):
    """One column per regime, one row per metric against arrival rate: p99 TTFT, median TPOT, goodput, median e2e
    relative to AD. Policies in the report's palette (:mod:`specedge.report.palette`), at the page's width cap."""
    from specedge.report import axes as ax_
    from specedge.report import palette
    from specedge.report.figures import MAX_WIDTH_IN, _setup

    plt, sns = _setup()
    data = cells[["regime", "policy", "rate_rps", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p50_s",
                  "e2e_p99_s", "goodput_rps", "slo_attainment", "mean_speculation_length"]].copy()
    ad = data[data["policy"] == "ad"].set_index(["regime", "rate_rps"])["e2e_p50_s"]
    keys = pd.MultiIndex.from_frame(data[["regime", "rate_rps"]])
    data["e2e_p50_vs_ad"] = data["e2e_p50_s"].to_numpy() / ad.reindex(keys).to_numpy()
    regimes = list(dict.fromkeys(data["regime"]))
    policies = palette.order(data["policy"].unique())
    metrics = (("ttft_p99_s", "TTFT p99 (s)"), ("tpot_p50_s", "TPOT median (s)\ndashed: SLO"),
               ("goodput_rps", "goodput (req/s in SLO)\ndotted: offered"),
               ("e2e_p50_vs_ad", "median e2e / AD's\n(< 1: SD pays)"))
    fig, axes = plt.subplots(len(metrics), len(regimes), figsize=(MAX_WIDTH_IN, 2.3 * len(metrics) + 0.9),
                             squeeze=False, sharex="col")
    for c, regime in enumerate(regimes):
        d = data[data["regime"] == regime]
        for r, (col, label) in enumerate(metrics):
            ax = axes[r, c]
            for pol in policies:
                st = palette.style(pol)
                p = d[d["policy"] == pol].sort_values("rate_rps")
                ax.plot(p["rate_rps"], p[col], color=st.colour, marker=st.marker, ls=st.linestyle, lw=1.4, ms=4,
                        label=pol)
            if col == "ttft_p99_s":
                ax_.log_if_decades(ax, d[col])
            elif col == "tpot_p50_s":
                ax.axhline(tpot_slo_s, color="#999999", lw=0.8, ls="--")
            elif col == "goodput_rps":
                lim = float(d["rate_rps"].max())
                ax.plot([0, lim], [0, lim], color="#999999", lw=0.8, ls=":")
            else:
                ax.axhline(1.0, color="black", lw=0.8)
            ax.set_ylabel(label if c == 0 else "", fontsize=9)
            ax.tick_params(labelsize=8)
        axes[0, c].set_title(regime, fontsize=10, fontweight="bold")
        axes[-1, c].set_xlabel("arrival rate (requests/s, Poisson)", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(policies), frameon=False, fontsize=8.5)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    return fig, data


def section(ctx) -> None:
    from specedge.online import OnlineConfig

    cfg = OnlineConfig()
    sec = ctx.report.section(
        "online-serving", "Online serving: latency and goodput as load grows",
        f"Requests arrive as a Poisson process ({REQUESTS} per point, seed {SEED}) on the `{PRESET}` preset "
        f"({PAIR}, expected acceptance α = 0.8) and are served by the online engine (`specedge.online`, "
        "docs/online.md): "
        f"{cfg.num_slots} batches in flight (AD: one), continuous batching at round boundaries up to the batch "
        f"size and the SBS memory, the {cfg.uplink_rule} uplink. SLO: TTFT ≤ {cfg.ttft_slo_s:g} s and TPOT ≤ "
        f"{cfg.tpot_slo_s:g} s; goodput counts the requests meeting both, per second. Two regimes: "
        "`uplink-bound` is the preset as it is (B = 20 MHz, batches ≤ 32); `verifier-bound` lifts the uplink "
        "(B = 2 GHz) and allows batches of 512, so that load reaches the verifier. The static case (every "
        "arrival at 0, a plan, the paper's uplink) reproduces `specedge.evaluate` to 1e-9 (tests/online).")
    n_cells = len(POLICIES) * sum(len(r["rates"]) for r in REGIMES.values())
    stage = ctx.stages.stage("8. online serving", n_cells)
    cells = run(ctx.report.out / "cells" / "online", workers=ctx.workers, pool=ctx.pool, store=ctx.store,
                progress=stage)
    knees = summary(cells)
    stop = speculation_stops_paying(cells)
    sec.figure("online-load", figure(cells, cfg.tpot_slo_s), title="Latency and goodput against arrival rate",
               caption="Rows: the two regimes. Left to right: p99 time to first token (log scale; the upload is "
                       "most of it), median time per output token, goodput (on the dotted diagonal every request "
                       "meets the SLO), and median end-to-end latency relative to AD serving (below 1: "
                       "speculation pays).")
    sec.table("online-knees", knees, title="Knee of each online policy",
              caption=f"`knee_rate_rps`: the largest arrival rate at which ≥ {KNEE_ATTAINMENT:.0%} of requests "
                      "meet the SLO (NaN: never); `max_goodput_rps` and the rate where it peaks.")
    sec.table("online-speculation-pays", stop, title="Where speculation stops paying",
              caption="Per regime and SD policy: the lowest arrival rate at which its median end-to-end latency is "
                      "no better than AD serving's (NaN: better over the whole grid), and its best and worst median "
                      "e2e latency relative to AD's.")
    sec.table("online-cells", cells[["regime", "policy", "rate_rps", *ONLINE_METRICS]], title="Every online cell")
    lost = stop.dropna(subset=["sd_stops_paying_at_rps"])
    if len(lost):
        sec.text("Where speculation stops paying: " + "; ".join(
            f"`{r.policy}` ({r.regime}) from {r.sd_stops_paying_at_rps:g} requests/s" for r in lost.itertuples())
                 + ". An SD round costs the verifier l + 1 token positions per member for about L(l, α) "
                 "committed tokens; while a pass's fixed cost dominates (small batches) that is nearly free, once "
                 "batches grow its compute does not.")
    else:
        sec.text("Speculation pays over every rate of both grids.")
