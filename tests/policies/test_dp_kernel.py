"""The DP's compiled recurrence on hand-made costs, against a plain-Python DP written here from its definition:
f[i] = min over j of f[j] + c(j, i), the first minimum in order of the last batch's length (the smallest last
batch wins ties), per l; and the per-batch-l DP that takes the cheapest l of each batch (the first l on ties).

Costs are small integers, so sums are exact and ties are real; outputs repeat, so the suffix maxima have ties.
"""

from __future__ import annotations

import numpy as np
import pytest

from specedge.policies.dp_kernel import MODE_CODES, affine_dp, suffix_max_pairs


def _pairs_by_definition(outputs, width):
    """Every end e: the distinct values of max(outputs[e - t .. e]) for t = 0 .. min(width, e + 1) - 1."""
    ends, omax = [], []
    for e in range(len(outputs)):
        seen = []
        for t in range(min(width, e + 1)):
            m = max(outputs[e - t : e + 1])
            if m not in seen:
                seen.append(m)
        ends += [e] * len(seen)
        omax += seen
    return ends, omax


def _dp_by_definition(cost, tmax, k, nl):
    """cost(j, i, r) of the batch j..i-1 at l index r; lengths 1..tmax[i-1]. Returns f, last-batch t per (i, r)."""
    f = [[0.0] * nl] + [[np.inf] * nl for _ in range(k)]
    arg = [[0] * nl for _ in range(k + 1)]
    for i in range(1, k + 1):
        for r in range(nl):
            for t in range(tmax[i - 1]):  # t + 1 tasks: j = i - 1 - t
                tot = f[i - 1 - t][r] + cost(i - 1 - t, i, r)
                if tot < f[i][r]:
                    f[i][r], arg[i][r] = tot, t
    return f, arg


def _setup(outputs, tmax, slope_d, slope_v, base_v):
    """D = slope_d[r] * O_max * b, V = base_v[r] + slope_v[r] * O_max * b for a batch of b tasks (V's fixed part
    makes large batches pay): the kernel's input (values at b = 1 and slopes in b for each (end, O_max) pair)."""
    out32 = np.asarray(outputs, dtype=np.float32)
    start, pair_end, pair_omax = suffix_max_pairs(out32, int(max(tmax)))
    o = pair_omax.astype(np.float64)[:, None]
    d1 = np.asarray(slope_d, dtype=np.float64)[None, :] * o
    dv = np.asarray(slope_v, dtype=np.float64)[None, :] * o
    v1 = np.asarray(base_v, dtype=np.float64)[None, :] + dv
    return out32, np.asarray(tmax, dtype=np.int64), start, d1, d1.copy(), v1, dv


def test_suffix_max_pairs_with_repeated_outputs():
    outputs = [3, 3, 1, 5, 5, 2, 5, 7, 7, 1]
    for width in (1, 2, 4, 10):
        start, pair_end, pair_omax = suffix_max_pairs(np.asarray(outputs, dtype=np.float32), width)
        ends, omax = _pairs_by_definition(outputs, width)
        assert pair_end.tolist() == ends and pair_omax.tolist() == omax
        assert start[0] == 0 and np.diff(start).tolist() == [ends.count(e) for e in range(len(outputs))]


#: (slope_d, slope_v, base_v) per l index. ``ties``: l indices 0 and 3 cost the same in two modes, no fixed
#: part at l index 0 (every split of a batch ties); ``batching``: fixed parts favour batches of 10-40 tasks, and
#: l indices 2 and 4 are equal (the per-batch l must take the first).
COEFFICIENTS = {"ties": ([1, 2, 0, 1], [1, 0, 1, 1], [0, 3, 2, 0]),
                "batching": ([1, 0, 1, 2, 1], [2, 2, 1, 1, 1], [10, 10, 25, 40, 25])}


@pytest.mark.parametrize("mode", ["sd-pipeline", "sd-serial", "ad"])
@pytest.mark.parametrize("shape", ["short", "long"])
@pytest.mark.parametrize("coefficients", sorted(COEFFICIENTS))
def test_recurrence_matches_its_definition_with_ties(mode, shape, coefficients):
    """``long``: few distinct outputs and up to 40 lengths, so that runs of one O_max span several blocks of 8
    lengths (the kernel's unrolled scan) and a remainder."""
    rng = np.random.default_rng(7)
    k = 40 if shape == "short" else 90
    outputs = rng.integers(1, 5 if shape == "short" else 3, k).tolist()  # repeats: ties in the suffix maxima
    tmax = [min(e + 1, int(w)) for e, w in enumerate(rng.integers(1, 9 if shape == "short" else 41, k))]
    slope_d, slope_v, base_v = COEFFICIENTS[coefficients]
    args = _setup(outputs, tmax, slope_d, slope_v, base_v)
    code = MODE_CODES[mode]
    codes = [code, 0 if code == 1 else 1]  # a second mode in the same pass (extra_modes)
    f, arg, g, garg = affine_dp(*args, np.array(codes, dtype=np.int64), code)

    def cost(j, i, r, code=code):
        b, o = i - j, max(outputs[j:i])
        d, v = slope_d[r] * o * b, base_v[r] + slope_v[r] * o * b
        return max(d, v) if code == 0 else d + v if code == 1 else v

    nl = len(slope_d)
    for q, c in enumerate(codes):
        ref_f, ref_arg = _dp_by_definition(lambda j, i, r, c=c: cost(j, i, r, c), tmax, k, nl)
        assert f[q].tolist() == ref_f and arg[q].tolist() == ref_arg
    # per-batch l: the cheapest l of each batch (first on ties), then the same recurrence
    best_l = lambda j, i: min(range(nl), key=lambda r: (cost(j, i, r), r))  # noqa: E731
    ref_g, ref_garg = _dp_by_definition(lambda j, i, _: cost(j, i, best_l(j, i)), tmax, k, 1)
    assert g.tolist() == [row[0] for row in ref_g] and garg[0].tolist() == [row[0] for row in ref_garg]
    ends = np.arange(1, k + 1)
    assert garg[1, 1:].tolist() == [best_l(e - 1 - t, e) for e, t in zip(ends, garg[0, 1:])]
    # the per-batch-l DP follows its own mode wherever it is in the pass (dp.solve with per_l off)
    f2, arg2, g2, garg2 = affine_dp(*args, np.array(codes[::-1], dtype=np.int64), code)
    assert (f2 == f[::-1]).all() and (arg2 == arg[::-1]).all() and (g2 == g).all() and (garg2 == garg).all()


def test_equal_costs_pick_the_smallest_last_batch_and_first_l():
    # every batch costs b (one unit per task) at both l: every partition ties, all batches of one task win
    k = 20
    args = _setup([2] * k, [min(e + 1, 12) for e in range(k)], [0, 0], [0.5, 0.5], [0, 0])
    f, arg, g, garg = affine_dp(*args, np.array([0], dtype=np.int64), 0)
    assert f[0, :, 0].tolist() == list(range(k + 1))
    assert (arg == 0).all() and (garg == 0).all()


def test_per_batch_l_needs_its_mode_in_the_pass():
    args = _setup([1, 2, 3], [1, 2, 3], [1], [1], [0])
    with pytest.raises(ValueError, match="batch_code"):
        affine_dp(*args, np.array([1], dtype=np.int64), 0)
