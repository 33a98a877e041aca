"""Topology presets, per-cell scenarios, fronthaul times, bad input."""

from __future__ import annotations

import pytest

from specedge.errors import ScenarioError
from specedge.multicell.topology import CellSpec, available_topologies, load_topology


def test_presets_load_and_cells_are_heterogeneous():
    assert {"multi-cell", "dip-sd"} <= set(available_topologies())
    t = load_topology("multi-cell")
    assert t.num_cells == 3 and len(t.mbs) == 1
    assert len({c.sbs_device for c in t.cells}) == 3
    assert t.pair(2) == "tinyllama-1.1b/llama-7b"
    d = load_topology("dip-sd")
    assert d.drafting == "user" and d.pair(0) == "qwen3-1.7b/qwen3-32b"


def test_cell_scenario_carries_the_cells_values():
    t = load_topology("multi-cell")
    sc = t.cell_scenario(1, seed=0)
    assert sc.draft_device.name == "jetson-agx-orin" and sc.verify_device.name == "rtx-4500"
    assert sc.params.bandwidth_hz == 10e6 and sc.params.cell_radius_m == 250.0
    assert sc.params.fronthaul_delay_s == 5e-3 and sc.num_tasks == 25
    assert sc.tasks["distance_m"].max() <= 250.0


def test_fronthaul_time_by_hand():
    t = load_topology("multi-cell")
    # cell-b: 5 ms + 1e6 bits / 1e8 bit/s = 15 ms
    assert float(t.cells[1].fronthaul_s(1e6)) == pytest.approx(0.015)


def test_with_num_cells_cycles_and_renames():
    t = load_topology("multi-cell").with_num_cells(7)
    assert [c.name for c in t.cells] == ["cell-a", "cell-b", "cell-c", "cell-a-2", "cell-b-2", "cell-c-2",
                                         "cell-a-3"]
    assert t.cells[3].sbs_device == "rtx-3080"
    assert t.cells[3].position_m != t.cells[0].position_m
    assert load_topology("multi-cell").with_num_cells(1).num_cells == 1
    with pytest.raises(ScenarioError, match="--cells"):
        load_topology("multi-cell").with_num_cells(0)


def test_bad_presets_name_the_file_and_field(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[[mbs]]\nname="m"\ndevice="rtx-4500"\ntarget_model="llama-7b"\n'
                 '[[cells]]\nname="c"\nsbs_device="rtx-3080"\ndraft_model="llama-68m"\nsbs_memory_bytes=1e9\n'
                 'uplink_bandwidth_hz=1e6\nnum_users=2\ncell_radius_m=100.0\nposition_m=[0,0]\n'
                 'fronthaul_delay_s=0.0\nfronthaul_bandwidth_bps=1e9\nfrobnicate=1\n')
    with pytest.raises(ScenarioError, match=r"bad.toml: \[\[cells\]\] #1: unknown field\(s\) frobnicate"):
        load_topology(p)
    with pytest.raises(ScenarioError, match="unknown multi-cell preset 'nope'"):
        load_topology("nope")
    with pytest.raises(ScenarioError, match="fronthaul_bandwidth_bps must be > 0"):
        CellSpec("c", "rtx-3080", "llama-68m", 1e9, 1e6, 2, 100.0, (0.0, 0.0), 0.0, 0.0)
    with pytest.raises(ScenarioError, match="alpha"):
        CellSpec("c", "rtx-3080", "llama-68m", 1e9, 1e6, 2, 100.0, (0.0, 0.0), 0.0, 1e9, alpha=1.5)
