"""Axis and label helpers shared by the report's figures: log axes with readable ticks, integer ticks, panel
titles that wrap instead of being cut, numbers without a "-0.0".

A panel switches to a log axis when its positive values span more than :data:`LOG_SCALE_RATIO` (max / min); its
ticks are then 1, 2 and 5 times the powers of ten, labelled as plain numbers, so that a reader of a log axis
that covers less than two decades still sees several labelled ticks.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np

#: A panel's axis switches to log scale when its largest positive value is this many times its smallest.
LOG_SCALE_RATIO = 20.0


def spans_decades(values, ratio: float = LOG_SCALE_RATIO) -> bool:
    """Whether the positive finite ``values`` span more than ``ratio`` (max / min)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return bool(v.size) and float(v.max() / v.min()) > ratio


def plain_number(value: float, _pos=None) -> str:
    """A tick label: 0.05, 2, 500, 2k, 10k (never 10^3 notation, never "-0")."""
    if value == 0 or not np.isfinite(value):
        return "0"
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return signless_zero(f"{value:g}")


#: A log axis spanning at most this many decades is ticked at 1, 2, 5 × 10^k; a wider one at 10^k only.
DENSE_TICK_DECADES = 2.5


def log_axis(ax, axis: str = "y") -> None:
    """Log scale on ``axis`` (call after plotting), ticks at 1, 2, 5 × 10^k labelled as plain numbers, or at 10^k
    only when the axis spans more than :data:`DENSE_TICK_DECADES` decades (so that labels never collide)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    subs = (1.0, 2.0, 5.0) if decades <= DENSE_TICK_DECADES else (1.0,)
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(plain_number))
    target.set_minor_formatter(NullFormatter())


def log_if_decades(ax, values, axis: str = "y", ratio: float = LOG_SCALE_RATIO) -> bool:
    """:func:`log_axis` when ``values`` span more than ``ratio``; returns whether it did."""
    if spans_decades(values, ratio):
        log_axis(ax, axis)
        return True
    return False


def integer_ticks(ax, axis: str = "x") -> None:
    """Only whole-number ticks on ``axis`` (counts: accepted tokens, batches, l)."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def wrap_title(name: str, width: int = 28, max_lines: int = 3) -> str:
    """``name`` broken after '-', '/', '·' or spaces into lines of at most ``width`` characters (never cut at the
    front: the start of a dataset id says what it is); only a name longer than ``max_lines`` lines loses its
    middle, marked with '…'."""
    parts = re.split(r"(?<=[-/·_ ])", str(name))
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        while len(part) > width:  # one unbreakable piece longer than a line
            lines.append(part[:width])
            part = part[width:]
        line += part
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + ["…" + lines[-1]]
    return "\n".join(textwrap.dedent(x).strip() for x in lines)


def signless_zero(text: str) -> str:
    """"-0", "-0.0", "-0.00" (a negative number rounded to zero) without its minus sign."""
    return text[1:] if re.fullmatch(r"-0(\.0*)?(e[+-]?\d+)?%?", text) else text


def fmt(value: float, spec: str = ".1f") -> str:
    """``format(value, spec)`` without a "-0.0"; NaN as an en dash."""
    if value != value:
        return "–"
    return signless_zero(format(value, spec))


#: Below this |difference| (percent) a difference axis stays linear; above it the axis is symmetric-log.
SYMLOG_ABOVE_PCT = 100.0
#: Linear range of a symmetric-log difference axis, percent (differences this small stay readable).
SYMLOG_LINEAR_PCT = 5.0


#: A difference axis goes symmetric-log only if some series stays within this many percent of the reference
#: (it would be squashed flat next to one above :data:`SYMLOG_ABOVE_PCT`).
SYMLOG_SMALL_PCT = 10.0


def difference_axis(ax, values, axis: str = "y", series_max=None) -> bool:
    """A percent-difference axis: linear unless some |value| exceeds :data:`SYMLOG_ABOVE_PCT` while a series stays
    within :data:`SYMLOG_SMALL_PCT` (``series_max``: the largest |difference| of each compared series; None = do
    not check); then symmetric-log with a linear part of ±:data:`SYMLOG_LINEAR_PCT`, so that a 2% gap stays
    visible next to a 600% one."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size or np.abs(v).max() <= SYMLOG_ABOVE_PCT:
        return False
    if series_max is not None:
        small = np.asarray(series_max, dtype=np.float64)
        if not (small[np.isfinite(small)] <= SYMLOG_SMALL_PCT).any():
            return False
    (ax.set_yscale if axis == "y" else ax.set_xscale)("symlog", linthresh=SYMLOG_LINEAR_PCT, linscale=1.0)
    target = ax.yaxis if axis == "y" else ax.xaxis
    top = int(np.ceil(np.log10(np.abs(v).max())))
    lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    ticks = []
    for subs in ((1.0, 2.0, 5.0), (1.0,)):  # 1-2-5 ticks while they are few, decades otherwise
        marks = [m * 10.0**k for k in range(1, top + 1) for m in subs]
        ticks = sorted([-t for t in marks if -t >= lo * 1.05] + [0.0] + [t for t in marks if t <= hi * 1.05])
        if len(ticks) <= 5:
            break
    target.set_major_locator(FixedLocator(ticks))
    (ax.margins(y=0.08) if axis == "y" else ax.margins(x=0.08))
    target.set_major_formatter(FuncFormatter(plain_number))
    return True
