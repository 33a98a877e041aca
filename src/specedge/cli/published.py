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


@traces_app.command("derive-published-positions")
def derive_published_positions_cmd(
    seed: int = typer.Option(0, help="Dataset i uses seed 1000 + seed + i."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Write only this dataset id (repeatable)."),
    replace: bool = typer.Option(False, "--replace", help="Write new versions of datasets that already exist."),
    store: Optional[Path] = typer.Option(None, "--store", help="Trace store directory (default: $SPECEDGE_STORE or the repo's traces/)."),
) -> None:
    """Draw synthetic rounds matching published per-position acceptance S(i) (vLLM PR #48892 MTP-8 on GSM8K;
    llama.cpp PR #24536 EAGLE-3; ik_llama.cpp #2156 MTP on code).

    Labelled source=derived-from-published with citation, URL, generator, seed and whether the numbers were
    checked against their source (`checked`, `check_note`). They are not recordings.
    """
    from specedge.traces.published_positions import FIGURES, write_all
    from specedge.traces.store import open_store

    written = write_all(open_store(store), seed=seed, replace=replace, only=tuple(only or ()))
    Console().print(f"wrote {len(written)} of {len(FIGURES)} per-position derived-from-published datasets: "
                    + ", ".join(written))
