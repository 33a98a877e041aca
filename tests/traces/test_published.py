"""Datasets derived from published figures match their figure and say that they are synthetic."""

from __future__ import annotations

import numpy as np
import pytest

from specedge.cli import main
from specedge.traces import stats
from specedge.traces.published import DRAFTED_TOKENS, FIGURES, draw_rounds, metadata
from specedge.traces.store import open_store


@pytest.mark.parametrize("figure", FIGURES, ids=lambda f: f.dataset_id)
def test_rounds_match_the_published_figure(figure):
    frame = draw_rounds(figure, seed=1)
    alpha = figure.per_position_alpha()
    expected_tau = 1 + alpha * (1 - alpha**DRAFTED_TOKENS) / (1 - alpha)
    # Four standard errors of the mean committed tokens per round.
    tol = 4 * frame["accepted"].std() / np.sqrt(len(frame))
    assert abs(stats.tau(frame) - expected_tau) < tol
    if figure.tau is not None:
        assert abs(stats.tau(frame) - figure.tau) < tol + 0.005
    # i.i.d. positions: the conditional acceptance at the first positions is the per-position alpha.
    assert np.allclose(stats.conditional_alpha(frame)[:3], alpha, atol=0.02)


def test_metadata_is_honest_about_provenance():
    for figure in FIGURES:
        meta = metadata(figure, seed=0)
        assert meta["source"] == "derived-from-published"
        assert meta["citation"] and "SYNTHETIC" in meta["note"]


def test_cli_writes_all_published_datasets(tmp_path):
    assert main(["traces", "derive-published", "--store", str(tmp_path)]) == 0
    store = open_store(tmp_path)
    infos = {info.id: info for info in store.list()}
    assert set(infos) == {f.dataset_id for f in FIGURES}
    assert all(info.source == "derived-from-published" for info in infos.values())
    # A second run refuses to overwrite without --replace.
    assert main(["traces", "derive-published", "--store", str(tmp_path)]) == 2
