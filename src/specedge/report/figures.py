"""The report's figures: seaborn, one function per figure, each returning ``(figure, data table)``.

The data table is exactly what is plotted (one row per mark), so a reader can re-plot or check it. matplotlib
runs with the non-interactive Agg backend; seaborn and matplotlib are imported inside the functions.

Conventions every figure keeps (so that the figures read as one paper's): a policy has one colour, marker and
line style everywhere (:mod:`specedge.report.palette`); an axis whose values span decades is logarithmic with
1-2-5 ticks (:mod:`specedge.report.axes`); counts get integer ticks; panel titles wrap instead of being cut;
figures are at most :data:`MAX_WIDTH_IN` inches wide, so that the page shows them at their own size.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from specedge.report import axes as ax_
from specedge.report import palette, tables
from specedge.report.axes import LOG_SCALE_RATIO  # noqa: F401  (re-exported: figures.LOG_SCALE_RATIO)
from specedge.traces import stats

#: Facet columns per row in multi-dataset figures.
COL_WRAP = 4
#: Widest figure, inches (10.5 in at the report's 110 dpi is about the width of the page's main column).
MAX_WIDTH_IN = 10.5
#: Height of one facet, inches.
FACET_HEIGHT_IN = 2.6

LABELS = {
    "makespan_s": "makespan (s)",
    "mean_latency_s": "mean task latency (s)",
    "p99_latency_s": "p99 task latency (s)",
    "ttft_s": "mean time to first token (s)",
    "alpha": "acceptance rate α",
    "tasks": "number of tasks K",
    "max_input_tokens": "max input length (tokens)",
    "max_output_tokens": "max output length (tokens)",
    "bandwidth_hz": "uplink bandwidth B (Hz)",
    "bandwidth_mhz": "uplink bandwidth B (MHz)",
}


def _setup():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    return plt, sns


@contextlib.contextmanager
def _library_deprecations_silenced():
    """seaborn 0.13 calls matplotlib APIs that matplotlib 3.11 deprecates (boxplot's ``vert``, ``set_bad``);
    the warnings are about seaborn's internals, not our calls, so they are silenced around those calls only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        yield


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def _short(name: str, width: int = 30) -> str:
    """A dataset id short enough for a panel title: its tail (ids differ at the end more than the start)."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _panels(names: pd.Series, width: int = 30) -> pd.Series:
    """Short panel titles, falling back to the full names if shortening would merge two of them."""
    short = names.map(lambda n: _short(str(n), width))
    unique = names.drop_duplicates()
    if unique.map(lambda n: _short(str(n), width)).nunique() < unique.size:
        return names.astype(str)
    return short


def _facets(plt, n: int, ncols: int = COL_WRAP, height_in: float = FACET_HEIGHT_IN, aspect: float = 1.3,
            sharey: bool = True):
    """A grid of n axes (row-major, unused ones hidden); faster than seaborn's FacetGrid for many panels."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    width = min(ncols * height_in * aspect, MAX_WIDTH_IN)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, nrows * height_in + 0.4), sharey=sharey, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# ---------------------------------------------------------------------------------------------- traces
def acceptance_histograms(frames: Mapping[str, pd.DataFrame]):
    """Share of rounds per accepted count, one panel per acceptance dataset."""
    plt, sns = _setup()
    rows = []
    for name, frame in frames.items():
        hist = stats.histogram(frame).groupby("accepted", as_index=False)["count"].sum()
        hist["share"] = hist["count"] / hist["count"].sum()
        rows.append(hist.assign(dataset=name))
    data = pd.concat(rows, ignore_index=True)[["dataset", "accepted", "count", "share"]]
    fig, axes = _facets(plt, len(frames))
    for n, (ax, name) in enumerate(zip(axes, frames)):
        sub = data[data["dataset"] == name]
        sns.histplot(sub, x="accepted", weights="share", discrete=True, color="#4c72b0", ax=ax)
        ax.set_title(ax_.wrap_title(name), fontsize=8.5)
        ax.set_xlabel("accepted draft tokens")
        ax.set_ylabel("share of rounds" if n % COL_WRAP == 0 else "")
        ax_.integer_ticks(ax, "x")
    fig.tight_layout()
    return fig, data


def survival_vs_iid(frames: Mapping[str, pd.DataFrame]):
    """Recorded survival S(i) = P(accepted ≥ i) against the i.i.d. fit α^i (same τ), one panel per dataset."""
    plt, sns = _setup()
    rows = []
    for name, frame in frames.items():
        alpha = tables.iid_alpha(frame, name)
        s = stats.survival(frame)
        s_iid = tables.survival_iid(frame, alpha)
        i = np.arange(s.size)
        rows.append(pd.DataFrame({"dataset": name, "position": i, "survival": s, "model": "trace",
                                  "alpha_iid": alpha}))
        rows.append(pd.DataFrame({"dataset": name, "position": i, "survival": s_iid, "model": "i.i.d. fit",
                                  "alpha_iid": alpha}))
    data = pd.concat(rows, ignore_index=True)
    fig, axes = _facets(plt, len(frames))
    for n, (ax, name) in enumerate(zip(axes, frames)):
        sub = data[data["dataset"] == name]
        sns.lineplot(sub, x="position", y="survival", hue="model", style="model", markers=True, dashes=True,
                     errorbar=None, ax=ax, legend=n == 0)
        ax.set_title(ax_.wrap_title(name), fontsize=8.5)
        ax.set_xlabel("draft position i")
        ax.set_ylabel("S(i) = P(accepted ≥ i)" if n % COL_WRAP == 0 else "")
        ax.set_ylim(0, 1.03)
        ax_.integer_ticks(ax, "x")
    fig.tight_layout()
    return fig, data


def conditional_alpha(frames: Mapping[str, pd.DataFrame]):
    """Conditional acceptance α_i = S(i)/S(i−1) by draft position, one panel per dataset, against the dataset's
    fitted i.i.d. α (dashed): a flat line at the dashed level is what an i.i.d. planner assumes."""
    plt, sns = _setup()
    rows = []
    for name, frame in frames.items():
        a = stats.conditional_alpha(frame)
        rows.append(pd.DataFrame({"dataset": name, "position": np.arange(1, a.size + 1), "alpha_i": a,
                                  "alpha_iid": tables.iid_alpha(frame, name)}))
    data = pd.concat(rows, ignore_index=True)
    fig, axes = _facets(plt, len(frames))
    for n, (ax, name) in enumerate(zip(axes, frames)):
        sub = data[data["dataset"] == name].dropna(subset=["alpha_i"])
        ax.plot(sub["position"], sub["alpha_i"], marker="o", ms=3.5, color="#4c72b0", label="α_i (trace)")
        iid = float(data.loc[data["dataset"] == name, "alpha_iid"].iloc[0])
        ax.axhline(iid, color="#c44e52", ls="--", lw=1.1, label="fitted i.i.d. α")
        ax.set_title(ax_.wrap_title(name), fontsize=8.5)
        ax.set_xlabel("draft position i")
        ax.set_ylabel("α_i = S(i) / S(i−1)" if n % COL_WRAP == 0 else "")
        ax.set_ylim(0, 1.03)
        ax_.integer_ticks(ax, "x")
        if n == 0:
            fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8.5,
                       bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig, data


def tau_by_dataset(summary: pd.DataFrame):
    """τ (mean tokens committed per round) per acceptance dataset, coloured by provenance."""
    plt, sns = _setup()
    data = summary[["dataset", "provenance", "tau", "alpha_iid", "rounds"]].sort_values("tau", ascending=False)
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(data) + 1.2))
    sns.barplot(data, y="dataset", x="tau", hue="provenance", dodge=False, ax=ax)
    ax.set_xlabel("τ = 1 + mean accepted (tokens per round)")
    ax.set_ylabel("")
    ax.legend(fontsize=7, loc="lower right")
    return fig, data.reset_index(drop=True)


