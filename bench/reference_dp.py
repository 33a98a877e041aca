"""The speed reference for the paper's DP: a straightforward implementation of the same recurrence.

For each l, for each end i, for each start j: the batch (j, i) of the tasks sorted by input length, its SBS memory
check (:func:`specedge.latency.memory.sbs_fits`) and its surrogate cost max(D, V) from
:func:`specedge.latency.planning.batch_stage_times_s` called on that one batch; f[i] = min_j f[j] + c(j, i).
It is what one writes first: correct, O(l_max K^2) calls into the latency model. The optimized
:func:`specedge.policies.dp.solve` must return the same plan (tests/policies/test_dp.py) and be >= 20x faster
(bench/optimizer.py, bench/test_optimizer_speed.py).
"""

from __future__ import annotations

import math

from specedge.latency import memory, planning
from specedge.policies.dp import combine, sorted_order


def reference_solve(sc, l_values=range(1, 11), mode: str = "sd-pipeline"):
    """Returns (bounds [(j, i), ...] over the sorted order, best l, surrogate cost without the upload)."""
    order = sorted_order(sc)
    inputs = sc.tasks["input_tokens"].to_numpy()[order].tolist()
    outputs = sc.tasks["output_tokens"].to_numpy()[order].tolist()
    k = len(order)
    best = (None, None, math.inf)
    for l in l_values:
        f = [0.0] + [math.inf] * k
        arg = [0] * (k + 1)
        for i in range(1, k + 1):
            o_max = 0
            for j in range(i - 1, -1, -1):  # growing batches (j, i), the same tie order as the vectorised DP
                b = i - j
                o_max = max(o_max, outputs[j])
                i_max = inputs[i - 1]
                if mode != "ad" and not bool(memory.sbs_fits(sc, b, i_max, o_max)):
                    break  # memory only grows with the batch
                d, v, _ = planning.batch_stage_times_s(sc, b, i_max, o_max, l,
                                                       mode="ad" if mode == "ad" else "sd")
                cost = f[j] + float(combine(mode, d, v))
                if cost < f[i]:
                    f[i] = cost
                    arg[i] = j
        if f[k] < best[2]:
            bounds, i = [], k
            while i > 0:
                bounds.append((arg[i], i))
                i = arg[i]
            best = (bounds[::-1], int(l), f[k])
    return best
