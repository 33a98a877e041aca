"""The report's figures: seaborn, one function per figure, each returning ``(figure, data table)``.

The data table is exactly what is plotted (one row per mark), so a reader can re-plot or check it. matplotlib
runs with the non-interactive Agg backend; seaborn and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from specedge.report import tables
from specedge.traces import stats

#: Facet columns per row in multi-dataset figures.
COL_WRAP = 4
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

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * height_in * aspect, nrows * height_in + 0.4),
                             sharey=sharey, squeeze=False)
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
    titles = _panels(pd.Series(list(frames)))
    fig, axes = _facets(plt, len(frames))
    for ax, name, title in zip(axes, frames, titles):
        sub = data[data["dataset"] == name]
        sns.histplot(sub, x="accepted", weights="share", discrete=True, color="#4c72b0", ax=ax)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("accepted draft tokens")
        ax.set_ylabel("share of rounds")
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
    titles = _panels(pd.Series(list(frames)))
    fig, axes = _facets(plt, len(frames))
    for n, (ax, name, title) in enumerate(zip(axes, frames, titles)):
        sub = data[data["dataset"] == name]
        sns.lineplot(sub, x="position", y="survival", hue="model", style="model", markers=True, dashes=True,
                     errorbar=None, ax=ax, legend=n == 0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("draft position i")
        ax.set_ylabel("S(i) = P(accepted ≥ i)")
        ax.set_ylim(0, 1.03)
    fig.tight_layout()
    return fig, data


def conditional_alpha(frames: Mapping[str, pd.DataFrame]):
    """Conditional acceptance α_i = S(i)/S(i−1) by draft position, all datasets in one panel."""
    plt, sns = _setup()
    rows = []
    for name, frame in frames.items():
        a = stats.conditional_alpha(frame)
        rows.append(pd.DataFrame({"dataset": name, "position": np.arange(1, a.size + 1), "alpha_i": a}))
    data = pd.concat(rows, ignore_index=True)
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    sns.lineplot(data.dropna(), x="position", y="alpha_i", hue="dataset", marker="o", ax=ax)
    ax.set_xlabel("draft position i")
    ax.set_ylabel("α_i = S(i) / S(i−1)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=2, loc="lower left", frameon=True)
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
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * n * data["dataset"].nunique() + 2), 3.8))
    sns.barplot(data, x="category", y="tau", hue="dataset", ax=ax)
    ax.set_ylabel("τ (tokens per round)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=7)
    return fig, data


def compute_fit(points: pd.DataFrame):
    """Measured pass latency against the affine and roofline fits, log–log, one panel per compute dataset."""
    plt, sns = _setup()
    data = points.copy()
    keys = list(dict.fromkeys(zip(data["dataset"].astype(str), data["model"].astype(str))))
    titles = _panels(pd.Series([f"{d} · {m}" for d, m in keys]), 40)
    fig, axes = _facets(plt, len(keys), ncols=3, height_in=3.0, aspect=1.15, sharey=False)
    for n, (ax, key, title) in enumerate(zip(axes, keys, titles)):
        sub = data[(data["dataset"].astype(str) == key[0]) & (data["model"].astype(str) == key[1])]
        sns.scatterplot(sub, x="measured_ms", y="predicted_ms", hue="predictor", style="phase", s=22, alpha=0.75,
                        ax=ax, legend=n == 0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("measured (ms, median)")
        ax.set_ylabel("predicted (ms)")
    fig.tight_layout()
    return fig, data


# ------------------------------------------------------------------------------------ policy results
def policy_bars(summary: pd.DataFrame, metric: str = "makespan_s", sources: Sequence[str] | None = None):
    """Mean ``metric`` per policy with its interval, one panel per model pair, hue = acceptance source."""
    plt, sns = _setup()
    data = summary if sources is None else summary[summary["acceptance"].isin(sources)]
    data = data[["pair", "acceptance", "policy", "n", metric, f"{metric}_low", f"{metric}_high"]].copy()
    pairs = list(dict.fromkeys(data["pair"]))
    policies = list(dict.fromkeys(data.sort_values(metric)["policy"]))
    accs = list(dict.fromkeys(data["acceptance"]))
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs) + 1, 0.28 * len(policies) * len(accs) + 1.6),
                             sharey=True, squeeze=False)
    palette = dict(zip(accs, sns.color_palette("deep", len(accs))))
    height = 0.8 / max(len(accs), 1)
    for ax, pair in zip(axes[0], pairs):
        part = data[data["pair"] == pair]
        for j, acc in enumerate(accs):
            sub = part[part["acceptance"] == acc].set_index("policy").reindex(policies)
            y = np.arange(len(policies)) - 0.4 + height * (j + 0.5)
            err = np.vstack([sub[metric] - sub[f"{metric}_low"], sub[f"{metric}_high"] - sub[metric]])
            ax.barh(y, sub[metric], height=height, color=palette[acc], label=_short(acc, 34),
                    xerr=np.nan_to_num(err), error_kw={"lw": 0.8, "capsize": 1.5})
        ax.set_yticks(np.arange(len(policies)), policies)
        ax.invert_yaxis()
        ax.set_title(pair, fontsize=10)
        ax.set_xlabel(_label(metric))
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="acceptance",
                       title_fontsize=7, frameon=False)
    fig.tight_layout()
    return fig, data.reset_index(drop=True)


#: Colour scale of the reduction heatmaps: the median of |reduction|, at least 5 %, so that one
#: policy far off (no batching, say) does not wash out the differences between the others; labels are exact.
HEATMAP_QUANTILE = 0.5


def reduction_heatmap(reductions: pd.DataFrame, baseline: str):
    """Mean reduction of makespan against ``baseline`` (%): acceptance source × policy, one panel per pair."""
    plt, sns = _setup()
    data = reductions[(reductions["baseline"] == baseline) & (reductions["policy"] != baseline)].copy()
    pairs = list(dict.fromkeys(data["pair"]))
    grids = [data[data["pair"] == p].pivot_table(index="acceptance", columns="policy", values="reduction",
                                                 aggfunc="mean") * 100 for p in pairs]
    values = np.abs(np.concatenate([g.to_numpy().ravel() for g in grids])) if grids else np.array([1.0])
    values = values[np.isfinite(values)]
    lim = max(5.0, float(np.quantile(values, HEATMAP_QUANTILE))) if values.size else 5.0
    rows = max((g.shape[0] for g in grids), default=1)
    cols = max((g.shape[1] for g in grids), default=1)
    fig, axes = plt.subplots(len(pairs), 1, figsize=(0.85 * cols + 4.5, len(pairs) * (0.3 * rows + 1.6)),
                             squeeze=False)
    for n, (ax, pair, grid) in enumerate(zip(axes[:, 0], pairs, grids)):
        with _library_deprecations_silenced():
            sns.heatmap(grid, annot=True, fmt=".1f", cmap="RdBu", center=0, vmin=-lim, vmax=lim, ax=ax,
                        annot_kws={"fontsize": 7}, cbar_kws={"label": f"vs {baseline} (%)", "extend": "both"})
        ax.set_title(pair, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=35, labelsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if n < len(pairs) - 1:
            ax.set_xticklabels([])
    fig.tight_layout()
    return fig, data.reset_index(drop=True)


#: A sweep panel switches to a log y axis when its largest value is this many times its smallest.
LOG_SCALE_RATIO = 20.0


def sweep_lines(summary: pd.DataFrame, x: str, metric: str = "makespan_s", hue: str = "policy",
                col: str = "pair", x_scale: float = 1.0, x_label: str | None = None):
    """``metric`` against the sweep axis ``x`` with its interval band, hue = policy, one panel per pair."""
    plt, sns = _setup()
    data = summary.copy()
    xs = f"{x}_plot" if x_scale != 1.0 else x
    if x_scale != 1.0:
        data[xs] = data[x] * x_scale
    cols = list(dict.fromkeys(data[col]))
    fig, axes = plt.subplots(1, len(cols), figsize=(4.3 * len(cols) + 0.8, 3.6), squeeze=False)
    hues = list(dict.fromkeys(data[hue]))
    palette = dict(zip(hues, sns.color_palette("deep", len(hues))))
    for ax, value in zip(axes[0], cols):
        part = data[data[col] == value].sort_values(xs)
        for h in hues:
            sub = part[part[hue] == h]
            if sub.empty:
                continue
            ax.plot(sub[xs], sub[metric], marker="o", ms=3.5, color=palette[h], label=h)
            if (sub[f"{metric}_high"] > sub[f"{metric}_low"]).any():
                ax.fill_between(sub[xs], sub[f"{metric}_low"], sub[f"{metric}_high"], color=palette[h], alpha=0.18)
        ax.set_title(str(value), fontsize=10)
        ax.set_xlabel(x_label or _label(x))
        ax.set_ylabel(_label(metric))
        positive = part[metric][part[metric] > 0]
        if positive.size and positive.max() / positive.min() > LOG_SCALE_RATIO:
            ax.set_yscale("log")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=8,
               bbox_to_anchor=(0.5, 1.08), frameon=False)
    fig.tight_layout()
    return fig, data.drop(columns=[xs] if xs != x else []).reset_index(drop=True)


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
    with _library_deprecations_silenced():
        sns.boxplot(data, y="policy", x="gap_pct", ax=ax, color="#dde6f2", fliersize=0)
    sns.stripplot(data, y="policy", x="gap_pct", ax=ax, size=3.5, color="#2a5db0", alpha=0.7)
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
        sns.boxplot(data, y="policy", x="plan_ms", order=order, ax=ax, color="#dde6f2", fliersize=2)
    ax.set_xscale("log")
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
