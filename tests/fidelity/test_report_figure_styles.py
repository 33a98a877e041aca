"""The fidelity figure gives every plan its own legend entry (colour, or colour + marker once colours run out), and
the rank figure's panel titles carry the rank target's ceiling without running off the figure."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from specedge.fidelity.rank_report import ceiling_text, rank_figure
from specedge.fidelity.report import PLAN_MARKERS, fidelity_figure

STDLIB, SMOL = "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", "smollm2-draft-7.1m/smollm2-135m"


def _result(policy, pair, sizes, ls, scale=1.0):
    tasks = pd.DataFrame({"predictor": ["affine", "affine", "measured"], "measured_s": [scale, 2 * scale, scale],
                          "predicted_s": [1.1 * scale, 1.9 * scale, scale]})
    return SimpleNamespace(run={"policy": policy, "pair": pair,
                                "plan": {"batch_sizes": sizes, "speculation_length": ls}}, tasks=tasks)


def _plan_entries(fig):
    """(label, colour, marker) of each plan's legend entry: the markers before the legend's "pair" heading (with
    one marker per plan seaborn merges hue and style into one list and writes no "plan" heading)."""
    (legend,) = fig.legends
    entries = []
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        label = text.get_text()
        if label == "pair":
            break
        if label != "plan" and hasattr(handle, "get_marker"):  # not the heading, not the ±10% band's patch
            entries.append((label, to_hex(handle.get_markerfacecolor()), handle.get_marker()))
    return entries


# the shipped store's plans: dp-refined made one plan per pair (both were red), no-batching too (both brown)
SHIPPED = [_result("dp-refined", STDLIB, [10, 14], [4, 5]), _result("dp-refined", SMOL, [8], [1], 30.0),
           _result("no-batching", STDLIB, [1] * 24, [4]), _result("no-batching", SMOL, [1] * 8, [1], 30.0),
           _result("static-batching", STDLIB, [8] * 3, [4]), _result("heuristic-batching", SMOL, [4] * 2, [1], 30.0),
           _result("sd-serial", SMOL, [8], [1], 30.0), _result(None, STDLIB, [6] * 4, [2, 3, 4, 5]),
           _result(None, STDLIB, [12] * 2, [3]), _result(None, SMOL, [4] * 2, [2], 30.0)]
# more plans than the figure has colours: three policies' plans and hand-written ones, 45 in all
MANY = ([_result(p, STDLIB, [k] * 2, [k % 5 + 1]) for p in ("dp-refined", "paper-dp", "max-batching")
         for k in range(1, 8)] + [_result(None, SMOL, [k] * 3, [2], 30.0) for k in range(1, 25)])


@pytest.mark.parametrize("results", [SHIPPED, MANY], ids=["shipped-plans", "more-plans-than-colours"])
def test_fidelity_figure_gives_every_plan_its_own_colour_and_marker(results):
    fig = fidelity_figure(results=results)
    entries = _plan_entries(fig)
    plans = {e[0] for e in entries}
    assert len(entries) == len(plans) == len(results)  # one entry per plan
    styles = [(c, m) for _, c, m in entries]
    assert len(set(styles)) == len(styles), sorted(styles)  # no two plans drawn alike
    if results is SHIPPED:  # colours suffice: one marker for all plans, the marker left to tell the pairs apart
        assert len({c for c, _ in styles}) == len(styles) and {m for _, m in styles} == {PLAN_MARKERS[0]}
        by_label = {label: c for label, c, _ in entries}
        assert by_label["dp-refined · 10+14 l=4,5"] == "#d62728"  # the first plan of a policy keeps its colour
    else:
        assert len({m for _, m in styles}) > 1


SHORT = {"tau_ceiling_median": 0.8666, "p_tau_at_least_target": 0.438}


def _entry(pair, noise):
    plans = [{"policy": f"plan {i}", "run_ids": [f"r{i}"], "noisy": False, "predicted_makespan_s": m,
              "measured_makespan_s": m * 1.05} for i, m in enumerate((2.7, 2.9, 3.0, 3.2, 3.9, 6.2))]
    return {"pair": pair, "session": "20261130T213820", "kendall_tau": 0.87, "same_best": False, "plans": plans,
            "repeat_tau": 0.87, "kendall_tau_resolved": 1.0, "resolved_pairs": 9, "discordant_resolved": 0,
            "unresolved_pairs": 6, **noise}


def test_rank_figure_titles_carry_the_ceiling_and_stay_on_the_figure():
    rank = [_entry(STDLIB, SHORT), _entry(SMOL, {"p_tau_at_least_target": None})]
    fig = rank_figure(rank)
    left, right = (ax.get_title() for ax in fig.axes[:2])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.bbox
    for ax in fig.axes[:2]:
        title = ax.title.get_window_extent(canvas.get_renderer())
        assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1  # nothing clipped
        assert not title.overlaps(ax.get_window_extent(canvas.get_renderer()))  # the title sits above the panel
    assert ceiling_text(rank[0]) == "ceiling: τ ≥ 0.9 in 44 % of resamples"
    assert "ceiling: τ ≥ 0.9 in 44 % of resamples" in left.splitlines()
    assert "repeat τ 0.87, τ resolved 1.00" in left.splitlines()
    assert "ceiling" not in right  # no ceiling recorded: no ceiling line
