"""The report document: tables saved as CSV and Parquet, figures embedded with their data, HTML rendering."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from specedge.report import figures
from specedge.report.document import INLINE_ROWS, MAX_HTML_ROWS, PREVIEW_ROWS, Report, render


@pytest.fixture()
def report(tmp_path):
    return Report(tmp_path / "out", "a <test> report", meta={"specedge": "0"})


def test_tables_are_saved_as_csv_and_parquet_identically(report):
    frame = pd.DataFrame({"policy": ["a", "b"], "makespan_s": [1.5, 2.25], "n": [3, 4]})
    sec = report.section("s", "Section")
    block = sec.table("my-table", frame)
    assert block.files == {"csv": "tables/my-table.csv", "parquet": "tables/my-table.parquet"}
    assert pd.read_csv(report.out / block.files["csv"]).equals(frame)
    assert pd.read_parquet(report.out / block.files["parquet"]).equals(frame)


def test_a_table_name_is_written_once_and_must_be_a_plain_file_name(report):
    sec = report.section("s", "Section")
    sec.table("t", pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="twice"):
        sec.table("t", pd.DataFrame({"a": [2]}))
    with pytest.raises(ValueError, match="plain file name"):
        sec.table("../escape", pd.DataFrame({"a": [1]}))


def test_figure_is_embedded_saved_and_its_data_written(report):
    summary = pd.DataFrame({"pair": ["p"] * 4, "acceptance": ["expected"] * 4, "policy": ["a", "a", "b", "b"],
                            "alpha": [0.5, 0.9, 0.5, 0.9], "makespan_s": [3.0, 2.0, 4.0, 3.5],
                            "makespan_s_low": [2.5, 1.5, 4.0, 3.5], "makespan_s_high": [3.5, 2.5, 4.0, 3.5]})
    sec = report.section("s", "Section")
    block = sec.figure("sweep", figures.sweep_lines(summary, "alpha"))
    png = (report.out / "figures" / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert base64.b64decode(block.image_b64) == png
    data = pd.read_csv(report.out / block.files["csv"])
    assert data[["policy", "alpha", "makespan_s"]].equals(summary[["policy", "alpha", "makespan_s"]])


def test_render_escapes_text_keeps_code_spans_and_truncates_long_tables(report):
    sec = report.section("first", "First <section>", "Intro with `code` & <b>not bold</b>.")
    sec.note("a note")
    sec.table("long", pd.DataFrame({"i": range(MAX_HTML_ROWS + 5)}))
    path = render(report)
    html = path.read_text()
    assert path.name == "report.html"
    assert "<title>a &lt;test&gt; report</title>" in html
    assert "<code>code</code>" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    # a long table is a download with a folded preview, not a wall of rows
    assert f"{MAX_HTML_ROWS + 5} rows: download" in html
    assert 'href="#first"' in html and 'id="first"' in html
    assert len(re.findall(r"<tr[ >]", html)) == PREVIEW_ROWS + 1  # header + preview rows


def test_short_tables_inline_long_ones_forced_inline_are_cut(report):
    sec = report.section("s", "Section")
    short = sec.table("short", pd.DataFrame({"i": range(INLINE_ROWS)}))
    wall = sec.table("wall", pd.DataFrame({"i": range(INLINE_ROWS + 1)}))
    forced = sec.table("forced", pd.DataFrame({"i": range(MAX_HTML_ROWS + 3)}), inline=True)
    assert short.inline and not wall.inline and forced.inline
    assert wall.shown_rows == PREVIEW_ROWS and forced.shown_rows == MAX_HTML_ROWS
    html = render(report).read_text()
    assert f"showing {MAX_HTML_ROWS} of {MAX_HTML_ROWS + 3} rows" in html


def test_cells_never_show_minus_zero():
    from specedge.report.document import _format

    assert _format(-0.0) == "0"
    assert _format(-0.00004) == "-4e-05"
    assert _format(-1.23456) == "-1.235"
    frame = pd.DataFrame({"x": [-0.0, -1e-12, 0.5]})
    from specedge.report.document import _table_html

    assert ">-0<" not in _table_html(frame) and "-0.0" not in _table_html(frame)


def test_tables_with_long_text_wrap():
    from specedge.report.document import _table_html

    assert 'class="dataframe data text"' in _table_html(pd.DataFrame({"meaning": ["a long sentence " * 4]}))
    assert 'class="dataframe data"' in _table_html(pd.DataFrame({"x": [1.5], "name": ["short"]}))
