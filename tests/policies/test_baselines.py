"""Each baseline does what its definition says (README "Policies")."""

from __future__ import annotations

import numpy as np
import pytest

from specedge import evaluate
from specedge.latency import memory
from specedge.policies import dp, get_policy, optimize
from specedge.policies.baselines import equal_partition, greedy_max_partition
from tests.policies.helpers import PAIRS, small


def _lengths(sc, batch):
    t = sc.tasks
    return len(batch), t["input_tokens"].to_numpy()[list(batch)].max(), t["output_tokens"].to_numpy()[list(batch)].max()


def test_modes_bandwidth_and_fixed_l():
    sc = small(9, seed=2)
    paper = optimize(sc, "paper-dp")
    assert optimize(sc, "ad").mode == "ad" and optimize(sc, "ad").batches == paper.batches
    assert optimize(sc, "sd-serial").mode == "sd-serial"
    uni = optimize(sc, "uniform-bandwidth")
    np.testing.assert_allclose(uni.bandwidth_hz, sc.bandwidth_hz / 9)
    np.testing.assert_allclose(paper.bandwidth_hz, sc.optimal_bandwidth_hz())
    assert uni.batches == paper.batches  # the bandwidth only moves the upload term
    assert set(optimize(sc, "fixed-l").speculation_length) == {7}
    assert set(optimize(sc, "fixed-l", l=3).speculation_length) == {3}


def test_no_batching():
    sc = small(6, seed=1)
    plan = optimize(sc, "no-batching")
    assert sorted(plan.batches) == [(k,) for k in range(6)]


def test_static_batching_is_arrival_order_fixed_size():
    sc = small(20, seed=3)
    plan = optimize(sc, "static-batching", batch_size=6)
    assert plan.batches == (tuple(range(0, 6)), tuple(range(6, 12)), tuple(range(12, 18)), (18, 19))
    # the size shrinks until every batch fits the SBS memory
    tight = small(20, seed=3, pair="tinyllama-1.1b/llama-13b", output_max=2048, input_max=512, sbs_memory_bytes=5e9)
    plan = optimize(tight, "static-batching", batch_size=8)
    assert all(memory.sbs_fits(tight, *_lengths(tight, b)) for b in plan.batches)
    assert len(plan.batches[0]) < 8 and [i for b in plan.batches for i in b] == list(range(20))


def test_max_batching_fills_each_batch_to_the_memory_limit():
    sc = small(40, seed=5, pair="tinyllama-1.1b/llama-13b", output_max=2048, input_max=512)
    plan = optimize(sc, "max-batching")
    order = [i for b in plan.batches for i in b]
    assert order == dp.sorted_order(sc).tolist()
    for m, b in enumerate(plan.batches):
        assert memory.sbs_fits(sc, *_lengths(sc, b))
        if m + 1 < len(plan.batches):  # one more task would not fit
            assert not memory.sbs_fits(sc, *_lengths(sc, b + (plan.batches[m + 1][0],)))
    assert greedy_max_partition(small(5), np.arange(5)) == [(0, 5)]


def test_heuristic_batching_is_equal_sized_sorted_batches():
    sc = small(11, seed=0)
    plan = optimize(sc, "heuristic-batching")
    assert [len(b) for b in plan.batches] in ([6, 5], [5, 6])
    assert [i for b in plan.batches for i in b] == dp.sorted_order(sc).tolist()
    assert len(optimize(sc, "heuristic-batching", num_batches=3).batches) == 3
    assert equal_partition(5, 2) == [(0, 2), (2, 5)] or equal_partition(5, 2) == [(0, 3), (3, 5)]
    with pytest.raises(Exception, match="num_batches"):
        optimize(sc, "heuristic-batching", num_batches=0)


@pytest.mark.parametrize("pair", PAIRS)
def test_baselines_replay(pair):
    sc = small(8, seed=7, pair=pair)
    for name in ("ad", "sd-serial", "no-batching", "fixed-l", "static-batching", "max-batching",
                 "heuristic-batching", "uniform-bandwidth"):
        assert evaluate(sc, get_policy(name).plan(sc)).latency_s > 0
