"""``specedge optimize``: JSON fields, the replayed latency, parameters, plan output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from specedge import Plan, evaluate
from specedge.cli import main
from specedge.policies import optimize
from tests.policies.helpers import small

SMALL = ["--tasks", "9", "--seed", "4", "--alpha", "0.8", "--pair", "tinyllama-1.1b/llama-7b",
         "--set", "output_tokens_max=200", "--set", "input_tokens_max=256"]
EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "examples" / "my_policy.py"


def test_json_has_the_plan_and_its_replayed_latency(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["optimize", "--preset", "paper", *SMALL, "--policy", "paper-dp", "--json", "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("policy", "latency_s", "speculation_length", "batches", "bandwidth_hz", "mode"):
        assert key in data
    sc = small(9, seed=4)
    plan = optimize(sc, "paper-dp")
    assert data["policy"] == "paper-dp" and data["mode"] == "sd-pipeline"
    assert data["batches"] == [list(b) for b in plan.batches]
    assert data["latency_s"] == evaluate(sc, plan, seed=4).latency_s
    assert isinstance(data["speculation_length"], int) and len(data["bandwidth_hz"]) == 9
    assert Plan.load(out).batches == plan.batches


def test_default_policy_params_file_policy_and_list(capsys):
    assert main(["optimize", *SMALL, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "dp-refined"
    assert main(["optimize", *SMALL, "--policy", "fixed-l", "--param", "l=3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["speculation_length"] == 3
    assert main(["optimize", *SMALL, "--policy", f"{EXAMPLE}:ShortestOutputFirst", "--param", "num_batches=3",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["batches"]) == 3 and data["policy"] == "ShortestOutputFirst"
    assert main(["optimize", "--list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "oracle" in listing["policies"] and "fixed-l7" in listing["presets"]
    assert main(["optimize", *SMALL, "--policy", "dp-per-batch-l"]) == 0
    assert "latency_s" in capsys.readouterr().out


def test_unknown_policy_and_bad_param_are_one_line_errors(capsys):
    assert main(["optimize", *SMALL, "--policy", "fastest"]) == 2
    err = capsys.readouterr().err
    assert "unknown policy 'fastest'" in err and "paper-dp" in err and "Traceback" not in err
    assert main(["optimize", *SMALL, "--policy", "paper-dp", "--param", "speed"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["optimize", *SMALL, "--policy", "paper-dp", "--param", "speed=3"]) == 2
    assert "does not take parameter" in capsys.readouterr().err
