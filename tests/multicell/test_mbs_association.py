"""Cell-to-MBS association with several MBSs: known answers on small topologies, an exhaustive oracle, the
registry, and the online run it feeds."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from specedge.errors import PolicyError
from specedge.multicell import mbs_association as ma
from specedge.multicell import online as mco
from specedge.multicell.topology import load_topology


def _min_max_oracle(load):
    """Every assignment of cells to MBSs; the smallest largest utilisation (written from the definition)."""
    load = np.asarray(load)
    best = None
    for a in itertools.product(range(load.shape[1]), repeat=load.shape[0]):
        util = [sum(load[c, j] for c in range(load.shape[0]) if a[c] == j) for j in range(load.shape[1])]
        if best is None or max(util) < best[0]:
            best = (max(util), a)
    return best


@pytest.fixture(scope="module")
def topo():
    return load_topology("multi-mbs")


def test_equal_cells_on_equal_mbss_split_two_and_two(topo):
    load = np.ones((4, 2))
    got = ma.get_mbs_association("load-aware").assign(topo, load)
    assert sorted(np.bincount(got, minlength=2).tolist()) == [2, 2]
    # ties go to the nearer MBS: the two western cells (x < 0) stay west
    assert got.tolist() == [0, 0, 1, 1]


def test_a_heavy_cell_gets_an_mbs_to_itself(topo):
    load = np.array([[3.0, 3.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    got = ma.get_mbs_association("load-aware").assign(topo, load)
    assert np.bincount(got, minlength=2)[got[0]] == 1
    assert max(load[got == j, j].sum() for j in range(2)) == _min_max_oracle(load)[0] == 3.0


def test_a_faster_mbs_takes_more_cells(topo):
    # MBS 1 verifies three times faster: the balanced answer puts three cells there
    load = np.array([[3.0, 1.0]] * 4)
    got = ma.get_mbs_association("load-aware").assign(topo, load)
    assert np.bincount(got, minlength=2).tolist() == [1, 3]
    assert max(load[got == j, j].sum() for j in range(2)) == _min_max_oracle(load)[0]


@pytest.mark.parametrize("seed", range(10))
def test_load_aware_is_within_lpt_bounds_of_the_oracle(topo, seed):
    load = np.random.default_rng(seed).uniform(0.1, 1.0, (4, 1)) * np.array([[1.0, 0.5]])  # related machines
    got = ma.get_mbs_association("load-aware").assign(topo, load)
    achieved = max(load[got == j, j].sum() for j in range(2))
    assert achieved <= 1.5 * _min_max_oracle(load)[0] + 1e-12


def test_fixed_and_nearest(topo):
    assert ma.get_mbs_association("fixed").assign(topo, np.ones((4, 2))).tolist() == [0, 0, 0, 0]
    assert ma.get_mbs_association("nearest").assign(topo, np.ones((4, 2))).tolist() == [0, 0, 1, 1]


def test_predicted_load_ranks_a_faster_mbs_and_a_busier_cell(topo):
    scs = tuple(topo.cell_scenario(c, tasks=1) for c in range(4))
    ws = list(mco.workloads(topo, rate_rps=0.1, num_requests=40, seed=0, scenarios=scs))
    ws[3] = mco.workloads(topo, rate_rps=0.3, num_requests=40, seed=9, scenarios=scs)[3]
    load = ma.predicted_load(topo, ws)
    assert (load[:, 1] < load[:, 0]).all()  # the A100 verifies LLaMA-7B faster than the RTX 4500 Ada
    assert load[3, 0] > 2.0 * load[0, 0]  # three times the rate, same cell kind as cell-a


def test_registry_and_errors(topo):
    class AllEast:
        def assign(self, topology, load):
            return np.ones(topology.num_cells, dtype=np.int64)

    scs = tuple(topo.cell_scenario(c, tasks=1) for c in range(4))
    ws = mco.workloads(topo, rate_rps=0.1, num_requests=5, seed=0, scenarios=scs)
    t2, got, _ = ma.associate_cells(topo, ws, AllEast())
    assert got.tolist() == [1, 1, 1, 1] and all(c.mbs == 1 for c in t2.cells)
    with pytest.raises(PolicyError, match="unknown MBS association"):
        ma.get_mbs_association("lpt")

    class Bad:
        def assign(self, topology, load):
            return np.array([0, 5, 0, 0])

    with pytest.raises(PolicyError, match="returned"):
        ma.associate_cells(topo, ws, Bad())


def test_load_aware_association_shortens_latency_online(topo):
    scs = tuple(topo.cell_scenario(c, tasks=1) for c in range(4))
    ws = mco.workloads(topo, rate_rps=0.1, num_requests=60, seed=0, scenarios=scs)
    e2e = {}
    for rule in ("fixed", "load-aware"):
        t2, got, _ = ma.associate_cells(topo, ws, rule)
        run = mco.simulate(t2, ws, "fcfs", scenarios=tuple(t2.cell_scenario(c, tasks=1) for c in range(4)))
        e2e[rule] = mco.summary(run)["e2e_p50_s"]
        if rule == "fixed":  # the unused MBS is skipped, not an error
            assert len(run.verify_log) == 2
    assert e2e["load-aware"] < 0.5 * e2e["fixed"]


def test_cli_option():
    r = subprocess.run([sys.executable, "-c", "import sys; from specedge.cli import main; sys.exit(main())",
                        "online", "--preset", "multi-mbs", "--rate", "0.1", "--requests", "20", "--mbs-association",
                        "nearest", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["cell_mbs"] == ["mbs-west", "mbs-west", "mbs-east", "mbs-east"]


def test_mbs_positions_load_from_the_preset(topo):
    assert [m.position_m for m in topo.mbs] == [(-600.0, 0.0), (600.0, 0.0)]
    assert replace(topo.mbs[0], position_m=(1.0, 2.0)).position_m == (1.0, 2.0)
