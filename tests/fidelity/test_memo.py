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
    memo.clear()
    study = FidelityStudy(store, run_ids=runs)  # memos shared by both runs and both acceptances
    assert isinstance(study.store, memo.StoreSnapshot) and study.recorded
    for rid in runs:
        memo.clear()  # each fresh replay computes everything again, on the plain store
        plain = compare_run(rid, store=store)
        pd.testing.assert_frame_equal(study.results[rid].table, plain.table, check_exact=True)
        pd.testing.assert_frame_equal(study.results[rid].tasks, plain.tasks, check_exact=True)
        memo.clear()
        recorded = predict_before_running(rid, store=store)
        pd.testing.assert_frame_equal(study.recorded[rid].table, recorded.table, check_exact=True)
        pd.testing.assert_frame_equal(study.recorded[rid].tasks, recorded.tasks, check_exact=True)


def test_clear_empties_every_fidelity_memo():
    from specedge.fidelity import compare, contention

    caches = (compare._RECORDS_CACHE, contention._PASSES_CACHE, contention._SAMPLES_CACHE, memo._MEASURED,
              memo._BUILT)
    for i, cache in enumerate(caches):
        cache[("probe", i)] = i
    memo.clear()
    assert all(not cache for cache in caches)


def _scenario_and_rows(st):
    """A shipped stdlib run's scenario and the rows of its two compute traces."""
    from specedge.fidelity.compare import observed_acceptance, run_scenario
    from specedge.fidelity.predictors import compute_rows
    from specedge.serve.dataset import split_records

    runs = [i for i in st.list() if i.kind == "run" and not i.metadata.get("online")
            and (i.metadata.get("compute_traces") or {}).get("draft")]
    if not runs:
        pytest.skip("needs a shipped run that names its compute traces")
    info = runs[-1]
    parts = split_records(st.read(info.id))
    tasks = parts["task"].sort_values("task").reset_index(drop=True)
    sc = run_scenario(info.metadata, tasks, observed_acceptance(parts["round"], len(tasks)), store=st)
    traces = (info.metadata["compute_traces"]["draft"], info.metadata["compute_traces"]["verify"])
    return sc, traces, compute_rows(st, traces[0], sc.draft.name), compute_rows(st, traces[1], sc.target.name)


def test_build_predictors_is_shared_for_equal_rows_and_rebuilt_for_other_rows_or_arguments(store):
    from dataclasses import replace

    from specedge.fidelity.predictors import build_predictors

    memo._BUILT.clear()
    sc, traces, d, v = _scenario_and_rows(store)
    first = build_predictors(sc, d, v, sources=traces)
    again = build_predictors(sc, d.copy(), v.copy(), sources=traces)  # equal rows (another frame): shared
    assert [p.name for p in first] == ["affine", "roofline", "measured"]
    assert all(a is b for a, b in zip(first, again)) and first is not again
    slower = v.assign(latency_ms=v["latency_ms"] * 2.0)
    other = build_predictors(sc, d, slower, sources=traces)
    assert all(a is not b for a, b in zip(first, other))
    q = (np.array([1.0]), np.array([2.0]), np.array([30.0]))
    np.testing.assert_allclose(other[2].verify.latency_s(*q), 2.0 * first[2].verify.latency_s(*q), rtol=1e-12)
    assert build_predictors(sc, d, v, sources=("x", "y"))[2].draft.source == "x"
    assert [p.name for p in build_predictors(sc, d, v, names=("measured",), sources=traces)] == ["measured"]
    wider = replace(sc, params=replace(sc.params, kv_bytes_per_value=sc.params.kv_bytes_per_value * 2))
    assert build_predictors(wider, d, v, sources=traces)[1] is not first[1]  # roofline reads kv bytes