def tau_by_category(per_category: pd.DataFrame):
    """τ per category within each dataset that records categories."""
    plt, sns = _setup()
    data = per_category.copy()
    n = data["category"].nunique()
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.5 * n * data["dataset"].nunique() + 2), MAX_WIDTH_IN), 3.8))
    sns.barplot(data, x="category", y="tau", hue="dataset", ax=ax)
    ax.set_ylabel("τ (tokens per round)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(3, data["dataset"].nunique()),
              frameon=False)
    return fig, data


def compute_fit(points: pd.DataFrame):
    """Measured pass latency against the affine and roofline fits, log–log, one panel per compute dataset."""
    plt, sns = _setup()
    data = points.copy()
    keys = list(dict.fromkeys(zip(data["dataset"].astype(str), data["model"].astype(str))))
    titles = [ax_.wrap_title(f"{d} · {m}", 34) for d, m in keys]
    fig, axes = _facets(plt, len(keys), ncols=3, height_in=3.0, aspect=1.15, sharey=False)
    for n, (ax, key, title) in enumerate(zip(axes, keys, titles)):
        sub = data[(data["dataset"].astype(str) == key[0]) & (data["model"].astype(str) == key[1])]
        sns.scatterplot(sub, x="measured_ms", y="predicted_ms", hue="predictor", style="phase", s=22, alpha=0.75,
                        ax=ax, legend=n == 0)
        ax_.log_axis(ax, "x")
        ax_.log_axis(ax, "y")
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--")
        ax.set_title(title, fontsize=8.5)
        ax.set_xlabel("measured (ms, median)")
        ax.set_ylabel("predicted (ms)")
        if ax.get_legend() is not None:  # one legend for all panels, above them
            handles, labels = ax.get_legend_handles_labels()
            ax.get_legend().remove()
            fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8.5,
                       bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig, data


