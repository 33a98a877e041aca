"""The report's policy-result figures: the comparison's dot plots and heatmaps, the sweeps' lines with their
"difference to paper-dp" panel. Same conventions as :mod:`specedge.report.figures` (which re-exports them):
one colour per policy (:mod:`specedge.report.palette`), log axes where values span decades
(:mod:`specedge.report.axes`), at most ``MAX_WIDTH_IN`` inches wide.

Difference panel: d(series, x) = 100 · (m(series, x) / m(paper-dp, x) − 1) %, the paper-dp series being the one
with the same acceptance source and other axis values [A: a presentation choice, not a model].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from specedge.report import axes as ax_
from specedge.report import palette
from specedge.report.figures import MAX_WIDTH_IN, _label, _library_deprecations_silenced, _setup


#: The policy every policy figure draws a guide for (the paper's optimizer).
REFERENCE = "paper-dp"


def policy_bars(summary: pd.DataFrame, metric: str = "makespan_s", sources: Sequence[str] | None = None):
    """Mean ``metric`` per policy with its 95% interval, one panel per model pair: a dot per acceptance source
    (marker), in the policy's colour; a log axis when the policies span decades (no batching vs the rest)."""
    plt, sns = _setup()
    data = summary if sources is None else summary[summary["acceptance"].isin(sources)]
    data = data[["pair", "acceptance", "policy", "n", metric, f"{metric}_low", f"{metric}_high"]].copy()
    pairs = list(dict.fromkeys(data["pair"]))
    policies = list(data.groupby("policy")[metric].mean().sort_values().index)
    accs = list(dict.fromkeys(data["acceptance"]))
    markers = palette.acceptance_markers(accs)
    ncols = min(len(pairs), 3)
    nrows = -(-len(pairs) // ncols)
    height = max(0.34, 0.12 * len(accs)) * len(policies) + 1.3  # room for one marker per source in a row
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(3.3 * ncols + 1.9, MAX_WIDTH_IN), height * nrows + 0.5),
                             sharey=True, sharex=True, squeeze=False)
    step = 0.7 / max(len(accs), 1)
    log = ax_.spans_decades(data[[metric, f"{metric}_low", f"{metric}_high"]].to_numpy(), ratio=8.0)
    for n, ax in enumerate(axes.flat):
        if n >= len(pairs):
            ax.set_visible(False)
            continue
        part = data[data["pair"] == pairs[n]]
        for j, acc in enumerate(accs):
            sub = part[part["acceptance"] == acc].set_index("policy").reindex(policies)
            y = np.arange(len(policies)) - 0.35 + step * (j + 0.5)
            for k, pol in enumerate(policies):
                row = sub.loc[pol]
                if not np.isfinite(row[metric]):
                    continue
                c = palette.colour(pol)
                ax.plot([row[f"{metric}_low"], row[f"{metric}_high"]], [y[k], y[k]], color=c, lw=1.4, alpha=0.8)
                ax.plot(row[metric], y[k], marker=markers[acc], color=c, ms=5.5, mec="white", mew=0.5, ls="")
        ref = part[(part["policy"] == REFERENCE) & (part["acceptance"] == accs[0])][metric]
        if not ref.empty:  # a guide: the paper's optimizer on the first source
            ax.axvline(float(ref.iloc[0]), color=palette.colour(REFERENCE), lw=0.8, ls="--", alpha=0.6, zorder=0)
        ax.set_yticks(np.arange(len(policies)), policies)
        for tick, pol in zip(ax.get_yticklabels(), policies):
            tick.set_color(palette.text_colour(pol))
        ax.set_ylim(len(policies) - 0.5, -0.5)
        ax.set_title(pairs[n], fontsize=10)
        ax.set_xlabel(_label(metric) + (" (log scale)" if log else ""))
        if log:
            ax_.log_axis(ax, "x")
    handles = [plt.Line2D([], [], marker=markers[a], color="0.25", ls="", ms=6) for a in accs]
    labels = [ax_.wrap_title(a, 34, 2) for a in accs]
    if (data["policy"] == REFERENCE).any():
        handles.append(plt.Line2D([], [], color=palette.colour(REFERENCE), lw=0.8, ls="--"))
        labels.append(f"{REFERENCE}, {ax_.wrap_title(accs[0], 20, 1)}")
    fig.legend(handles, labels, title="acceptance source", fontsize=8,
               title_fontsize=8.5, loc="upper center", ncol=min(len(labels), 3), bbox_to_anchor=(0.5, 1.0),
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.14 + 0.09 * ((len(accs) - 1) // 3)) / (height * nrows + 0.5) * 2.2))
    return fig, data.reset_index(drop=True)


#: Colour scale of the reduction heatmaps: the median of |reduction|, at least 5 %, so that one
#: policy far off (no batching, say) does not wash out the differences between the others; labels are exact.
HEATMAP_QUANTILE = 0.5


def reduction_heatmap(reductions: pd.DataFrame, baseline: str):
    """Mean reduction of makespan against ``baseline`` (%): acceptance source × policy, one panel per pair."""
    plt, sns = _setup()
    data = reductions[(reductions["baseline"] == baseline) & (reductions["policy"] != baseline)].copy()
    pairs = list(dict.fromkeys(data["pair"]))
    grids = []
    for p in pairs:
        g = data[data["pair"] == p].pivot_table(index="acceptance", columns="policy", values="reduction",
                                                aggfunc="mean") * 100
        grids.append(g[palette.order(g.columns)])
    values = np.abs(np.concatenate([g.to_numpy().ravel() for g in grids])) if grids else np.array([1.0])
    values = values[np.isfinite(values)]
    lim = max(5.0, float(np.quantile(values, HEATMAP_QUANTILE))) if values.size else 5.0
    rows = max((g.shape[0] for g in grids), default=1)
    cols = max((g.shape[1] for g in grids), default=1)
    fig, axes = plt.subplots(len(pairs), 1, figsize=(min(0.8 * cols + 4.8, MAX_WIDTH_IN),
                                                     len(pairs) * (0.3 * rows + 1.6)), squeeze=False)
    for n, (ax, pair, grid) in enumerate(zip(axes[:, 0], pairs, grids)):
        labels = grid.map(lambda v: ax_.fmt(v, ".1f"))
        with _library_deprecations_silenced():
            sns.heatmap(grid, annot=labels, fmt="", cmap="RdBu", center=0, vmin=-lim, vmax=lim, ax=ax,
                        annot_kws={"fontsize": 7.5}, cbar_kws={"label": f"vs {baseline} (%)", "extend": "both"})
        ax.set_title(pair, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=35, labelsize=8)
        ax.tick_params(axis="y", labelsize=7.5)
        ax.set_yticklabels([ax_.wrap_title(t.get_text(), 30, 2) for t in ax.get_yticklabels()], rotation=0)
        for tick in ax.get_xticklabels():
            tick.set_color(palette.text_colour(tick.get_text()))
            tick.set_ha("right")
        if n < len(pairs) - 1:
            ax.set_xticklabels([])
    fig.tight_layout()
    return fig, data.reset_index(drop=True)


#: The reference of the sweeps' lower panel ("difference to paper-dp").
SWEEP_REFERENCE = "paper-dp"


def _sweep_difference(data: pd.DataFrame, x: str, metric: str, hue: str, col: str) -> pd.DataFrame:
    """Per series, panel and x: 100 · (metric / metric of the reference series − 1); the reference series is the
    one whose policy is :data:`SWEEP_REFERENCE` and whose other labels (acceptance, other axes) match."""
    d = data[[col, x, hue, metric]].copy()
    d["_policy"] = d[hue].map(palette.policy_of)
    d["_rest"] = d[hue].map(lambda s: str(s)[len(palette.policy_of(s)):])
    ref = d[d["_policy"] == SWEEP_REFERENCE][[col, x, "_rest", metric]].rename(columns={metric: "_ref"})
    out = d.merge(ref, on=[col, x, "_rest"], how="inner")
    out["difference_pct"] = 100.0 * (out[metric] / out["_ref"] - 1.0)
    return out[[col, x, hue, "difference_pct"]]


def sweep_lines(summary: pd.DataFrame, x: str, metric: str = "makespan_s", hue: str = "policy",
                col: str = "pair", x_scale: float = 1.0, x_label: str | None = None):
    """``metric`` against the sweep axis ``x`` with its interval band, one colour per policy, one panel per pair;
    when the sweep has paper-dp and other series, a lower row gives each series' difference to paper-dp (%), so
    that lines that overlap above can be told apart."""
    plt, sns = _setup()
    data = summary.copy()
    xs = f"{x}_plot" if x_scale != 1.0 else x
    if x_scale != 1.0:
        data[xs] = data[x] * x_scale
    cols = list(dict.fromkeys(data[col]))
    hues = palette.order(data[hue])
    policies_of = {h: palette.policy_of(h) for h in hues}
    with_diff = any(p == SWEEP_REFERENCE for p in policies_of.values()) and len(hues) > 1
    diff = _sweep_difference(data, x, metric, hue, col) if with_diff else None
    nrows = 2 if with_diff else 1
    fig, axes = plt.subplots(nrows, len(cols), figsize=(min(3.4 * len(cols) + 1.2, MAX_WIDTH_IN),
                                                        3.3 + (2.3 if with_diff else 0.0)),
                             squeeze=False, sharex="col", gridspec_kw={"height_ratios": [3, 2][:nrows]})
    # series of one policy differ by line style (acceptance source or another axis)
    variants: dict[str, int] = {}
    dashes = ["-", "--", ":", "-."]
    for h in hues:
        variants[h] = sum(1 for g in hues[: hues.index(h)] if policies_of[g] == policies_of[h])
    log = ax_.spans_decades(data[metric].to_numpy())
    for j, value in enumerate(cols):
        ax = axes[0][j]
        part = data[data[col] == value].sort_values(xs)
        for h in hues:
            sub = part[part[hue] == h]
            if sub.empty:
                continue
            st = palette.style(h)
            ls = st.linestyle if variants[h] == 0 else dashes[variants[h] % len(dashes)]
            ax.plot(sub[xs], sub[metric], marker=st.marker, ms=4.5, color=st.colour, ls=ls, lw=1.5, label=h,
                    alpha=0.9)
            if (sub[f"{metric}_high"] > sub[f"{metric}_low"]).any():
                ax.fill_between(sub[xs], sub[f"{metric}_low"], sub[f"{metric}_high"], color=st.colour, alpha=0.09,
                                lw=0)
        ax.set_title(str(value), fontsize=10)
        ax.set_ylabel(_label(metric) if j == 0 else "")
        if log:
            ax_.log_axis(ax, "y")
        if not with_diff:
            ax.set_xlabel(x_label or _label(x))
        else:
            dax = axes[1][j]
            dpart = diff[diff[col] == value].sort_values(x)
            for h in hues:
                sub = dpart[dpart[hue] == h]
                if sub.empty:
                    continue
                st = palette.style(h)
                ls = st.linestyle if variants[h] == 0 else dashes[variants[h] % len(dashes)]
                dax.plot(sub[x] * x_scale, sub["difference_pct"], marker=st.marker, ms=4.5, color=st.colour, ls=ls, lw=1.5)
            dax.axhline(0, color="0.3", lw=0.8)
            compared = diff[diff[hue].map(palette.policy_of) != SWEEP_REFERENCE]
            ax_.difference_axis(dax, diff["difference_pct"].to_numpy(),
                                series_max=compared.groupby(hue)["difference_pct"].apply(lambda d: d.abs().max()))
            dax.set_xlabel(x_label or _label(x))
            dax.set_ylabel(f"vs {SWEEP_REFERENCE} (%)" if j == 0 else "")
        ticks = np.sort(part[xs].unique())
        if ticks.size <= 8:
            axes[nrows - 1][j].set_xticks(ticks, [ax_.plain_number(t) for t in ticks])
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for hd, lb in zip(*ax.get_legend_handles_labels()):
            if lb not in labels:
                handles.append(hd)
                labels.append(lb)
    ncol = min(len(labels), 3 if max(len(lb) for lb in labels) > 24 else 5)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8.5, bbox_to_anchor=(0.5, 1.0),
               frameon=False, handlelength=2.6)
    fig.tight_layout()
    out = data.drop(columns=[xs] if xs != x else []).reset_index(drop=True)
    if diff is not None:
        out = out.merge(diff, on=[col, x, hue], how="left")
    return fig, out
