"""A plan records the scenario it was made for; replaying it on another scenario is refused unless --force.

Contract (issue 15): ``specedge optimize --json`` prints a ``scenario`` object with at least preset, pair, tasks
and seed; ``replay --plan`` on another pair exits 2 with one line; extrapolation warns in ``optimize`` too.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from specedge import Plan
from specedge.cli import main
from specedge.errors import PlanError
from specedge.policies import optimize

from .helpers import small_scenario, trace_frame

SMALL = ["--tasks", "9", "--seed", "4", "--alpha", "0.8", "--pair", "tinyllama-1.1b/llama-7b",
         "--set", "output_tokens_max=160", "--set", "input_tokens_max=64"]


def _independent_sha256(tasks) -> str:
    # written from the definition in specedge.plan's docstring, not from its code
    h = hashlib.sha256()
    for name in ("input_tokens", "output_tokens", "payload_bits", "spectral_efficiency"):
        h.update(name.encode())
        h.update(np.asarray(tasks[name], dtype=np.float64).astype("<f8").tobytes())
    return h.hexdigest()


def test_optimize_json_has_a_scenario_object(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["optimize", *SMALL, "--policy", "paper-dp", "--json", "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    scenario = data["scenario"]
    assert isinstance(scenario, dict)
    assert scenario["preset"] == "paper" and scenario["pair"] == "tinyllama-1.1b/llama-7b"
    assert scenario["tasks"] == 9 and scenario["seed"] == 4
    assert scenario["overrides"] == {"input_tokens_max": 64, "output_tokens_max": 160}
    sc = small_scenario(9, seed=4, pair="tinyllama-1.1b/llama-7b", alpha=0.8)
    assert scenario["tasks_sha256"] == _independent_sha256(sc.tasks)
    assert json.loads(out.read_text())["scenario"] == scenario  # the saved plan carries it too


def test_plan_round_trip_keeps_the_scenario_and_matches_it():
    sc = small_scenario(9, seed=2)
    plan = optimize(sc, "paper-dp")
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.scenario == plan.scenario and again.scenario["pair"] == sc.pair
    assert again.check_scenario(sc) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"pair": "tinyllama-1.1b/llama-13b"}, "pair"),
    ({"seed": 3}, "seed"),
    ({"bandwidth_hz": 10e6}, "overrides"),
    ({"bits_per_token": 1000}, "tasks_sha256"),
])
def test_another_scenario_is_refused_in_one_line(change, field):
    sc = small_scenario(9, seed=2)
    plan = optimize(sc, "paper-dp")
    other = sc.with_overrides(**change)
    with pytest.raises(PlanError) as err:
        plan.check_scenario(other, source="p.json")
    message = str(err.value)
    assert "\n" not in message and "--force" in message and f"{field} " in message
    assert field in " ".join(plan.check_scenario(other, force=True))


def test_another_acceptance_source_is_not_another_scenario():
    sc = small_scenario(9, seed=2)
    plan = optimize(sc, "paper-dp")
    assert plan.check_scenario(sc.with_overrides(alpha=0.6)) == []


def test_task_order_changes_the_hash():
    sc = small_scenario(9, seed=2)
    swapped = sc.tasks.iloc[[1, 0, *range(2, 9)]]
    plan = optimize(sc, "paper-dp")
    with pytest.raises(PlanError, match="tasks_sha256"):
        plan.check_scenario(sc.with_tasks(swapped))


def test_replay_cli_refuses_another_pair_unless_forced(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["optimize", *SMALL, "--policy", "paper-dp", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    other = [a if a != "tinyllama-1.1b/llama-7b" else "llama-68m/llama-7b" for a in SMALL]
    assert main(["replay", "--plan", str(out), *other, "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pair tinyllama-1.1b/llama-7b in the plan" in err
    assert main(["replay", "--plan", str(out), *other, "--json", "--force"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["scenario"]["pair"] == "llama-68m/llama-7b"
    assert "another scenario" in captured.err and "warning" in captured.err
    assert main(["replay", "--plan", str(out), *SMALL, "--json"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_plan_scenario_field_must_be_an_object():
    with pytest.raises(PlanError, match="'scenario'"):
        Plan.from_dict({"batches": [[0]], "speculation_length": 2, "bandwidth_hz": [1.0], "scenario": "paper"})


def test_optimize_warns_when_its_replay_extrapolates(tmp_path, capsys):
    from specedge.traces.store import open_store

    store = open_store(tmp_path / "store")
    store.write(trace_frame(drafted=3).assign(dataset="mini"), "mini", kind="acceptance",
                metadata={"source": "ingested:synthetic-test"})
    args = ["optimize", *SMALL, "--trace", "mini", "--store", str(store.root), "--policy", "fixed-l",
            "--param", "l=6"]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["extrapolated_rounds"] > 0
    assert "beyond the recorded draft length" in captured.err
    assert main(args) == 0
    assert "beyond the recorded draft length" in capsys.readouterr().err
