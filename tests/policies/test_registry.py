"""The policy protocol, the registry, file policies, presets, entry points, specedge.optimize and the CLI path."""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import specedge
from specedge.errors import PlanError, PolicyError
from specedge.plan import Plan
from specedge.policies import (
    BUILTINS,
    Policy,
    available_policies,
    available_presets,
    get_policy,
    load_preset,
    optimize,
    register_policy,
)
from specedge.policies import base
from tests.policies.helpers import small

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies" / "examples" / "my_policy.py"
REQUIRED = ["ad", "sd-serial", "no-batching", "fixed-l", "static-batching", "max-batching", "heuristic-batching",
            "uniform-bandwidth", "paper-dp", "dp-per-batch-l", "dp-refined", "trace-aware", "adaptive-l", "oracle"]


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))


def test_every_required_policy_is_available_and_plans():
    assert set(REQUIRED) <= set(available_policies())
    sc = small(6)
    for name in REQUIRED:
        pol = get_policy(name)
        assert isinstance(pol, Policy)
        plan = optimize(sc, name)
        plan.validate(sc.num_tasks)
        assert plan.mode == ("ad" if name == "ad" else "sd-serial" if name == "sd-serial" else "sd-pipeline")


def test_default_policy_is_the_refined_dp():
    sc = small(6)
    assert specedge.optimize(sc).meta["policy"] == "dp-refined"
    assert specedge.optimize(sc, "paper-dp").meta["policy"] == "paper-dp"


def test_register_decorator_and_conflicts(clean_registry):
    @register_policy("one-batch-test")
    @dataclass(frozen=True)
    class OneBatch:
        l: int = 3

        def plan(self, sc) -> Plan:
            return Plan(((*range(sc.num_tasks),),), (self.l,), tuple(sc.optimal_bandwidth_hz()))

    assert "one-batch-test" in available_policies()
    assert OneBatch.policy_name == "one-batch-test"
    plan = optimize(small(5), "one-batch-test", l=5)
    assert plan.speculation_length == (5,) and len(plan.batches) == 1

    with pytest.raises(PolicyError, match="already registered"):
        @register_policy("one-batch-test")
        class Other:
            def plan(self, sc): ...

    with pytest.raises(PolicyError, match="no plan"):
        register_policy("no-plan")(type("NoPlan", (), {}))
    with pytest.raises(PolicyError, match="name"):
        register_policy("has space")


def test_unknown_policy_lists_the_available_ones():
    with pytest.raises(PolicyError) as err:
        get_policy("no-such-policy")
    msg = str(err.value)
    assert "no-such-policy" in msg and "paper-dp" in msg and "dp-refined" in msg


def test_unknown_and_bad_parameters():
    with pytest.raises(PolicyError, match="does not take parameter.*foo.*l_max"):
        get_policy("paper-dp", foo=1)
    with pytest.raises(PolicyError, match="l_max"):
        optimize(small(4), "paper-dp", l_max=0)
    with pytest.raises(PolicyError, match="bandwidth"):
        optimize(small(4), "paper-dp", bandwidth="fair")
    with pytest.raises(PolicyError, match="K <= 12"):
        optimize(small(13), "oracle")


def test_file_policy_and_preset_pointing_at_it(tmp_path):
    sc = small(8)
    plan = optimize(sc, f"{EXAMPLE}:ShortestOutputFirst", num_batches=2, l=3)
    assert len(plan.batches) == 2 and plan.speculation_length == (3, 3)
    outs = sc.tasks["output_tokens"].to_numpy()
    assert max(outs[list(plan.batches[0])]) <= min(outs[list(plan.batches[1])])
    preset = load_preset(ROOT / "policies" / "examples" / "my-policy.toml")
    assert preset.name == "shortest-output-first" and preset.params == {"num_batches": 4, "l": 4}
    pol = preset.make()
    assert base.policy_name(pol) == "shortest-output-first"
    assert optimize(sc, pol).speculation_length == (4,) * 4
    # a preset in a folder of its own, with a relative file path
    (tmp_path / "mine.py").write_text(EXAMPLE.read_text())
    (tmp_path / "mine.toml").write_text('policy = "mine.py:ShortestOutputFirst"\n[params]\nl = 2\n')
    assert optimize(sc, str(tmp_path / "mine.toml")).speculation_length[0] == 2
    with pytest.raises(PolicyError, match="no such file"):
        get_policy(f"{tmp_path}/missing.py:X")
    with pytest.raises(PolicyError, match="defines no"):
        get_policy(f"{EXAMPLE}:Missing")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(PolicyError, match="failed to import.*boom"):
        get_policy(f"{tmp_path / 'broken.py'}:X")


def test_shipped_presets_load_and_name_registered_policies():
    names = available_presets()
    assert {"paper-dp", "dp-refined", "fixed-l7", "static-batching", "heuristic-batching"} <= set(names)
    for name in names:
        preset = load_preset(name)
        assert preset.policy in BUILTINS, preset
        base.instantiate(base.policy_class(preset.policy), preset.params, name)
    assert get_policy("fixed-l7").l == 7


def test_bad_presets(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("policy = 'paper-dp'\ncolour = 'red'\n")
    with pytest.raises(PolicyError, match="unknown key.*colour"):
        load_preset(bad)
    bad.write_text("name = 'x'\n")
    with pytest.raises(PolicyError, match="missing 'policy'"):
        load_preset(bad)
    bad.write_text("policy = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_preset(bad)
    with pytest.raises(PolicyError, match="unknown policy preset"):
        load_preset("no-such-preset")


def test_entry_point_policies_load(monkeypatch, clean_registry, tmp_path):
    pkg = tmp_path / "thirdparty_policy_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(EXAMPLE.read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="third-party-sof", value="thirdparty_policy_pkg:ShortestOutputFirst",
                                       group=base.ENTRY_POINT_GROUP)
    broken = importlib.metadata.EntryPoint(name="third-party-broken", value="no_such_module_xyz:Policy",
                                           group=base.ENTRY_POINT_GROUP)
    monkeypatch.setattr(base, "_entry_points", lambda: {ep.name: ep, broken.name: broken})
    assert {"third-party-sof", "third-party-broken"} <= set(available_policies())
    plan = optimize(small(6), "third-party-sof", num_batches=3)
    assert len(plan.batches) == 3
    with pytest.raises(PolicyError, match="failed to load"):
        get_policy("third-party-broken")
    sys.modules.pop("thirdparty_policy_pkg", None)


def test_policy_results_are_checked():
    sc = small(4)

    class Wrong:
        def plan(self, sc):
            return [[0, 1]]

    class Missing:
        def plan(self, sc):
            return {"batches": [[0, 1]], "speculation_length": 3, "bandwidth_hz": [1e6] * 4}

    with pytest.raises(PolicyError, match="not a specedge.plan.Plan"):
        optimize(sc, Wrong())
    with pytest.raises(PlanError, match="in no batch"):
        optimize(sc, Missing())
    with pytest.raises(PolicyError, match="parameters given for an existing instance"):
        get_policy(Wrong(), l=3)
    with pytest.raises(PolicyError, match="not a policy"):
        get_policy(42)


def test_pyproject_entry_points_match_the_builtins():
    import tomllib

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][base.ENTRY_POINT_GROUP]
    assert table == BUILTINS
    for name, target in table.items():
        assert base.policy_class(name) is base._import_target(target, name)
