"""measured-probed: the measured grid rescaled per node by the speed probe (run before / grid reference).

The synthetic run is built from replay (tests/fidelity/test_synthetic.py) with every pass of node n k_n times as
long as the grid's (the true affine predictor's c1 and c2 times k_n, so exactly k_n times) and the host overhead
unscaled; its probe medians encode k_n. So measured-probed must predict it (up to the grid's interpolation) and
must equal, to rounding, the measured grid scaled by hand plus the unscaled overhead.
"""

from __future__ import annotations

import json

import pytest

import tests.fidelity.test_synthetic as syn
from specedge.cli import main
from specedge.fidelity import PredictorPair, compare_run
from specedge.fidelity.probe import (NAME, ScaledCompute, run_speed_probe, scaled, speed_drift, speed_factor,
                                     speed_factor_why, with_speed_probe)
from specedge.latency.compute import AffineCompute, MeasuredCompute
from specedge.latency.host_overhead import with_job_overhead
from specedge.traces.store import open_store
from tests.fidelity.test_blend import grid_frame

SHAPES = {"draft": {"batch_size": 1, "new_tokens": 1, "context_tokens": 128},
          "verify": {"batch_size": 4, "new_tokens": 5, "context_tokens": 128}}
K = {"draft": 1.25, "verify": 0.8}  # the run's pass times over the grid's, per node
GRID = {"draft": (0.010, 0.014), "verify": (0.030, 0.026)}  # grid probe medians before/after: references .012, .028
AFTER = 1.3  # the run's "after" probe is 30 % slower than its "before": must not enter the factor


def probe(median: float, node: str = "draft", **shape) -> dict:
    return {"shape": {**SHAPES[node], **shape}, "median_s": median, "p10_s": 0.9 * median, "p90_s": 1.1 * median,
            "passes": 20, "window_s": 1.0, "at_s": 0.0}


def test_speed_factor_arithmetic():
    grid = {"before": probe(0.010), "after": probe(0.014)}
    assert speed_factor({"before": probe(0.015), "after": probe(0.030)}, grid) == pytest.approx(1.25)
    assert speed_factor({"before": probe(0.006)}, grid) == pytest.approx(0.5)
    assert speed_factor({"before": probe(0.015)}, {"before": probe(0.010)}) == pytest.approx(1.5)  # no grid after
    assert speed_factor(None, grid) is None and speed_factor({"after": probe(0.01)}, grid) is None
    assert speed_factor({"before": probe(0.015)}, None) is None and speed_factor({"before": probe(0.015)}, {}) is None
    assert speed_factor({"before": probe(0.0)}, grid) is None
    factor, why = speed_factor_why({"before": probe(0.015, batch_size=2)}, grid)
    assert factor is None and "shapes differ" in why
    assert speed_factor({"before": probe(0.015, "verify")}, grid) is None  # a verify probe against a draft grid
    assert speed_factor({"before": probe(0.015)}, {"before": probe(0.01), "after": probe(0.01, "verify")}) is None
    assert speed_drift({"before": probe(0.010), "after": probe(0.012)}) == pytest.approx(0.2)
    assert speed_drift({"before": probe(0.010)}) is None and speed_drift(None) is None


def test_scaling_keeps_the_host_overhead_out():
    sc = syn.base_scenario()
    plain = syn.plain_predictors(sc)
    base = with_job_overhead(plain.verify, syn.OVH["verify"])
    s = scaled(base, 2.0)
    assert isinstance(s, ScaledCompute) and s.job_overhead == syn.OVH["verify"]
    assert s.base.job_overhead is None  # the overhead lives on the wrapper only, unscaled
    assert float(s.latency_s(3, 4, 32)) == pytest.approx(2.0 * float(plain.verify.latency_s(3, 4, 32)), rel=1e-12)
    assert with_job_overhead(s, None).job_overhead is None  # compare_run's overhead step can replace it
    pairs = [PredictorPair("measured", plain.draft, plain.verify)]
    assert with_speed_probe(pairs, {"draft": 1.1, "verify": None}) == pairs  # both nodes need a factor
    assert with_speed_probe([PredictorPair("affine", plain.draft, plain.verify)], {"draft": 1, "verify": 1})[-1].name \
        == "affine"  # no measured pair: nothing added
    (_, added) = with_speed_probe(pairs, {"draft": 1.1, "verify": 0.9})
    assert added.name == NAME and (added.draft.factor, added.verify.factor) == (1.1, 0.9)


