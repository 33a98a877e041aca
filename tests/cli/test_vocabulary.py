"""One meaning per option name across the commands (issue 15's vocabulary item)."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
import typer.main

from specedge.cli import _register, app, main
from tests.replay.helpers import trace_frame


def _options():
    """{option name: [(command path, param)]} over every command of the app."""
    _register()
    found = defaultdict(list)

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")
        for param in command.params:
            for opt in getattr(param, "opts", ()):
                if opt.startswith("--"):
                    found[opt].append((path, param))

    walk(typer.main.get_command(app), "specedge")
    return found


def _kind(param) -> str:
    desc = getattr(param, "type_descriptor", None)  # typer >= 0.20
    annotation = getattr(desc, "annotation", None) if desc is not None else getattr(param.type, "name", None)
    return str(annotation).replace("typing.", "").replace("Optional[", "").rstrip("]").replace(" | None", "")


@pytest.mark.parametrize("name", ["--seed", "--tasks", "--store", "--pair", "--preset", "--replications",
                                  "--workers", "--dataset", "--set"])
def test_an_option_has_one_type_everywhere(name):
    uses = _options()[name]
    assert uses, f"no command has {name}"
    kinds = {(_kind(p)) for _, p in uses}
    assert len(kinds) == 1, f"{name} has several types: " + ", ".join(f"{c}: {_kind(p)}" for c, p in uses)


def test_acceptance_always_names_the_acceptance_source_and_takes_a_dataset():
    for command, param in _options()["--acceptance"]:
        text = (param.help or "").lower()
        assert "dataset" in text, f"{command} --acceptance: {param.help!r}"


def test_acceptance_takes_a_dataset_like_the_older_trace_option(tmp_path, capsys):
    from specedge.traces.store import open_store

    store = open_store(tmp_path / "store")
    store.write(trace_frame().assign(dataset="mini"), "mini", kind="acceptance",
                metadata={"source": "ingested:synthetic-test"})
    base = ["optimize", "--tasks", "9", "--seed", "1", "--store", str(store.root), "--policy", "paper-dp",
            "--set", "output_tokens_max=160", "--set", "input_tokens_max=64", "--json"]
    assert main([*base, "--acceptance", "mini"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main([*base, "--trace", "mini"]) == 0
    old = json.loads(capsys.readouterr().out)
    assert new["scenario"]["acceptance"] == "mini" and new["latency_s"] == old["latency_s"]
    assert main([*base, "--trace", "mini", "--acceptance", "iid"]) == 2
    assert "two acceptance sources" in capsys.readouterr().err


def test_optimize_list_says_policy_presets(capsys):
    assert main(["optimize", "--list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "fixed-l7" in data["policy_presets"] and data["presets"] == data["policy_presets"]
    assert main(["optimize", "--list"]) == 0
    assert "policy presets" in capsys.readouterr().out
