"""What makes the fidelity study cheaper must not change what it computes:

- the recorded-acceptance replay leaves out only the pass-error diagnostics (``compare_run(pass_diagnostics=False)``):
  same table and per-task rows, and the default (the CLI's) still carries them;
- the snapshot checks the store's catalog with one stat per call and still sees every write between two calls;
- the contention fit on the samples' columns as arrays equals the fit on the ``calibration_samples`` frame;
- a recorded acceptance trace's source is built once per dataset version (and rebuilt for a new one).

The stage-times row, memoised once per run version for both acceptances, is checked against a replay on the plain
store by tests/fidelity/test_memo.py (two runs, both acceptances, exact).
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import memo
from specedge.provenance import REPO_ROOT
from specedge.traces.store import open_store

SHIPPED = REPO_ROOT / "traces"


@pytest.fixture(scope="module")
def shipped():
    if not (SHIPPED / "catalog.json").is_file():
        pytest.skip("needs the shipped trace store")
    return open_store(SHIPPED)


def _stdlib_run(st) -> str:
    runs = sorted(i.id for i in st.list() if i.kind == "run" and not i.metadata.get("online")
                  and i.metadata.get("pair") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m")
    if not runs:
        pytest.skip("needs a shipped stdlib run")
    return runs[-1]


def test_recorded_replay_without_pass_diagnostics_has_the_same_table(shipped):
    from specedge.fidelity.repeats import FidelityStudy, predict_before_running

    rid = _stdlib_run(shipped)
    full = predict_before_running(rid, store=shipped)
    if full is None:
        pytest.skip("the pair has no recorded acceptance trace")
    lean = predict_before_running(rid, store=shipped, pass_diagnostics=False)
    pd.testing.assert_frame_equal(lean.table, full.table, check_exact=True)
    pd.testing.assert_frame_equal(lean.tasks, full.tasks, check_exact=True)
    assert "pass_errors" in full.diagnostics and "pass_errors" not in lean.diagnostics
    assert {k: v for k, v in full.diagnostics.items() if k != "pass_errors"}.keys() == lean.diagnostics.keys()
    study = FidelityStudy(shipped, run_ids=[rid])  # the study replays recorded acceptance without them
    assert "pass_errors" not in study.recorded[rid].diagnostics
    assert "pass_errors" in study.results[rid].diagnostics  # the observed replay (what the CLI shows) keeps them
    pd.testing.assert_frame_equal(study.recorded[rid].table, full.table, check_exact=True)


def test_pass_errors_are_per_predictor_and_node_at_the_runs_shapes(shipped):
    """pass_errors slices each node's passes once: each row is still that node's passes through that predictor."""
    from specedge.fidelity.compare import pass_errors
    from specedge.serve.dataset import split_records

    passes = split_records(shipped.read(_stdlib_run(shipped)))["pass"]

    class Const:  # a predictor answering a constant per node, so each row's sum_ratio names its node's passes
        def __init__(self, value):
            self.value = value

        def latency_s(self, b, x, c):
            return np.full(np.shape(b), self.value)

    class Pair:
        def __init__(self, name, d, v):
            self.name, self.draft, self.verify = name, Const(d), Const(v)

    out = pass_errors(passes, [Pair("p", 1.0, 2.0), Pair("q", 3.0, 5.0)]).set_index(["predictor", "node"])
    for name, node, value in (("p", "draft", 1.0), ("p", "verify", 2.0), ("q", "draft", 3.0), ("q", "verify", 5.0)):
        part = passes[passes["node"] == node]
        meas = (part["end_s"] - part["start_s"]).to_numpy()
        assert out.loc[(name, node), "passes"] == len(part)
        assert out.loc[(name, node), "sum_ratio"] == value * len(part) / meas.sum()
        assert out.loc[(name, node), "median_pass_error"] == float(np.median(np.abs(value - meas) / meas))


def test_snapshot_asks_the_store_only_when_the_catalog_file_changed(tmp_path, monkeypatch):
    if not (SHIPPED / "catalog.json").is_file():
        pytest.skip("needs the shipped trace store")
    shutil.copytree(SHIPPED, tmp_path / "traces")
    st = open_store(tmp_path / "traces")
    snap = memo.snapshot(st)
    rid = _stdlib_run(st)
    info, frame = st.info(rid), st.read(rid)
    calls = []
    real = type(st)._catalog_view
    monkeypatch.setattr(type(st), "_catalog_view", lambda self: calls.append(1) or real(self))
    snap.list()
    before = snap.info(rid)
    first = len(calls)  # the snapshot's first check and the store's own listing
    for _ in range(5):
        assert snap.info(rid) is before and len(snap.list()) > 1
    assert len(calls) == first, "an unchanged catalog file: the store is not asked again"
    st.write(frame, rid, kind=info.kind, metadata={**info.metadata, "note": "rewritten"}, replace=True)
    asked = len(calls)
    after = snap.info(rid)  # the very next call sees the write
    assert len(calls) > asked
    assert after is not before and after.metadata.get("note") == "rewritten" and after.version == info.version + 1
    assert memo.version_key(snap, rid) == memo.version_key(st, rid)


def test_calibration_fit_on_arrays_equals_the_fit_on_the_frame(shipped):
    from specedge.fidelity import contention
    from specedge.fidelity.compare import _records
    from specedge.fidelity.predictors import compute_rows, latest_compute_trace
    from specedge.latency.cards import load_model_card
    from specedge.latency.compute import MeasuredCompute
    from specedge.serve.dataset import split_records

    rid = _stdlib_run(shipped)
    meta = shipped.info(rid).metadata
    others = contention.holdout_runs(shipped, rid, meta, "plan")[:6]
    if len(others) < 2:
        pytest.skip("needs other quiet runs of the stdlib pair")
    parts = [_records(shipped, r, split_records) for r in others]
    base = []
    for name in meta["pair"].split("/"):
        card = load_model_card(name)
        grid = latest_compute_trace(shipped, name)
        base.append(MeasuredCompute.from_trace(card, compute_rows(shipped, grid, name), allow_extrapolation=True,
                                               source=grid))
    frame = contention.calibration_samples(parts, *base, others)
    arrays = contention._sample_arrays(parts, *base)[0]  # what contention_pair fits on
    for c in ("node", "cls", "g_s", "u", "t_s"):
        np.testing.assert_array_equal(arrays[c], frame[c].to_numpy())
    for node in ("draft", "verify"):
        want = _frame_fit(contention, frame, node)
        assert contention.fit_pass_calibration(arrays, node) == want
        assert contention.fit_pass_calibration(frame, node) == want
    with pytest.raises(Exception, match="no other passes"):
        contention.fit_pass_calibration(frame, "other")


def _frame_fit(contention, samples: pd.DataFrame, node: str) -> dict:
    """The fit as it was written on the frame (pandas masks), the reference the array version must equal."""
    from dataclasses import replace

    def fit(part):
        return contention._fit(*(part[c].to_numpy(np.float64) for c in ("g_s", "u", "t_s")))

    part = samples[samples["node"] == node]
    pooled = fit(part)
    out = {}
    for cls in contention.CLASSES:
        sub = part[part["cls"] == cls]
        out[cls] = fit(sub) if len(sub) >= contention.MIN_PASSES else replace(pooled, dropped=pooled.dropped
                                                                                + ("pooled",))
    return out


def _recorded_acceptance(st, rid):
    from specedge.fidelity.repeats import recorded_acceptance_id

    acc = recorded_acceptance_id(st, st.info(rid).metadata)
    if acc is None:
        pytest.skip("the pair has no recorded acceptance trace")
    return acc


def test_a_recorded_trace_source_is_built_once_per_version_and_read_only(tmp_path):
    from specedge.fidelity.memo import trace_source
    from specedge.scenario import _acceptance

    if not (SHIPPED / "catalog.json").is_file():
        pytest.skip("needs the shipped trace store")
    shutil.copytree(SHIPPED, tmp_path / "traces")
    st = open_store(tmp_path / "traces")
    acc = _recorded_acceptance(st, _stdlib_run(st))
    memo.clear()
    snap = memo.snapshot(st)
    first = trace_source(snap, acc)
    assert trace_source(snap, acc) is first, "one source per dataset version"
    fresh = _acceptance(acc, float("nan"), st)
    assert type(first) is type(fresh) and first.name == fresh.name == acc
    for k, v in vars(fresh).items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(getattr(first, k), v)
            assert not getattr(first, k).flags.writeable, k
    assert trace_source(snap, "expected") == "expected" and trace_source(snap, "no-such-dataset") == "no-such-dataset"
    frame = st.read(acc)  # a new version of the trace (every round one token less accepted where it can be)
    frame["accepted"] = (frame["accepted"] - 1).clip(lower=0)
    info = st.info(acc)
    st.write(frame, acc, kind=info.kind, metadata=info.metadata, replace=True)
    second = trace_source(snap, acc)
    assert second is not first
    np.testing.assert_array_equal(second.accepted, _acceptance(acc, float("nan"), st).accepted)