def test_pass_calibration_is_fitted_once_per_fit_runs_and_grid(store, monkeypatch):
    from specedge.fidelity import contention
    from specedge.fidelity.compare import _records
    from specedge.fidelity.predictors import build_predictors
    from specedge.plan import Plan
    from specedge.serve.dataset import split_records

    memo._BUILT.clear()
    sc, traces, d, v = _scenario_and_rows(store)
    base = build_predictors(sc, d, v, sources=traces)[2]
    named = [i for i in store.list() if i.kind == "run" and (i.metadata.get("compute_traces") or {}).get("draft")]
    runs = sorted(i.id for i in store.list() if i.kind == "run" and not i.metadata.get("online")
                  and i.metadata.get("pair") == named[-1].metadata.get("pair"))[:2]
    plan = Plan.from_dict(store.info(runs[0]).metadata["plan"])
    parts = [_records(store, r, split_records) for r in runs]
    keys = [(str(store.root), r, store.info(r).checksum) for r in runs]
    fits = []
    real = contention.fit_pass_calibration
    monkeypatch.setattr(contention, "fit_pass_calibration", lambda s, n: fits.append(n) or real(s, n))

    def calibration(k, n=2):
        return contention.contention_pair(sc, plan, base, parts[:n], run_ids=runs[:n], cache_keys=k)[1]["draft"]

    first = calibration(keys)
    assert len(fits) == 2 and calibration(keys) == first and len(fits) == 2  # same runs and grid: not refitted
    assert calibration([*keys[:1], (*keys[1][:2], "another-checksum")]) == first and len(fits) == 4
    assert calibration(keys[:1], 1) != first and len(fits) == 6  # other fit runs: another fit
    calibration(None)  # no keys: never memoised
    assert len(fits) == 8


def test_pair_host_overhead_is_fitted_once_per_other_runs_and_refitted_for_a_new_version(store):
    from specedge.fidelity import compare
    from specedge.serve.dataset import split_records

    memo._BUILT.clear()
    runs = [i for i in store.list() if i.kind == "run" and not i.metadata.get("online")
            and i.metadata.get("pair") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"]
    target = runs[-1]
    parts = split_records(store.read(target.id))
    first, desc = compare.host_overheads(store, target.id, target.metadata, parts, "pair")
    again, desc2 = compare.host_overheads(store, target.id, target.metadata, parts, "pair")
    assert again["draft"] is first["draft"] and desc2 == desc and desc2 is not desc
    other = desc["runs"][0]  # a new version of one run fitted on: its jobs take 50 ms longer
    info = store.info(other)
    frame = store.read(other)
    frame.loc[frame["record"] == "job", "end_s"] += 0.05
    store.write(frame, other, kind=info.kind, metadata=info.metadata, replace=True)
    refit, _ = compare.host_overheads(store, target.id, target.metadata, parts, "pair")
    assert refit["draft"] is not first["draft"] and refit["draft"] != first["draft"]


def test_run_overheads_diagnostic_follows_the_run_version(store):
    from specedge.fidelity import compare
    from specedge.serve.dataset import split_records

    memo._BUILT.clear()
    rid = sorted(i.id for i in store.list() if i.kind == "run" and not i.metadata.get("online")
                 and i.metadata.get("pair") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m")[-1]
    name = "draft_outside_pass_share"
    first = compare.compare_run(rid, store=store, contention=None, job_grid=False).diagnostics
    info = store.info(rid)
    frame = store.read(rid)
    frame.loc[frame["record"] == "job", "end_s"] += 0.05  # a new version: more time outside passes
    store.write(frame, rid, kind=info.kind, metadata=info.metadata, replace=True)
    later = compare.compare_run(rid, store=store, contention=None, job_grid=False).diagnostics
    parts = split_records(store.read(rid))
    assert later[name] == compare.overheads(parts["job"], parts["pass"])[name] != first[name]


def test_plan_noise_floor_follows_the_run_versions(store):
    from specedge.fidelity.repeats import noise_floor, plan_noise_floor
    from specedge.serve.dataset import split_records

    memo._BUILT.clear()
    runs = sorted(i.id for i in store.list() if i.kind == "run" and not i.metadata.get("online")
                  and i.metadata.get("pair") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m")[-2:]

    def fresh():
        return noise_floor([split_records(store.read(r))["task"].sort_values("task")["completion_s"].to_numpy()
                            for r in runs])

    first = plan_noise_floor(store, runs)
    assert first == fresh() and plan_noise_floor(store, runs) == first
    info = store.info(runs[1])
    frame = store.read(runs[1])
    frame.loc[frame["record"] == "task", "completion_s"] *= 1.5  # a new version of one repeat
    store.write(frame, runs[1], kind=info.kind, metadata=info.metadata, replace=True)
    later = plan_noise_floor(store, runs)
    assert later == fresh() and later["makespan_spread"] != first["makespan_spread"]
