"""Warnings the commands print on stderr, worded once so that every command that replays says the same thing."""

from __future__ import annotations


def extrapolation_warning(result) -> str | None:
    """The warning for a replay that ran rounds beyond the trace's recorded draft length, else None.

    ``result`` is a :class:`specedge.replay.ReplayResult` (``extrapolated`` and ``summary["extrapolated_rounds"]``).
    """
    if not getattr(result, "extrapolated", False):
        return None
    rounds = int(result.summary.get("extrapolated_rounds", 0))
    return (f"{rounds} round(s) replayed beyond the recorded draft length (acceptance extrapolated from the "
            "trace's alpha tail); plan with l at most the trace's draft length to avoid it")


def warn(message: str | None) -> None:
    """Print ``warning: message`` on stderr (nothing for None)."""
    if message:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=True).print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)
