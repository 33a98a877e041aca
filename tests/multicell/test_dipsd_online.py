"""DiP-SD batches served on the online engine (specedge.multicell.dipsd_online)."""

from __future__ import annotations

import numpy as np

from specedge.multicell import dipsd_online
from specedge.multicell.topology import load_topology
from specedge.online import engine as online_engine
from specedge.online.policies import FCFS


def test_one_user_equals_the_online_engine_bit_for_bit():
    topo = load_topology("dip-sd")
    r = dipsd_online.serve_batches(topo, [0], [3], requests=3, input_tokens=64, output_tokens=40)
    sc = topo.with_num_cells(1).cell_scenario(0, tasks=1)
    w = dipsd_online._workload(3, 64, 40, "user 0")
    config = online_engine.OnlineConfig(num_slots=1, max_batch_size=1, max_speculation_length=3)
    ref = online_engine.simulate(sc, w, FCFS(speculation_length=3), config)
    got = r["runs"][0]
    for f in ("completion_s", "first_token_s", "start_s", "rounds"):
        assert np.array_equal(getattr(got, f), getattr(ref, f)), f
    assert got.mbs_busy_s == ref.mbs_busy_s and got.sbs_busy_s == ref.sbs_busy_s


def test_the_server_verifies_whole_batches_one_at_a_time():
    topo = load_topology("dip-sd")
    log = []
    r = dipsd_online.serve_batches(topo, [0, 1, 0, 1], [2, 1, 6, 2], requests=2, input_tokens=64,
                                   output_tokens=32, log=log)
    log = np.array(log)
    # (batch, ready, start, end, members): starts never before the batch's drafts are in or the server is free
    assert (log[:, 2] >= log[:, 1] - 1e-12).all()
    assert (log[1:, 2] >= log[:-1, 3] - 1e-12).all()
    assert set(log[:, 0].astype(int)) == {0, 1} and log[:, 4].max() == 2
    # the members' shares of the joint passes add up to the server's busy time
    assert np.isclose(sum(run.mbs_busy_s for run in r["runs"]), r["server_busy_s"])
    assert np.isclose(r["server_busy_s"], (log[:, 3] - log[:, 2]).sum())


def test_batched_verification_beats_verifying_users_apart():
    # four users in one padded pass cost less server time than four passes of one: with the same l the
    # grouped run finishes no later than one user per batch
    topo = load_topology("dip-sd")
    kw = {"requests": 2, "input_tokens": 64, "output_tokens": 32}
    one = dipsd_online.serve_batches(topo, [0, 0, 0, 0], [2, 2, 2, 2], **kw)
    apart = dipsd_online.serve_batches(topo, [0, 1, 2, 3], [2, 2, 2, 2], **kw)
    assert one["server_busy_s"] < apart["server_busy_s"]


def test_compare_online_reproduces_the_qualitative_result():
    table = dipsd_online.compare_online(load_topology("dip-sd"), (2, 4, 8), requests=2, output_tokens=64,
                                        input_tokens=256, l_max=6)
    x = table.pivot(index="users", columns="scheme", values="user_rate_tokens_per_s")
    assert (x.loc[[4, 8], "dip-sd"] > x.loc[[4, 8], "ad-greedy"]).all()
    assert (x["dip-sd"] >= x["sd-greedy"]).all()
    gain = x["dip-sd"] / x["ad"]
    assert gain.is_monotonic_increasing
