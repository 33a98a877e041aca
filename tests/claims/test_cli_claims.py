"""`specedge claims`: the JSON contract, basis labels from the presets' [calibrated] tables, bad input."""

from __future__ import annotations

import json
import math

import pytest

from specedge.claims.evaluate import NUMERIC_CLAIMS, basis
from specedge.cli import main

CHEAP = ["--max-evaluations", "2", "--workers", "1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("claims-cache")


@pytest.fixture
def env(cache, monkeypatch):
    monkeypatch.setenv("SPECEDGE_CACHE", str(cache))


@pytest.mark.slow
def test_claims_json_contract(env, capsys):
    assert main(["claims", "--json", *CHEAP]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) >= 8
    assert [r["claim"] for r in rows][:8] == list(NUMERIC_CLAIMS)
    for r in rows:
        assert {"claim", "paper", "specedge", "basis", "depends_on", "loo_prediction", "preset"} <= set(r)
        assert r["basis"] in ("fitted", "predicted") and r["preset"] == "paper"
        assert isinstance(r["depends_on"], list) and all(isinstance(p, str) for p in r["depends_on"])
        assert isinstance(r["loo_prediction"], float) and math.isfinite(r["loo_prediction"])
        assert r["paper"] == NUMERIC_CLAIMS[r["claim"]]
    by = {r["claim"]: r for r in rows}
    # the paper preset solved bits_per_token on the 68M/7B bandwidth claim: fitted, and it depends on it
    first = by["optimal vs uniform bandwidth (llama-68m/llama-7b)"]
    assert first["basis"] == "fitted" and "bits_per_token" in first["depends_on"]
    assert by["DP vs max batching"]["basis"] == "predicted"


@pytest.mark.slow
def test_claims_calibrate_json_contract(env, capsys):
    assert main(["claims", "--calibrate", "--json", *CHEAP]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"parameters", "bounds", "residuals"} <= set(data)
    assert set(data["parameters"]) == set(data["bounds"])
    for name, value in data["parameters"].items():
        lo, hi = data["bounds"][name]
        assert lo <= value <= hi, name
    assert [r["claim"] for r in data["residuals"]] == list(NUMERIC_CLAIMS)
    assert all(set(r) == {"claim", "residual"} and math.isfinite(r["residual"]) for r in data["residuals"])


def test_basis_follows_the_presets_calibrated_tables():
    paper = basis("paper")
    assert {c for c, (b, _) in paper.items() if b == "fitted"} == {
        c for c in NUMERIC_CLAIMS if c.startswith("optimal vs uniform")}
    cb = basis("paper-compute-bound")
    assert {c for c, (b, _) in cb.items() if b == "fitted"} == {
        c for c in NUMERIC_CLAIMS if not c.startswith("optimal vs uniform")}
    # text-uplink re-sets bits_per_token: the 68M/7B claim is no longer fitted there, the overheads' claims are
    up = basis("text-uplink")
    assert up["optimal vs uniform bandwidth (llama-68m/llama-7b)"][0] == "predicted"
    assert up["optimal vs uniform bandwidth (tinyllama-1.1b/llama-7b)"] == ("fitted", ["sbs_layer_overhead_s"])


def test_bad_calibrated_table_and_unknown_preset_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "paper"\n[calibrated]\nbits_per_token = ["no such claim"]\n')
    assert main(["claims", "--preset", str(bad), "--json"]) == 2
    err = capsys.readouterr().err
    assert "calibrated" in err and "no such claim" in err
    assert main(["claims", "--preset", "no-such-preset", "--json"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["claims", "--json", "--workers", "0"]) == 2
