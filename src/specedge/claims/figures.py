"""Figures of the claims audit, each returning ``(figure, data table)`` like :mod:`specedge.report.figures`.

- :func:`tornado`: per claim, the change of specedge's number (percentage points) when each [A] parameter moves
  x0.5 and x2, parameters sorted by their largest effect over all claims;
- :func:`loo_figure`: per claim, the paper's number, the preset's, the joint fit's and the leave-one-out
  prediction.
"""

from __future__ import annotations

import pandas as pd

from specedge.report.axes import wrap_title
from specedge.report.figures import MAX_WIDTH_IN

#: Claims per row of the tornado's grid.
TORNADO_COLS = 4
#: Bar colours of the tornado: greys, light for halved and dark for doubled, so that no bar reads as one of the
#: report's policy colours (:mod:`specedge.report.palette`).
FACTOR_COLOURS = {"x0.5": "#a3a3a3", "x2": "#3a3a3a"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def _short(claim: str) -> str:
    return (claim.replace("optimal vs uniform bandwidth", "bandwidth").replace("tinyllama-", "")
            .replace("llama-", "").replace("DP vs heuristic batching", "DP vs heuristic")
            .replace("pipeline vs no pipeline", "pipeline"))


def tornado(sens: pd.DataFrame, *, title: str = "", max_parameters: int = 10):
    """One panel per claim: horizontal bars of ``change_pp`` for x0.5 (and -3 dB) and x2 (+3 dB)."""
    plt, sns = _plt()
    data = sens[sens["factor"].isin(["x0.5", "x2"])].copy()
    size = data.assign(a=data["change_pp"].abs()).groupby("parameter")["a"].max().sort_values(ascending=False)
    keep = size.index[:max_parameters].tolist()
    data = data[data["parameter"].isin(keep)]
    claims = list(dict.fromkeys(data["claim"]))
    ncols = min(TORNADO_COLS, len(claims))
    nrows = -(-len(claims) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, 0.2 * len(keep) * nrows + 1.0 * nrows + 0.4),
                             sharey=True, sharex=True, squeeze=False)
    limit = max(1.0, float(data["change_pp"].abs().max()) * 1.08)
    colors = FACTOR_COLOURS
    for ax, claim in zip(axes.flat, claims):
        part = data[data["claim"] == claim]
        for factor, offset in (("x0.5", -0.2), ("x2", 0.2)):
            sub = part[part["factor"] == factor].set_index("parameter").reindex(keep)
            ax.barh([i + offset for i in range(len(keep))], sub["change_pp"].fillna(0.0), height=0.38,
                    color=colors[factor], label=f"{factor} (dB: {'-' if factor == 'x0.5' else '+'}3 dB)")
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_yticks(range(len(keep)), keep, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(-limit, limit)
        ax.set_title(wrap_title(_short(claim), width=34), fontsize=8)
        ax.tick_params(axis="x", labelsize=7, labelbottom=True)
        ax.set_xlabel("change (points)", fontsize=7)
    for ax in list(axes.flat)[len(claims):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.035, 1, 0.97))
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, data.reset_index(drop=True)


def loo_figure(audits: pd.DataFrame):
    """Per claim and preset: paper, preset, joint fit and leave-one-out prediction (percent change of latency)."""
    plt, sns = _plt()
    cols = {"paper": "paper", "specedge": "preset", "joint_fit": "joint fit (all claims)",
            "loo_prediction": "leave-one-out prediction"}
    long = audits.melt(id_vars=["claim", "preset"], value_vars=list(cols), var_name="source", value_name="change_pct")
    long["source"] = long["source"].map(cols)
    long["claim"] = long["claim"].map(_short)
    long = long[long["change_pct"].notna()]  # no leave-one-out markers when it was not computed
    presets = list(dict.fromkeys(long["preset"]))
    fig, axes = plt.subplots(1, len(presets), figsize=(min(5.2 * len(presets) + 1.0, MAX_WIDTH_IN),
                                                       0.55 * audits["claim"].nunique()
                                                         + 1.6), sharey=True, squeeze=False)
    palette = dict(zip(cols.values(), ["#222222", "#2a5db0", "#8fb339", "#d1495b"]))
    order = [c for c in cols.values() if c in set(long["source"])]
    for ax, preset in zip(axes.flat, presets):
        part = long[long["preset"] == preset]
        sns.stripplot(part, y="claim", x="change_pct", hue="source", ax=ax, jitter=False, dodge=True, size=6,
                      palette=[palette[c] for c in order], hue_order=order)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(f"preset {preset}", fontsize=9)
        ax.set_xlabel("latency change (%), negative = faster")
        ax.set_ylabel("")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig, long
