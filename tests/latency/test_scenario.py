"""Scenarios from presets: tasks, overrides, and one clear error per kind of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specedge.errors import ScenarioError
from specedge.latency import network
from specedge.scenario import Scenario, available_presets


def test_paper_preset_tasks():
    sc = Scenario.from_preset("paper", pair="llama-68m/llama-7b", alpha=0.8, tasks=100, seed=0)
    t = sc.tasks
    assert list(t.columns) == ["input_tokens", "output_tokens", "distance_m", "payload_bits", "spectral_efficiency"]
    assert len(t) == 100 and sc.num_tasks == 100
    assert t.input_tokens.between(1, 512).all() and t.output_tokens.between(1, 2048).all()
    assert t.distance_m.between(10, 400).all()
    np.testing.assert_allclose(t.payload_bits, t.input_tokens * sc.params.bits_per_token)
    np.testing.assert_allclose(t.spectral_efficiency, network.spectral_efficiency(t.distance_m, sc.params))
    assert sc.bandwidth_hz == 20e6 and sc.alpha == 0.8
    assert sc.draft.name == "llama-68m" and sc.verify_device.name == "rtx-4500"
    assert sc.acceptance_stats.alpha == 0.8
    # reproducible from the seed, different across seeds
    assert Scenario.from_preset("paper", seed=0).tasks.equals(t)
    assert not Scenario.from_preset("paper", seed=1).tasks.equals(t)
    assert "paper" in available_presets()
    table = sc.assumptions()
    assert set(table.tag) <= {"P", "A", "P/A"} and "bits_per_token" in set(table.parameter)


def test_overrides():
    sc = Scenario.from_preset("paper", tasks=20, seed=3)
    wider = sc.with_overrides(bandwidth_hz=25e6)
    assert wider.bandwidth_hz == 25e6 and wider.tasks.equals(sc.tasks)
    other = sc.with_overrides(alpha=0.6, pair="tinyllama-1.1b/llama-13b")
    assert other.alpha == 0.6 and other.target.name == "llama-13b" and other.tasks.equals(sc.tasks)
    heavier = sc.with_overrides(bits_per_token=100.0)
    np.testing.assert_allclose(heavier.tasks.payload_bits, sc.tasks.input_tokens * 100.0)
    assert Scenario.from_preset("paper", tasks=20, seed=3, compute_model="roofline").draft_compute.device.name \
        == "rtx-3080"


def test_user_task_frame():
    frame = pd.DataFrame({"input_tokens": [10, 20], "output_tokens": [5, 6], "spectral_efficiency": [2.0, 4.0]})
    sc = Scenario.from_preset("paper", tasks=frame)
    assert sc.num_tasks == 2 and list(sc.tasks.spectral_efficiency) == [2.0, 4.0]
    np.testing.assert_allclose(sc.tasks.payload_bits, [10 * sc.params.bits_per_token, 20 * sc.params.bits_per_token])
    again = sc.with_overrides(bits_per_token=8.0)
    np.testing.assert_allclose(again.tasks.payload_bits, [80, 160])
    with pytest.raises(ScenarioError, match="row 1: output_tokens must be an integer >= 1"):
        Scenario.from_preset("paper", tasks=frame.assign(output_tokens=[5, 0]))


def test_preset_inheritance(tmp_path):
    path = tmp_path / "wide.toml"
    path.write_text('base = "paper"\npair = "tinyllama-1.1b/llama-7b"\n[params]\nbandwidth_hz = 25e6\n')
    sc = Scenario.from_preset(str(path), tasks=3)
    assert sc.bandwidth_hz == 25e6 and sc.pair == "tinyllama-1.1b/llama-7b" and sc.params.cell_radius_m == 400


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "nope"}, "unknown preset 'nope'; known presets: .*paper"),
        ({"pair": "llama-68m/llama-70b"}, "unknown model card 'llama-70b'"),
        ({"pair": "llama-68m"}, "must be 'draft/target'"),
        ({"sbs_device": "h100"}, "unknown device card 'h100'"),
        ({"bandwith_hz": 1e6}, "unknown scenario parameter.*bandwith_hz"),
        ({"release": "whenever"}, "release='whenever'; expected one of all-uploads, batch-uploads"),
        ({"bandwidth_hz": -1.0}, "bandwidth_hz must be > 0"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"compute_model": "fitted"}, "needs draft_compute_trace"),
        ({"acceptance": 3}, "acceptance must be"),
    ],
)
def test_bad_scenarios_fail_clearly(kwargs, message):
    kwargs = dict(kwargs)
    name = kwargs.pop("name", "paper")
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_preset(name, tasks=3, **kwargs)
