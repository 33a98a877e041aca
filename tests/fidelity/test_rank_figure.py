"""The rank-fidelity figure stays within the report's width cap and its plan labels never overlap."""

from __future__ import annotations

from specedge.fidelity.rank_report import rank_figure
from specedge.report.figures import MAX_WIDTH_IN


def _entry(pair, spans):
    return {"pair": pair, "kendall_tau": 0.87, "same_best": False,
            "plans": [{"policy": f"plan {i} with a long-ish name", "run_ids": [f"r{i}"], "noisy": i == 0,
                       "predicted_makespan_s": p, "measured_makespan_s": m} for i, (p, m) in enumerate(spans)]}


def test_rank_figure_width_and_labels():
    # near-equal makespans: the old scatter's annotations piled on top of each other here
    rank = [_entry("smollm2-draft-7.1m/smollm2-135m", [(45.6, 44.7), (45.7, 50.3), (45.65, 50.9), (70.0, 62.0)]),
            _entry("stdlib-bytegpt-0.3m/stdlib-bytegpt-3m", [(3.66, 3.92), (3.73, 3.94), (3.87, 4.67)])]
    fig = rank_figure(rank)
    assert fig.get_figwidth() <= MAX_WIDTH_IN
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text()]
        assert len(boxes) == len(ax.get_yticks())
        assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert any(t.get_text().endswith(" ×") for t in ax.get_yticklabels())  # noisy plans are marked
