"""``specedge traces derive-published``: write the datasets derived from published acceptance figures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from specedge.cli.traces import traces_app


@traces_app.command("derive-published")
def derive_published_cmd(
    seed: int = typer.Option(0, help="Seed of the first dataset; dataset i uses seed + i."),
    replace: bool = typer.Option(False, "--replace", help="Write new versions of datasets that already exist."),
    store: Optional[Path] = typer.Option(None, "--store", help="Trace store directory (default: $SPECEDGE_STORE or the repo's traces/)."),
) -> None:
    """Draw synthetic rounds matching published figures (Leviathan et al. 2023 Table 2; Spec-Bench, Vicuna-7B).

    Each dataset is labelled source=derived-from-published with its citation, the figure it matches, the
    generator and the seed. They are not recordings.
    """
    from specedge.traces.published import FIGURES, write_all
    from specedge.traces.store import open_store

    written = write_all(open_store(store), seed=seed, replace=replace)
    Console().print(f"wrote {len(written)} derived-from-published datasets ({len(FIGURES)} figures)")