def scaled_truth(sc) -> PredictorPair:
    """The synthetic run's truth with every pass of node n exactly K[n] times longer, the host overhead as is."""
    d = AffineCompute(sc.draft, 2e-9 * K["draft"], 1e-3 * K["draft"])
    v = AffineCompute(sc.target, 3e-9 * K["verify"], 2e-3 * K["verify"])
    assert syn.plain_predictors(sc).draft.c1_s_per_flop == 2e-9  # the unscaled truth the grids are made of
    return PredictorPair("true", with_job_overhead(d, syn.OVH["draft"]), with_job_overhead(v, syn.OVH["verify"]))


def write_probed(st, run_id: str, monkeypatch, *, run_probe: bool = True, grid_probe: bool = True,
                 grid_shape: dict | None = None) -> dict:
    """A run at speed K and the unscaled grids of both models, with probes encoding K; returns the grid frames."""
    with monkeypatch.context() as m:
        m.setattr(syn, "true_predictors", scaled_truth)
        made = syn.synthetic_run(st, run_id, syn.PLANS["a"])
    sc = syn.base_scenario()
    plain = syn.plain_predictors(sc)
    frames, ref = {}, {}
    for node, model in (("draft", sc.draft.name), ("verify", sc.target.name)):
        frames[node] = grid_frame(getattr(plain, node), model, 1.0)
        before, after = GRID[node]
        ref[node] = 0.5 * (before + after)
        meta = {"source": "recorded", "note": "synthetic (tests)", "model": model}
        if grid_probe:
            meta["speed_probe"] = {"before": probe(before, node, **(grid_shape or {})), "after": probe(after, node)}
        st.write(frames[node], f"compute-{model}", kind="compute", metadata=meta, replace=True)
    meta = dict(made["meta"])
    if run_probe:
        meta["speed_probe"] = {n: {"before": probe(K[n] * ref[n], n), "after": probe(AFTER * K[n] * ref[n], n)}
                               for n in K}
    st.write(st.read(run_id), run_id, kind="run", metadata=meta, replace=True)
    return frames


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    st = open_store(tmp_path_factory.mktemp("probe-store"))
    frames = write_probed(st, "run-p", mp)
    mp.undo()
    return st, frames


def test_measured_probed_predicts_a_run_at_another_speed(probed):
    st, frames = probed
    sc = syn.base_scenario()
    res = compare_run("run-p", store=st, host_overhead=dict(syn.OVH), contention=None, job_grid=False)
    row = res.table.set_index("predictor")
    # reference by hand: each grid's latencies times K, plus the unscaled host overhead
    ref = {n: with_job_overhead(MeasuredCompute.from_trace(card, grid_frame(getattr(syn.plain_predictors(sc), n),
                                                                            card.name, K[n]),
                                                           allow_extrapolation=True), syn.OVH[n])
           for n, card in (("draft", sc.draft), ("verify", sc.target))}
    want = compare_run("run-p", store=st, host_overhead="none", contention=None, job_grid=False,
                       predictors=[PredictorPair("ref", ref["draft"], ref["verify"])]).table.set_index("predictor")
    assert row.loc[NAME, "predicted_makespan_s"] == pytest.approx(want.loc["ref", "predicted_makespan_s"], rel=1e-12)
    assert (res.tasks[res.tasks["predictor"] == NAME]["predicted_s"].to_numpy()
            == pytest.approx(res.tasks.pipe(lambda t: t[t["predictor"] == NAME])["measured_s"].to_numpy(), rel=0.01))
    assert row.loc[NAME, "median_task_error"] < 0.01 and row.loc[NAME, "makespan_error"] < 0.01
    assert row.loc["measured", "median_task_error"] > 0.05  # the unprobed grid is off by the speed change
    info = res.diagnostics["speed_probe"]
    assert info["source"] == "probes" and info["predictor"] == NAME
    for n in K:
        assert info[n]["factor"] == pytest.approx(K[n])
        assert info[n]["grid_reference_s"] == pytest.approx(sum(GRID[n]) / 2)
        assert info[n]["drift"] == pytest.approx(AFTER - 1)
    passes = {(r["predictor"], r["node"]): r for r in res.diagnostics["pass_errors"]}
    assert passes[(NAME, "verify")]["sum_ratio"] == pytest.approx(K["verify"] * passes[("measured", "verify")]
                                                                   ["sum_ratio"], rel=1e-9)


