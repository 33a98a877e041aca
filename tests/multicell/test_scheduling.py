"""Verifier scheduling policies (hand-built queues) and user association."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.errors import PolicyError, ScenarioError
from specedge.multicell.association import associate, distances_m, place_users
from specedge.multicell.scheduling import (
    VerifyQueue,
    available_verifier_policies,
    get_verifier_policy,
    register_verifier_policy,
)
from specedge.multicell.topology import load_topology
from specedge.scenario import load_preset
from specedge.latency.params import ScenarioParams

#   job:        0     1     2     3
Q = VerifyQueue.of(cell=[2, 0, 1, 0], ready_s=[1.0, 2.0, 3.0, 0.5], verify_s=[0.3, 0.1, 0.2, 0.4],
                   sbs_idle_at_s=[9.0, 4.0, 3.5, 4.0], now_s=5.0, last_cell=0, num_cells=3)


def test_builtin_policies_on_a_hand_built_queue():
    assert get_verifier_policy("fcfs").choose(Q) == 3                   # ready 0.5 first
    assert get_verifier_policy("round-robin").choose(Q) == 2            # after cell 0 comes cell 1
    assert get_verifier_policy("shortest-verify-first").choose(Q) == 1  # 0.1 s
    assert get_verifier_policy("pipeline-aware").choose(Q) == 2         # cell 1's SBS idles first (3.5)
    rr = get_verifier_policy("round-robin")
    assert rr.choose(VerifyQueue.of([2, 0, 1, 0], [1, 2, 3, 0.5], [1] * 4, last_cell=1, num_cells=3)) == 0
    assert rr.choose(VerifyQueue.of([2, 0, 1, 0], [1, 2, 3, 0.5], [1] * 4, last_cell=2, num_cells=3)) == 3


def test_ties_go_to_earlier_ready_then_lower_cell():
    q = VerifyQueue.of([1, 0, 2], [2.0, 2.0, 1.0], [0.5, 0.5, 0.5], [3.0, 3.0, 3.0], num_cells=3)
    assert get_verifier_policy("shortest-verify-first").choose(q) == 2
    assert get_verifier_policy("pipeline-aware").choose(q) == 2
    q2 = VerifyQueue.of([1, 0], [2.0, 2.0], [0.5, 0.5], num_cells=2)
    assert get_verifier_policy("fcfs").choose(q2) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 10), st.floats(0.01, 2), st.floats(0, 10)),
                min_size=1, max_size=12), st.integers(-1, 4))
def test_every_policy_returns_a_waiting_job_and_its_rule_holds(jobs, last):
    cell, ready, verify, idle = (np.array(c) for c in zip(*jobs))
    q = VerifyQueue.of(cell, ready, verify, idle, last_cell=last, num_cells=5)
    for name in ("fcfs", "round-robin", "shortest-verify-first", "pipeline-aware"):
        i = get_verifier_policy(name).choose(q)
        assert 0 <= i < len(cell)
    assert ready[get_verifier_policy("fcfs").choose(q)] == ready.min()
    assert verify[get_verifier_policy("shortest-verify-first").choose(q)] == verify.min()
    assert idle[get_verifier_policy("pipeline-aware").choose(q)] == idle.min()
    turn = (cell - last - 1) % 5
    assert turn[get_verifier_policy("round-robin").choose(q)] == turn.min()


def test_registry_names_errors_and_plugins(tmp_path):
    assert {"fcfs", "round-robin", "shortest-verify-first", "pipeline-aware"} <= set(available_verifier_policies())
    with pytest.raises(PolicyError, match="unknown verifier policy 'lifo'"):
        get_verifier_policy("lifo")

    @register_verifier_policy("test-last")
    class Last:
        def choose(self, q):
            return len(q.cell) - 1

    assert get_verifier_policy("test-last").choose(Q) == 3
    f = tmp_path / "mine.py"
    f.write_text("class First:\n    def choose(self, q):\n        return 0\n")
    assert get_verifier_policy(f"{f}:First").choose(Q) == 0
    with pytest.raises(PolicyError):
        get_verifier_policy(object())


def _params():
    return ScenarioParams.from_mapping(load_preset("paper")["params"], source="paper")


def test_association_by_hand():
    topo = load_topology("multi-cell")  # SBSs at (0, 800), (693, -400), (-693, -400)
    users = pd.DataFrame({"x_m": [0.0, 690.0, -10.0, 0.0], "y_m": [700.0, -390.0, -400.0, 0.0]})
    d = distances_m(users, topo)
    assert d[0, 0] == pytest.approx(100.0)
    assert associate(users, topo, _params(), "nearest").tolist()[:3] == [0, 1, 2]
    with pytest.raises(ScenarioError, match="association rule"):
        associate(users, topo, _params(), "random")


def _equal_share_rates(users, topo, cells):
    from specedge.latency.network import spectral_efficiency

    d = distances_m(users, topo)[np.arange(len(users)), cells]
    band = np.array([c.uplink_bandwidth_hz for c in topo.cells])
    load = np.bincount(cells, minlength=topo.num_cells)
    return spectral_efficiency(d, _params()) * band[cells] / load[cells]


def test_load_aware_spreads_users_that_nearest_piles_up():
    topo = load_topology("multi-cell")
    # 30 users far from every SBS but within reach of cell a only: both rules keep them at a
    far = pd.DataFrame({"x_m": np.zeros(30), "y_m": np.linspace(780, 820, 30)})
    assert set(associate(far, topo, _params(), "load-aware").tolist()) == {0}
    # 20 users a little nearer cell b (10 MHz) than cell a (20 MHz): nearest piles all on b, load-aware moves
    # users to a until a's equal share stops being better, and the worst user's rate goes up
    mid = pd.DataFrame({"x_m": np.full(20, 360.0), "y_m": np.full(20, 180.0)})
    nearest = associate(mid, topo, _params(), "nearest")
    assert set(nearest.tolist()) == {1}
    aware = associate(mid, topo, _params(), "load-aware")
    assert set(aware.tolist()) == {0, 1}
    assert _equal_share_rates(mid, topo, aware).min() > _equal_share_rates(mid, topo, nearest).min()


def test_place_users_is_in_each_home_disk_and_deterministic():
    topo = load_topology("multi-cell")
    p = _params()
    u = place_users(topo, p, seed=3)
    assert len(u) == sum(c.num_users for c in topo.cells)
    d = distances_m(u, topo)[np.arange(len(u)), u["home_cell"].to_numpy()]
    radius = np.array([c.cell_radius_m for c in topo.cells])[u["home_cell"].to_numpy()]
    assert (d <= radius + 1e-9).all() and (d >= p.min_distance_m - 1e-9).all()
    pd.testing.assert_frame_equal(u, place_users(topo, p, seed=3))


def test_associate_workloads_moves_requests_to_a_nearer_cell_and_conserves_them():
    from dataclasses import replace

    from specedge.multicell.association import associate_workloads
    from specedge.online import workload as wl

    topo = load_topology("multi-cell")
    # pull cell b next to cell a so that their disks overlap
    topo = replace(topo, cells=(topo.cells[0], replace(topo.cells[1], position_m=(0.0, 500.0)), topo.cells[2]))
    p = _params()
    ws = tuple(wl.synthetic(p, rate_rps=1.0, num_requests=60, seed=c) for c in range(3))
    near = associate_workloads(topo, ws, p, "nearest", seed=1)
    assert sum(w.num_requests for w in near) == 180
    assert [w.num_requests for w in near] != [60, 60, 60]
    assert near[2].num_requests == 60  # cell c is far from both
    for w in near:
        assert (np.diff(w.arrival_s) >= 0).all()
    arrivals = np.sort(np.concatenate([w.arrival_s for w in ws]))
    assert np.array_equal(np.sort(np.concatenate([w.arrival_s for w in near])), arrivals)
    assert associate_workloads(topo, ws, p, "home") == ws
