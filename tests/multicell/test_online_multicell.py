"""Several cells on the online engine: one cell equals the online simulator exactly; a shared verifier serves one
job at a time, never before the job is ready, in the order its policy says; requests are conserved."""

from __future__ import annotations

import numpy as np
import pytest

from specedge.errors import InputError
from specedge.multicell import online as mco
from specedge.multicell.topology import load_topology
from specedge.online import OnlineConfig, simulate
from specedge.online import workload as wl
from specedge.online.policies import OffAboveLoad


@pytest.fixture(scope="module")
def one_cell():
    topo = load_topology("multi-cell").with_num_cells(1)
    return topo, topo.cell_scenario(0, seed=0, tasks=1)


@pytest.mark.parametrize("policy,acceptance,extra", [
    ("fcfs", "expected", {}),
    ("smartspec", "expected", {}),
    ("fcfs", "iid", {"fronthaul_delay_s": 2e-3, "downlink_s_per_token": 1e-3}),
    # AD rounds (l = 0) skip the fronthaul; at this low load the MBS is often idle when they are ready
    (OffAboveLoad(load_threshold=1), "iid", {"fronthaul_delay_s": 5e-3}),
    ("ad", "expected", {}),  # AD serving: the serial recursion, rounds start when the MBS is free
    ("fcfs-serial", "iid", {"fronthaul_delay_s": 2e-3}),
])
@pytest.mark.parametrize("driver", ["numba", "python"])
def test_single_cell_equals_the_online_simulator_exactly(one_cell, policy, acceptance, extra, driver):
    topo, _ = one_cell
    sc = topo.cell_scenario(0, seed=0, tasks=1, acceptance=acceptance, **extra)
    w = wl.synthetic(sc.params, arrivals="poisson", rate_rps=0.1, num_requests=150, seed=4)
    cfg = OnlineConfig(num_slots=3, max_batch_size=8)
    if policy == "fcfs-serial":
        policy, cfg = "fcfs", cfg.replace(mode="sd-serial")
    a = simulate(sc, w, policy, cfg, seed=4)
    b = mco.simulate(topo, [w], policy, cfg, seed=4, scenarios=(sc,), driver=driver).runs[0]
    for f in ("upload_end_s", "start_s", "first_token_s", "completion_s", "rounds", "slot", "l_histogram"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert (a.sbs_busy_s, a.mbs_busy_s, a.jobs, a.member_rounds) == (b.sbs_busy_s, b.mbs_busy_s, b.jobs,
                                                                      b.member_rounds)


@pytest.fixture(scope="module")
def three_cells():
    topo = load_topology("multi-cell")
    scs = tuple(topo.cell_scenario(c, seed=0, tasks=1) for c in range(3))
    ws = mco.workloads(topo, rate_rps=0.05, num_requests=40, seed=1, scenarios=scs)
    return topo, scs, ws


@pytest.mark.parametrize("vp,policy", [("fcfs", "fcfs"), ("round-robin", "fcfs"), ("shortest-verify-first", "fcfs"),
                                       ("pipeline-aware", "fcfs"), ("fcfs", "ad")])
def test_shared_verifier_invariants(three_cells, vp, policy):
    topo, scs, ws = three_cells
    run = mco.simulate(topo, ws, policy, OnlineConfig(num_slots=2, max_batch_size=8), verifier_policy=vp,
                       scenarios=scs, record=True)
    log = run.verify_log[0]
    cell, ready, start, end = log.T
    assert len(log) == sum(r.jobs for r in run.runs)
    assert (start >= ready - 1e-12).all() and (end > start).all()
    assert (start[1:] >= end[:-1] - 1e-9).all()  # one job at a time on the MBS
    for r, w in zip(run.runs, ws):  # every request completes, after its first token, after its upload
        assert (r.completion_s >= r.first_token_s).all() and (r.first_token_s > r.upload_end_s).all()
        assert (r.upload_end_s >= w.arrival_s).all() and (r.rounds >= 1).all()
    if vp == "fcfs" and policy == "fcfs":
        # when job j was chosen, job j + 1 of another cell was already pending (its cell's next job); if it was
        # ready by then too, FCFS must have chosen the earlier-ready one
        both = (ready[1:] <= start[:-1]) & (cell[1:] != cell[:-1])
        assert both.sum() > 0
        assert (ready[:-1][both] <= ready[1:][both]).all()


def test_cells_that_never_overlap_do_not_interact(three_cells):
    # cell 1's requests arrive long after cell 0 is done: each cell's run equals its run alone, bit for bit
    # (continuous batching makes sharing non-monotone in general: a delayed verification can grow the next batch)
    topo, scs, _ = three_cells
    two = type(topo)(**{**topo.__dict__, "cells": topo.cells[:2]})
    w0 = wl.synthetic(scs[0].params, rate_rps=1.0, num_requests=5, seed=2)
    w1 = wl.synthetic(scs[1].params, rate_rps=1.0, num_requests=5, seed=3)
    alone0 = simulate(scs[0], w0, "fcfs")
    w1 = wl.Workload(w1.arrival_s + alone0.completion_s.max() + 1.0, w1.input_tokens, w1.output_tokens,
                     w1.distance_m)
    run = mco.simulate(two, [w0, w1], "fcfs", scenarios=scs[:2])
    assert np.array_equal(run.runs[0].completion_s, alone0.completion_s)
    assert np.array_equal(run.runs[1].completion_s, simulate(scs[1], w1, "fcfs", seed=mco._SEED_CELL).completion_s)


def test_verifier_policy_order_on_a_hand_built_case():
    # two identical one-request cells: cell 1's request arrives 1 ms later; FCFS verifies cell 0 first,
    # round-robin with no history too, and both finish (conservation)
    topo = load_topology("multi-cell").with_num_cells(1)
    topo = topo.with_num_cells(1)
    from dataclasses import replace

    two = replace(topo, cells=(topo.cells[0], replace(topo.cells[0], name="twin", position_m=(0.0, -800.0))))
    scs = tuple(two.cell_scenario(c, seed=0, tasks=1) for c in range(2))
    mk = lambda t: wl.Workload(np.array([t]), np.array([64]), np.array([32]), np.array([100.0]))  # noqa: E731
    run = mco.simulate(two, [mk(0.0), mk(1e-3)], "fcfs", scenarios=scs, record=True)
    assert run.verify_log[0][0, 0] == 0
    assert run.runs[0].completion_s[0] < run.runs[1].completion_s[0]


def test_summary_json_has_the_contract_keys(three_cells):
    topo, scs, ws = three_cells
    s = mco.summary(mco.simulate(topo, ws, "fcfs", scenarios=scs))
    for key in ("requests", "duration_s", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s",
                "e2e_p50_s", "e2e_p99_s", "slo_attainment", "goodput_rps", "energy_j_per_token"):
        assert key in s
    assert s["requests"] == 120 and len(s["cells"]) == 3
    assert all({"goodput_rps", "e2e_p99_s"} <= set(c) for c in s["cells"])
    assert s["energy_j_per_token"] > 0
    parts = s["energy_parts_j"]
    assert s["energy_j"] == pytest.approx(sum(parts.values()))


def test_wrong_workload_count_and_empty_cells_are_refused(three_cells):
    topo, scs, ws = three_cells
    empty = wl.Workload(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    with pytest.raises(InputError, match="cell-b get no requests"):
        mco.simulate(topo, [ws[0], empty, ws[2]], "fcfs", scenarios=scs)
    with pytest.raises(InputError, match="2 workloads for 3 cells"):
        mco.simulate(topo, ws[:2], "fcfs", scenarios=scs)


@pytest.mark.parametrize("vp", ["fcfs", "round-robin", "shortest-verify-first", "pipeline-aware"])
def test_compiled_driver_equals_the_python_driver(vp):
    topo = load_topology("multi-cell").with_num_cells(4)
    scs = tuple(topo.cell_scenario(c, seed=0, tasks=1, acceptance="iid") for c in range(4))
    ws = mco.workloads(topo, rate_rps=0.05, num_requests=25, seed=5, scenarios=scs)
    cfg = OnlineConfig(staging_requests=8)  # the acceptance draws are staged several times per cell
    a = mco.simulate(topo, ws, "smartspec", cfg, verifier_policy=vp, scenarios=scs, record=True, driver="numba")
    b = mco.simulate(topo, ws, "smartspec", cfg, verifier_policy=vp, scenarios=scs, record=True, driver="python")
    assert np.array_equal(a.verify_log[0], b.verify_log[0])
    assert a.fronthaul_bits == b.fronthaul_bits
    for x, y in zip(a.runs, b.runs):
        for f in ("start_s", "first_token_s", "completion_s", "rounds", "slot", "l_histogram"):
            assert np.array_equal(getattr(x, f), getattr(y, f)), f
        assert (x.sbs_busy_s, x.mbs_busy_s) == (y.sbs_busy_s, y.mbs_busy_s)
    for x, y in zip(a.request_shares, b.request_shares):  # per-request energy shares, bit for bit
        assert np.array_equal(x, y)


def test_two_mbs_groups_are_independent(three_cells):
    from dataclasses import replace

    topo, scs, ws = three_cells
    second = replace(topo.mbs[0], name="mbs-2")
    two = replace(topo, mbs=(topo.mbs[0], second),
                  cells=(topo.cells[0], topo.cells[1], replace(topo.cells[2], mbs=1)))
    both = mco.simulate(two, ws, "fcfs", scenarios=scs, record=True)
    assert len(both.verify_log) == 2 and set(both.verify_log[1][:, 0].astype(int)) == {2}
    pair = mco.simulate(replace(topo, cells=topo.cells[:2]), ws[:2], "fcfs", scenarios=scs[:2])
    alone = simulate(scs[2], ws[2], "fcfs", seed=2 * mco._SEED_CELL)
    assert np.array_equal(both.runs[2].completion_s, alone.completion_s)
    for c in range(2):
        assert np.array_equal(both.runs[c].completion_s, pair.runs[c].completion_s)
    s = mco.summary(both)
    assert "mbs_mbs_j" in s["energy_parts_j"] and "mbs_mbs-2_j" in s["energy_parts_j"]
