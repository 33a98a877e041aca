"""Per-request energy on the online multi-cell path: shares by verified positions, summing to the total."""

from __future__ import annotations

import numpy as np
import pytest

from specedge.multicell import online as mco
from specedge.multicell.topology import load_topology
from specedge.online import OnlineConfig


def _run(preset, cells, policy="fcfs", driver="numba", requests=30, rate=0.05):
    topo = load_topology(preset).with_num_cells(cells)
    scs = tuple(topo.cell_scenario(c, seed=0, tasks=1, acceptance="iid") for c in range(cells))
    ws = mco.workloads(topo, rate_rps=rate, num_requests=requests, seed=3, scenarios=scs)
    return mco.simulate(topo, ws, policy, OnlineConfig(max_batch_size=8), scenarios=scs, driver=driver)


@pytest.mark.parametrize("preset,cells,policy,driver", [
    ("multi-cell", 3, "fcfs", "numba"), ("multi-cell", 3, "smartspec", "python"), ("multi-cell", 2, "ad", "numba"),
    ("dip-sd", 3, "fcfs", "numba")])
def test_per_request_energies_sum_to_the_total(preset, cells, policy, driver):
    run = _run(preset, cells, policy, driver)
    e = mco.energy(run)
    per = np.concatenate(e["per_request_j"])
    assert per.size == sum(r.workload.num_requests for r in run.runs) and (per > 0).all()
    assert per.sum() == pytest.approx(e["energy_j"], rel=1e-9)
    # the shares themselves add up to the busy times and the fronthaul bits
    for r, sh, bits in zip(run.runs, run.request_shares, run.fronthaul_bits):
        assert sh[:, 0].sum() == pytest.approx(r.mbs_busy_s, rel=1e-12)
        assert sh[:, 1].sum() == pytest.approx(r.sbs_busy_s, rel=1e-12, abs=1e-15)
        assert sh[:, 2].sum() == pytest.approx(bits, rel=1e-12, abs=1e-9)
    s = mco.summary(run)
    assert s["energy_j_per_request_p50"] <= s["energy_j_per_request_p90"]
    assert s["energy_j_per_token_p50"] <= s["energy_j_per_token_p90"]


def test_share_weights_by_hand():
    # l = 3: continuing members verify 4 positions, a joiner of 10 input tokens 14: shares 4/22, 4/22, 14/22
    assert mco.share_weights(3, 2, np.array([10])).tolist() == pytest.approx([4 / 22, 4 / 22, 14 / 22])
    # AD round: 1 position per continuing member, I_k for a joiner
    assert mco.share_weights(0, 1, np.array([3])).tolist() == pytest.approx([0.25, 0.75])


def test_a_lone_request_carries_the_whole_energy():
    run = _run("multi-cell", 1, requests=1)
    e = mco.energy(run)
    assert e["per_request_j"][0].tolist() == pytest.approx([e["energy_j"]], rel=1e-12)


def test_longer_requests_cost_more():
    # same cell, same policy: energy per request grows with the request's output length (more rounds)
    run = _run("multi-cell", 1, requests=60, rate=0.02)
    e = mco.energy(run)["per_request_j"][0]
    out = run.runs[0].workload.output_tokens
    assert np.corrcoef(out, e)[0, 1] > 0.5
