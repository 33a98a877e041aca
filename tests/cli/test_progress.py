"""Progress lines of the long commands fit an 80-column terminal, with count and times still shown."""

from __future__ import annotations

import io

from rich.console import Console

from specedge.cli.report import ProgressBar, fit_label

LONG = "2. sweep: latency vs the maximum output length O_max, every policy, every pair (figure 5c)"


def _rendered(width: int, label: str, done: int, total: int) -> list[str]:
    term = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    with ProgressBar("report", console=term) as bar:
        bar.stage(label, total)
        bar(done, total)
        page = Console(file=io.StringIO(), width=width, record=True, color_system=None)
        page.print(bar._progress.make_tasks_table(bar._progress.tasks))
    return [line for line in page.export_text().splitlines() if line.strip()]


def test_a_long_stage_label_leaves_room_for_count_and_times():
    assert len(LONG) > 70
    for width in (80, 100):
        lines = _rendered(width, LONG, 1234, 2100)
        assert len(lines) == 1, lines
        line = lines[0]
        assert len(line) <= width
        assert "1234/2100" in line and line.startswith("2. sweep: latency")
        assert line.count(":") >= 3  # elapsed and remaining times are there


def test_fit_label():
    assert fit_label("short", 20) == "short"
    cut = fit_label(LONG, 30)
    assert len(cut) == 30 and cut.endswith("…") and LONG.startswith(cut[:-1])
