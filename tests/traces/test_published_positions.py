"""Datasets derived from published per-position acceptance reproduce it and are honest about their provenance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tree_digest

from specedge.cli import main
from specedge.traces import stats
from specedge.traces.published_positions import FIGURES, LLAMACPP_24536, VLLM_48892, PublishedSurvival, \
    accepted_from_uniform, \
    draw_rounds, metadata
from specedge.traces.store import open_store


def test_inversion_by_hand():
    s = (0.8, 0.6, 0.4)
    # u < S(i) counts the positions accepted: 0.0 -> 3, 0.5 -> 2 (0.5 < 0.8, 0.6), 0.7 -> 1, 0.9 -> 0
    assert accepted_from_uniform(np.array([0.0, 0.5, 0.7, 0.9]), s).tolist() == [3, 2, 1, 0]


@pytest.mark.parametrize("figure", FIGURES, ids=lambda f: f.dataset_id)
def test_rounds_reproduce_the_published_survival(figure):
    frame = draw_rounds(figure, seed=3)
    assert set(frame["drafted"]) == {len(figure.survival)}
    n = len(frame)
    for i, published in enumerate(figure.survival, start=1):
        observed = float((frame["accepted"] >= i).mean())
        se = np.sqrt(published * (1 - published) / n)
        assert abs(observed - published) < 4 * se, (i, observed, published)
    # conditional rates S(i) / S(i - 1), which differ by position (vLLM's rise from 0.76 to 0.87)
    expected = np.asarray(figure.survival) / np.r_[1.0, figure.survival[:-1]]
    np.testing.assert_allclose(stats.conditional_alpha(frame), expected, atol=0.03)


def test_vllm_numbers_agree_with_the_counts_published_beside_them():
    # Same comment of vLLM PR #48892: 11,043 drafts, 38,611 accepted tokens, acceptance length 4.50.
    assert VLLM_48892.tau == pytest.approx(1 + 38611 / 11043, abs=5e-4)
    assert round(VLLM_48892.tau, 2) == 4.50 == VLLM_48892.published_tau
    assert len(VLLM_48892.survival) == 8


def test_llamacpp_numbers_agree_with_the_counts_published_beside_them():
    # Same comment of llama.cpp PR #24536: 87 drafts, 167 accepted tokens, 70 drafts with any accepted, length 2.92.
    assert [round(s * 87) for s in LLAMACPP_24536.survival] == [70, 55, 42]
    assert sum(round(s * 87) for s in LLAMACPP_24536.survival) == 167
    assert LLAMACPP_24536.tau == pytest.approx(1 + 167 / 87, abs=1e-3)
    assert round(1 + 167 / 87, 2) == 2.92 == LLAMACPP_24536.published_tau


def test_metadata_says_what_was_checked():
    for i, figure in enumerate(FIGURES):
        meta = metadata(figure, seed=i)
        assert meta["source"] == "derived-from-published" and meta["citation"] and meta["seed"] == i
        assert "SYNTHETIC" in meta["note"] and meta["generator"]
        assert not str(meta["generator_module"]).startswith("/")
        if figure.checked:
            assert "checked" in meta["check_note"] and "NOT" not in meta["note"]
        else:
            assert meta["check_note"].startswith("NOT CHECKED") and "NOT checked" in meta["note"]
    assert [f.checked for f in FIGURES] == [True, True, False]


def test_bad_survival_is_refused():
    with pytest.raises(ValueError, match="non-increasing"):
        PublishedSurvival("x", "c", "u", "d", "t", "k", 0.0, (0.5, 0.6), True, "")


def test_cli_writes_new_datasets_and_refuses_to_overwrite(tmp_path, capsys):
    root = tmp_path / "store"
    assert main(["traces", "derive-published-positions", "--only", "published-llamacpp-eagle3",
                 "--store", str(root)]) == 0
    assert {i.id for i in open_store(root).list()} == {"published-llamacpp-eagle3"}
    before = tree_digest(root, include_hidden=False)
    assert main(["traces", "derive-published-positions", "--store", str(root)]) == 2
    assert main(["traces", "derive-published-positions", "--only", "nope", "--store", str(root)]) == 2
    assert "nope" in capsys.readouterr().err
    assert tree_digest(root, include_hidden=False) == before