# ------------------------------------------------------------------------------------ policy results
def headline_bars(comparison: pd.DataFrame):
    """The paper's headline latency changes next to specedge's (percent), one bar pair per claim."""
    plt, sns = _setup()
    long = comparison.melt(id_vars=["claim"], value_vars=["paper_value", "specedge_value"], var_name="source",
                           value_name="change_pct")
    long["source"] = long["source"].map({"paper_value": "paper", "specedge_value": "specedge"})
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * comparison.shape[0] + 1.4))
    sns.barplot(long, y="claim", x="change_pct", hue="source", ax=ax)
    ax.set_xlabel("latency change (%), negative = faster")
    ax.set_ylabel("")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.legend(fontsize=8, loc="lower left")
    return fig, long


def optimizer_gap(gaps: pd.DataFrame):
    """Distribution of each optimizer's gap to the exhaustive-search oracle (%) over small instances."""
    plt, sns = _setup()
    data = gaps.copy()
    data["gap_pct"] = data["gap"] * 100
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * data["policy"].nunique() + 1.5))
    order = palette.order(data["policy"])
    colours = {p: palette.colour(p) for p in order}
    with _library_deprecations_silenced():
        sns.boxplot(data, y="policy", x="gap_pct", order=order, ax=ax, color="#eef1f5", fliersize=0)
    sns.stripplot(data, y="policy", x="gap_pct", order=order, hue="policy", palette=colours, legend=False, ax=ax,
                  size=4, alpha=0.8)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel("makespan above the oracle's (%)")
    ax.set_ylabel("")
    return fig, data


def plan_time(cells: pd.DataFrame):
    """Wall time of each policy's ``plan(scenario)`` over the comparison's cells (log scale)."""
    plt, sns = _setup()
    data = cells[["policy", "pair", "acceptance", "seed", "plan_wall_s"]].copy()
    data["plan_ms"] = data["plan_wall_s"] * 1e3
    order = data.groupby("policy")["plan_ms"].median().sort_values().index.tolist()
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(order) + 1.4))
    with _library_deprecations_silenced():
        sns.boxplot(data, y="policy", x="plan_ms", order=order, hue="policy", legend=False, ax=ax, fliersize=2,
                    palette={p: palette.colour(p) for p in order}, boxprops={"alpha": 0.6})
    ax_.log_axis(ax, "x")
    ax.set_xlabel("plan(scenario) wall time (ms)")
    ax.set_ylabel("")
    return fig, data


def asv_history(history: pd.DataFrame):
    """asv time benchmarks by commit date (log scale), one line per benchmark and parameter set."""
    plt, sns = _setup()
    data = history.copy()
    data["series"] = data["benchmark"].str.rsplit(".", n=1).str[-1] + " " + data["params"].astype(str)
    fig, ax = plt.subplots(figsize=(8.5, 4.0))
    sns.lineplot(data, x="date", y="value", hue="series", marker="o", ax=ax, errorbar=None)
    ax.set_yscale("log")
    ax.set_xlabel("commit date")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.autofmt_xdate()
    return fig, data.drop(columns="series")


# The policy-result figures live in their own module; importing them here keeps ``figures.policy_bars`` etc.
from specedge.report.policy_figures import (  # noqa: E402,F401  (re-exported)
    HEATMAP_QUANTILE,
    SWEEP_REFERENCE,
    policy_bars,
    reduction_heatmap,
    sweep_lines,
)
