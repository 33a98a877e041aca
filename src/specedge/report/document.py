"""The report as data: sections of text, tables and figures, saved to an output folder and rendered to one HTML.

Every table is written as CSV and Parquet under ``tables/``; every figure as PNG under ``figures/`` (and embedded
in the HTML as base64, so the HTML alone is the whole report), with its data table beside it. Section code builds
a :class:`Report` through :meth:`Section.table`, :meth:`Section.figure` and :meth:`Section.text`; :func:`render`
turns it into HTML with the jinja2 template ``templates/report.html.j2``.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: Rows of a table shown in the HTML (the CSV/Parquet files hold all of them).
MAX_HTML_ROWS = 60
#: A table with more rows than this is a download (CSV, Parquet) with a folded preview, not a wall on the page.
INLINE_ROWS = 25
#: Rows in the folded preview of a downloadable table.
PREVIEW_ROWS = 10
#: Resolution of the PNG figures.
FIGURE_DPI = 110


@dataclass
class Block:
    """One thing in a section: ``kind`` is ``text``, ``note``, ``table`` or ``figure``."""

    kind: str
    title: str = ""
    text: str = ""
    html: str = ""
    image_b64: str = ""
    files: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    shown_rows: int = 0
    table_html: str = ""
    inline: bool = True


@dataclass
class Section:
    """A numbered part of the report."""

    key: str
    title: str
    report: Report
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)

    def text(self, text: str) -> None:
        """A paragraph (plain text; blank lines separate paragraphs)."""
        self.blocks.append(Block("text", text=text))

    def note(self, text: str) -> None:
        """A highlighted remark (a caveat, a missing input, how to produce something)."""
        self.blocks.append(Block("note", text=text))

    def table(self, name: str, frame: pd.DataFrame, title: str = "", caption: str = "",
              inline: bool | None = None) -> Block:
        """Save ``frame`` as tables/<name>.csv and .parquet and show it: inline up to :data:`INLINE_ROWS` rows
        (or when ``inline`` is true), else as download links with a folded preview."""
        files = self.report.save_table(name, frame)
        inline = len(frame) <= INLINE_ROWS if inline is None else inline
        shown = min(len(frame), MAX_HTML_ROWS) if inline else min(len(frame), PREVIEW_ROWS)
        block = Block("table", title=title or name, text=caption, files=files, rows=len(frame), shown_rows=shown,
                      html=_table_html(frame, shown), inline=inline)
        self.blocks.append(block)
        return block

    def figure(self, name: str, result: tuple[Any, pd.DataFrame], title: str = "", caption: str = "") -> Block:
        """Save a figure function's (figure, data) as figures/<name>.png and tables/<name>-data.*; embed both."""
        fig, data = result
        png = self.report.save_figure(name, fig)
        files = {"png": f"figures/{name}.png", **self.report.save_table(f"{name}-data", data)}
        block = Block("figure", title=title or name, text=caption, files=files, rows=len(data),
                      shown_rows=min(len(data), MAX_HTML_ROWS), image_b64=base64.b64encode(png).decode("ascii"),
                      table_html=_table_html(data))
        self.blocks.append(block)
        return block


@dataclass
class Report:
    """An output folder and the sections written into it so far."""

    out: Path
    title: str
    meta: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        (self.out / "tables").mkdir(parents=True, exist_ok=True)
        (self.out / "figures").mkdir(parents=True, exist_ok=True)

    def section(self, key: str, title: str, intro: str = "") -> Section:
        sec = Section(key, title, self, intro)
        self.sections.append(sec)
        return sec

    def save_table(self, name: str, frame: pd.DataFrame) -> dict[str, str]:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(f"table name {name!r} is not a plain file name")
        if name in self.tables:
            raise ValueError(f"table {name!r} is written twice")
        frame = _plain(frame)
        self.tables[name] = frame
        csv = self.out / "tables" / f"{name}.csv"
        parquet = self.out / "tables" / f"{name}.parquet"
        frame.to_csv(csv, index=False)
        frame.to_parquet(parquet, index=False)
        return {"csv": f"tables/{name}.csv", "parquet": f"tables/{name}.parquet"}

    def save_figure(self, name: str, fig: Any) -> bytes:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
        plt.close(fig)
        png = buf.getvalue()
        (self.out / "figures" / f"{name}.png").write_bytes(png)
        return png


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with a flat string header and a default index (what CSV and Parquet both keep faithfully)."""
    frame = frame.copy()
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    frame.columns = [str(c) if not isinstance(c, tuple) else "_".join(str(x) for x in c if x != "") for c in
                     frame.columns]
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return frame


def _format(value: Any) -> str:
    """A table cell: 4 significant digits, 3 in scientific notation, "–" for NaN, never "-0"."""
    from specedge.report.axes import signless_zero

    if isinstance(value, float):
        if value != value:
            return "–"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return signless_zero(f"{value:.3g}")
        return signless_zero(f"{value:.4g}")
    return str(value)


#: A table with a text column longer than this (characters) wraps its cells and aligns them left.
TEXT_COLUMN_CHARS = 40


def _table_html(frame: pd.DataFrame, rows: int = MAX_HTML_ROWS) -> str:
    head = _plain(frame).head(rows)
    texts = [c for c in head.columns if head[c].dtype == object or pd.api.types.is_string_dtype(head[c])]
    wide = any(head[c].astype(str).str.len().max() > TEXT_COLUMN_CHARS for c in texts) if len(head) else False
    classes = "data text" if wide else "data"
    return head.to_html(index=False, border=0, classes=classes, na_rep="–", float_format=_format, escape=True)


def _inline(text: str):
    """Escape plain text, then turn `code` spans into <code> and **bold** spans into <b> elements."""
    import markupsafe

    escaped = str(markupsafe.escape(text or ""))
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return markupsafe.Markup(re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped))


def render(report: Report, template_name: str = "report.html.j2") -> Path:
    """Render the report to ``<out>/report.html`` and return its path."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("specedge.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inline"] = _inline
    env.filters["paragraphs"] = lambda text: [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    html = env.get_template(template_name).render(report=report, sections=report.sections, meta=report.meta)
    path = report.out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