def test_the_probed_pair_carries_the_same_unscaled_host_overhead(probed):
    from specedge.fidelity.compare import run_predictors
    from specedge.serve.dataset import split_records

    st, _ = probed
    sc = syn.base_scenario()
    meta = st.info("run-p").metadata
    parts = split_records(st.read("run-p"))
    preds, *_ = run_predictors(st, "run-p", meta, sc, parts, None, None, dict(syn.OVH))
    by = {p.name: p for p in preds}
    for n in K:
        assert getattr(by[NAME], n).job_overhead == syn.OVH[n] == getattr(by["measured"], n).job_overhead
        assert float(getattr(by[NAME], n).latency_s(2, 3, 32)) == pytest.approx(
            K[n] * float(getattr(by["measured"], n).latency_s(2, 3, 32)), rel=1e-12)
    custom, *_ = run_predictors(st, "run-p", meta, sc, parts, [by["measured"]], None, "none")
    assert [p.name for p in custom] == ["measured"]  # given predictors: no traces, no probe


@pytest.mark.parametrize("case", ["no run probe", "no grid probe", "shape"])
def test_no_probe_no_measured_probed(tmp_path, monkeypatch, case):
    st = open_store(tmp_path / "s")
    write_probed(st, "run-p", monkeypatch, run_probe=case != "no run probe", grid_probe=case != "no grid probe",
                 grid_shape={"context_tokens": 64} if case == "shape" else None)
    res = compare_run("run-p", store=st, host_overhead="none", contention=None, job_grid=False)
    assert NAME not in set(res.table["predictor"])
    info = res.diagnostics["speed_probe"]
    assert info["source"] == "none" and info["draft"]["factor"] is None
    assert {"no run probe": "run has no speed probe", "no grid probe": "grid has no speed probe",
            "shape": "shapes differ"}[case] in info["draft"]["reason"]


def test_run_speed_probe_without_traces():
    factors, info = run_speed_probe(None, {}, ("custom", "custom"))
    assert factors == {"draft": None, "verify": None} and info["source"] == "none"


def test_cli_and_study_carry_measured_probed(probed, capsys):
    from specedge.fidelity.repeats import FidelityStudy

    st, _ = probed
    capsys.readouterr()
    assert main(["fidelity", "run-p", "--json", "--store", str(st.root)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert NAME in data["predictors"] and data["diagnostics"]["speed_probe"]["source"] == "probes"
    assert data["predictors"][NAME]["makespan_error"] < 0.01
    assert main(["fidelity", "--rank", "--predictor", NAME, "--json", "--store", str(st.root)]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["plans"][0]["run_ids"] == ["run-p"]
    study = FidelityStudy(st, recorded=False)
    (plan,) = study.plan_rows(NAME).itertuples()
    assert plan.run_ids == ["run-p"] and plan.makespan_error < 0.01
    assert list(study.run_rows()["predictor"]) == [NAME]  # the best predictor: one more candidate, not filtered
