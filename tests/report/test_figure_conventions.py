"""The report's figure conventions (issue 15): one colour per policy everywhere, log axes where values span
decades, a difference-to-paper-dp panel in the sweeps, integer ticks on counts, titles that wrap, no "-0.0"."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from specedge.policies import available_policies
from specedge.report import axes as ax_
from specedge.report import figures, palette

matplotlib.use("Agg")


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def _line_colours(ax) -> dict[str, str]:
    return {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_every_registered_policy_has_its_own_colour_and_marker_pair():
    names = available_policies()
    styles = {n: palette.style(n) for n in names}
    assert len({s.colour for s in styles.values()}) == len(names)
    assert palette.style("fixed-l7") == palette.style("fixed-l")  # a preset takes its policy's style
    assert palette.style("paper-dp · iid · K=30") == palette.style("paper-dp")
    assert palette.style("my-own-policy") == palette.style("my-own-policy")  # stable for unknown names


def _sweep(policies, xs=(30, 60, 90), pairs=("p/a",), scale=None):
    rows = []
    for pair in pairs:
        for k, pol in enumerate(policies):
            for x in xs:
                m = (scale or {}).get(pol, 1.0 + 0.1 * k) * x
                rows.append({"pair": pair, "policy": pol, "tasks": x, "makespan_s": m, "makespan_s_low": m * 0.9,
                             "makespan_s_high": m * 1.1})
    return pd.DataFrame(rows)


def test_a_policy_has_the_same_colour_in_every_sweep():
    fig1, _ = figures.sweep_lines(_sweep(["paper-dp", "dp-refined", "max-batching"]), "tasks")
    fig2, _ = figures.sweep_lines(_sweep(["max-batching", "no-batching", "paper-dp"]), "tasks")
    c1, c2 = _line_colours(fig1.axes[0]), _line_colours(fig2.axes[0])
    for name in ("paper-dp", "max-batching"):
        assert c1[name] == c2[name] == palette.colour(name)
    _close(fig1)
    _close(fig2)


def test_sweep_difference_panel_is_the_ratio_to_paper_dp():
    data = _sweep(["paper-dp", "max-batching"], scale={"paper-dp": 2.0, "max-batching": 2.5})
    fig, table = figures.sweep_lines(data, "tasks")
    assert len(fig.axes) == 2  # the lines and, below them, the difference to paper-dp
    got = table.set_index(["policy", "tasks"])["difference_pct"]
    # 2.5 x / (2.0 x) - 1 = 25 %, written from the definition
    assert got.loc[("max-batching", 60)] == pytest.approx(25.0)
    assert got.loc[("paper-dp", 30)] == pytest.approx(0.0)
    _close(fig)
    fig, _ = figures.sweep_lines(_sweep(["ad", "max-batching"]), "tasks")
    assert len(fig.axes) == 1  # no paper-dp, no difference panel
    _close(fig)


def test_values_spanning_decades_get_a_log_axis_with_several_labels():
    # 30 .. 2,250: more than the 20x that switches to log, less than two decades (1-2-5 ticks needed)
    data = _sweep(["paper-dp", "no-batching"], scale={"paper-dp": 1.0, "no-batching": 25.0})
    fig, _ = figures.sweep_lines(data, "tasks")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert len(labels) >= 3 and all("10^" not in t and "$" not in t for t in labels)
    _close(fig)
    flat = _sweep(["paper-dp", "dp-refined"])
    fig, _ = figures.sweep_lines(flat, "tasks")
    assert fig.axes[0].get_yscale() == "linear"
    _close(fig)


def _comparison(values: dict[str, float]) -> pd.DataFrame:
    rows = []
    for pair in ("d/t1", "d/t2"):
        for acc in ("expected", "iid"):
            for pol, v in values.items():
                rows.append({"pair": pair, "acceptance": acc, "policy": pol, "n": 3, "makespan_s": v,
                             "makespan_s_low": v * 0.95, "makespan_s_high": v * 1.05})
    return pd.DataFrame(rows)


def test_policy_dots_use_policy_colours_and_a_log_axis_when_no_batching_dominates():
    fig, _ = figures.policy_bars(_comparison({"no-batching": 8000.0, "paper-dp": 60.0, "dp-refined": 55.0}))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    colours = {to_hex(line.get_color()) for line in ax.get_lines()}
    assert colours == {palette.colour(p) for p in ("no-batching", "paper-dp", "dp-refined")}
    assert fig.get_size_inches()[0] <= figures.MAX_WIDTH_IN + 1e-9
    _close(fig)
    fig, _ = figures.policy_bars(_comparison({"paper-dp": 60.0, "dp-refined": 55.0}))
    assert fig.axes[0].get_xscale() == "linear"
    _close(fig)


def test_heatmap_cells_never_read_minus_zero():
    red = pd.DataFrame({"baseline": "paper-dp", "pair": "d/t", "acceptance": ["expected", "iid"],
                        "policy": "dp-refined", "reduction": [-0.0001, 0.2]})
    fig, _ = figures.reduction_heatmap(red, "paper-dp")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.0" in texts and "-0.0" not in texts and "20.0" in texts
    _close(fig)


@pytest.mark.parametrize("figure", ["acceptance_histograms", "survival_vs_iid", "conditional_alpha"])
def test_count_axes_have_integer_ticks_and_full_titles(figure):
    # two draft positions: matplotlib's default locator would put ticks at 1.0, 1.25, 1.5, ...
    frame = pd.DataFrame({"drafted": [2] * 3, "accepted": [0, 1, 2], "count": [30, 20, 15]})
    name = "a-rather-long-dataset-identifier-that-would-be-cut-at-the-front"
    fig, _ = getattr(figures, figure)({name: frame})
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert ax.get_title().replace("\n", "") == name  # wrapped, nothing cut
    _close(fig)


@pytest.mark.parametrize(("text", "out"), [("-0.0", "0.0"), ("-0", "0"), ("-0.00%", "0.00%"), ("-0.1", "-0.1"),
                                           ("-10", "-10"), ("0.0", "0.0")])
def test_signless_zero(text, out):
    assert ax_.signless_zero(text) == out


def test_wrap_title_keeps_the_start_and_every_character():
    name = "compute-stdlib-bytegpt-0.3m-serve-20261128T221817 · stdlib-bytegpt-0.3m"
    wrapped = ax_.wrap_title(name, 28)
    assert all(len(line) <= 28 for line in wrapped.splitlines())
    assert wrapped.replace("\n", "").replace(" ", "") == name.replace(" ", "")
    assert wrapped.startswith("compute-stdlib")


def test_spans_decades():
    assert ax_.spans_decades([1.0, 100.0]) and not ax_.spans_decades([10.0, 100.0])
    assert not ax_.spans_decades([0.0, -5.0, np.nan])


def test_difference_axis_is_symlog_only_when_a_small_gap_would_be_squashed():
    one = _sweep(["paper-dp", "ad"], scale={"paper-dp": 1.0, "ad": 2.5})  # +150 % only
    fig, _ = figures.sweep_lines(one, "tasks")
    assert fig.axes[1].get_yscale() == "linear"
    _close(fig)
    mixed = _sweep(["paper-dp", "no-batching", "dp-refined"],
                   scale={"paper-dp": 1.0, "no-batching": 7.0, "dp-refined": 0.98})  # +600 % and -2 %
    fig, _ = figures.sweep_lines(mixed, "tasks")
    assert fig.axes[1].get_yscale() == "symlog"  # axes: the lines, then the difference panel
    _close(fig)
