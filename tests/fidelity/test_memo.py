"""fidelity.memo: the study's store snapshot and the MeasuredCompute memo give the store's answers, computed once,
and compute again when a dataset (its checksum) or an argument changes (on a copy of the shipped store)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import memo
from specedge.fidelity.compare import compare_run
from specedge.provenance import REPO_ROOT
from specedge.traces.store import open_store

SHIPPED = REPO_ROOT / "traces"


@pytest.fixture()
def store(tmp_path):
    if not (SHIPPED / "catalog.json").is_file():
        pytest.skip("needs the shipped trace store")
    shutil.copytree(SHIPPED, tmp_path / "traces")
    return open_store(tmp_path / "traces")


def _a_grid(st):
    """(compute dataset id, its model's card) of a grid the fidelity predictors use."""
    from specedge.latency.cards import load_model_card

    for info in st.list():
        if info.kind == "compute" and info.metadata.get("model"):
            try:
                return info.id, load_model_card(info.metadata["model"])
            except Exception:  # a model without a card in this checkout
                continue
    pytest.skip("no compute grid of a known model")


def _replace_with_slower(st, dataset_id):
    """A new version of ``dataset_id`` with every latency doubled (new checksum, same id)."""
    info = st.info(dataset_id)
    frame = st.read(dataset_id)
    frame["latency_ms"] = frame["latency_ms"] * 2.0
    st.write(frame, dataset_id, kind=info.kind, metadata=info.metadata, replace=True)
    assert st.info(dataset_id).checksum != info.checksum


def test_snapshot_reads_once_returns_copies_and_rereads_a_replaced_dataset(store, monkeypatch):
    snap = memo.snapshot(store)
    assert memo.snapshot(snap) is snap and snap.root == store.root
    grid, _ = _a_grid(store)
    calls = []
    real_read = type(store).read
    monkeypatch.setattr(type(store), "read", lambda self, *a, **k: calls.append(a[0]) or real_read(self, *a, **k))
    first = snap.read(grid)
    pd.testing.assert_frame_equal(first, real_read(store, grid))
    first["latency_ms"] = -1.0  # a caller changing its frame does not change the next caller's
    second = snap.read(grid)
    assert (second["latency_ms"] > 0).all()
    assert calls.count(grid) == 1, "decoded once"
    assert [i.id for i in snap.list()] == [i.id for i in store.list()]
    assert snap.info(grid) is snap.info(grid)

    before = second["latency_ms"].to_numpy()
    _replace_with_slower(store, grid)
    assert snap.info(grid).checksum == store.info(grid).checksum
    np.testing.assert_array_equal(snap.read(grid)["latency_ms"].to_numpy(), before * 2.0)
    assert calls.count(grid) == 3  # the replacement's own read-back here, then the snapshot's new read


def test_measured_compute_is_shared_and_rebuilt_for_new_data_or_arguments(store):
    from specedge.fidelity.predictors import compute_rows
    from specedge.latency.compute import MeasuredCompute

    memo._MEASURED.clear()
    grid, card = _a_grid(store)
    snap = memo.snapshot(store)
    a = memo.measured_compute(snap, grid, card, allow_extrapolation=True, source=grid)
    assert memo.measured_compute(snap, grid, card, allow_extrapolation=True, source=grid) is a
    fresh = MeasuredCompute.from_trace(card, compute_rows(store, grid, card.name), allow_extrapolation=True,
                                       source=grid)
    q = (np.array([1.0, 2.0]), np.array([1.0, 3.0]), np.array([0.0, 40.0]))
    np.testing.assert_array_equal(a.latency_s(*q), fresh.latency_s(*q))
    # another argument: another predictor
    b = memo.measured_compute(snap, grid, card, allow_extrapolation=False, source=grid)
    assert b is not a and b.allow_extrapolation is False
    c = memo.measured_compute(snap, grid, card, allow_extrapolation=True, source="other")
    assert c is not a and c.source == "other"
    # a new version of the grid (new checksum): rebuilt from the new data
    _replace_with_slower(store, grid)
    d = memo.measured_compute(snap, grid, card, allow_extrapolation=True, source=grid)
    assert d is not a
    np.testing.assert_allclose(d.latency_s(*q), 2.0 * a.latency_s(*q), rtol=1e-12)


def test_study_through_the_snapshot_equals_compare_run_on_the_plain_store(store):
    from specedge.fidelity.repeats import FidelityStudy, predict_before_running

    runs = sorted(i.id for i in store.list() if i.kind == "run" and not i.metadata.get("online")
                  and i.metadata.get("pair") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m")[-2:]
    if len(runs) < 2:
        pytest.skip("needs two shipped stdlib runs")
    memo._MEASURED.clear()
    study = FidelityStudy(store, run_ids=runs)
    assert isinstance(study.store, memo.StoreSnapshot)
    for rid in runs:
        plain = compare_run(rid, store=store)
        pd.testing.assert_frame_equal(study.results[rid].table, plain.table, check_exact=True)
        pd.testing.assert_frame_equal(study.results[rid].tasks, plain.tasks, check_exact=True)
        recorded = predict_before_running(rid, store=store)
        if recorded is not None:
            pd.testing.assert_frame_equal(study.recorded[rid].table, recorded.table, check_exact=True)
