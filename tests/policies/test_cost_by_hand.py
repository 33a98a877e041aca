"""One batch's D_m, V_m and surrogate cost worked out by hand, against the DP's fast paths and the reference.

The case: two identical tasks (I = 10, O = 7), alpha = 0.5, l = 2, and toy compute predictors on a one-layer,
width-one "model" with no FFN, so one pass of x new tokens on c cached ones costs F(x, c) = 4 x (2 + c + x) FLOPs
(docs/model.md section 4 with J = h = 1, h2 = 0) and T(b, x, c) = c1 b F(x, c) + c2:
draft c1 = 1e-4 s/FLOP, c2 = 1e-3 s; verify c1 = 5e-5 s/FLOP, c2 = 1e-2 s.

By hand:
    L = (1 - 0.5^3) / (1 - 0.5) = 0.875 / 0.5 = 1.75 tokens per round;  N = ceil(7 / 1.75) = 4 rounds
    C_1, C_2, C_3 = 10 + 1.75 n = 11.75, 13.5, 15.25
    draft FLOPs   round 0: F(10, 0) + F(1, 10)             = 480 + 52               = 532   (2 passes)
                  round n: F(1, C_n) + F(1, C_n + 1)        = 28 + 8 C_n = 122, 136, 150      (2 passes each)
                  total 532 + 408 = 940 FLOPs, 8 passes
    verify FLOPs  round 0: F(l + 1 + I, 0) = F(13, 0)       = 52 * 15                = 780
                  round n: F(3, C_n) = 12 (5 + C_n)         = 201, 222, 243
                  total 780 + 666 = 1446 FLOPs, 4 passes
    D(b) = 1e-4 * 940 b + 8 * 1e-3  = 0.094 b + 0.008     -> D(2) = 0.196,  D(1) = 0.102
    V(b) = 5e-5 * 1446 b + 4 * 1e-2 = 0.0723 b + 0.04    -> V(2) = 0.1846, V(1) = 0.1123
    c(one batch of 2)  = max(0.196, 0.1846) = 0.196 (pipelined)  |  0.196 + 0.1846 = 0.3806 (serial)
    c(two singletons)  = 2 max(0.102, 0.1123) = 0.2246           |  2 (0.102 + 0.1123) = 0.4286
    AD: N = O = 7 passes, F(10, 0) + sum_{n=1..6} F(1, 10 + n) = 480 + 4 (6*13 + 21) = 480 + 396 = 876
        V_AD(b) = 5e-5 * 876 b + 7 * 1e-2 = 0.0438 b + 0.07 -> 0.1576 (b = 2), 2 * 0.1138 = 0.2276 (singletons)
So every mode puts both tasks in one batch, at surrogate 0.196 / 0.3806 / 0.1576 s.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bench import reference_dp as ref
from specedge import Scenario
from specedge.latency import planning
from specedge.latency.cards import ModelCard
from specedge.latency.compute import AffineCompute
from specedge.policies import dp

TOY = ModelCard(name="toy", display_name="toy", num_layers=1, hidden_size=1, ffn_size=0, num_params=1,
                bytes_per_param=2.0, num_attention_heads=1, num_kv_heads=1, vocab_size=1, source="test")

HAND = {  # mode: (D(2), V(2), c(one batch), c(two singletons))
    "sd-pipeline": (0.196, 0.1846, 0.196, 0.2246),
    "sd-serial": (0.196, 0.1846, 0.3806, 0.4286),
    "ad": (0.0, 0.1576, 0.1576, 0.2276),
}


class _Toy:
    """The same toy predictor written out, not an AffineCompute: forces the DP's generic path."""

    def __init__(self, c1, c2):
        self.c1, self.c2, self.model = c1, c2, TOY

    def latency_s(self, b, x, c):
        x = np.asarray(x, dtype=np.float64)
        return self.c1 * np.asarray(b, dtype=np.float64) * 4.0 * x * (2.0 + np.asarray(c) + x) + self.c2


def _scenario(affine: bool) -> Scenario:
    tasks = pd.DataFrame({"input_tokens": [10, 10], "output_tokens": [7, 7], "distance_m": [100.0, 200.0]})
    sc = Scenario.from_preset("paper", alpha=0.5, tasks=tasks)
    if affine:
        draft, verify = AffineCompute(TOY, 1e-4, 1e-3), AffineCompute(TOY, 5e-5, 1e-2)
    else:
        draft, verify = _Toy(1e-4, 1e-3), _Toy(5e-5, 1e-2)
    return dataclasses.replace(sc, draft_compute=draft, verify_compute=verify)


@pytest.mark.parametrize("affine", [True, False], ids=["affine-closed-form", "generic-grid"])
@pytest.mark.parametrize("mode", list(HAND))
def test_one_batch_by_hand(affine, mode):
    sc = _scenario(affine)
    d_hand, v_hand, c_one, c_two = HAND[mode]
    smode = "ad" if mode == "ad" else "sd"
    d, v, n = planning.batch_stage_times_s(sc, 2, 10, 7, 2, mode=smode)
    assert int(n) == (7 if mode == "ad" else 4)
    assert float(d) == pytest.approx(d_hand, rel=1e-12) and float(v) == pytest.approx(v_hand, rel=1e-12)
    assert float(dp.batch_costs_s(sc, [2], [10], [7], [2], mode)[0, 0]) == pytest.approx(c_one, rel=1e-12)
    # the independent reference gets the same numbers from the equations
    assert ref.stage_times(sc, 2, 10, 7, 2, mode=mode) == pytest.approx((d_hand, v_hand), rel=1e-12)
    assert ref.batch_cost(sc, 1, 10, 7, 2, mode) * 2 == pytest.approx(c_two, rel=1e-12)
    # the DP (fast affine path or generic path) picks the one batch at the hand-worked cost
    sol = dp.solve(sc, l_values=[2], mode=mode)
    assert sol.best_bounds == [(0, 2)]
    assert sol.cost_by_l_s[0] == pytest.approx(c_one, rel=1e-12)
