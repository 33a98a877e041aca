"""Compute traces of the serving engine, measured under the run's conditions (same core, one thread).

Replay predicts pass latency from compute traces; a fidelity check is only as fair as those traces are of the
code that serves. :func:`measure_pair` times the ragged serving engine (:class:`specedge.serve.engine.EngineLM`)
with the project's compute-trace measurer (:func:`specedge.record.compute_trace.measure_compute`), each model on
its node's core, over a grid that covers the run's shapes (:func:`run_grid`), and writes one compute dataset per
model through the store.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable

import numpy as np

#: Batch sizes the grid draws from (plus the plan's largest batch): members leave a batch, so b takes every
#: value from the largest batch down to 1 and the predictors interpolate between these.
GRID_BATCH_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
#: Timed passes per configuration and untimed warm-up passes before them.
GRID_REPEATS = 10
GRID_WARMUP = 2


def run_grid(sc, plan, *, repeats: int = GRID_REPEATS, warmup: int = GRID_WARMUP):
    """A :class:`ComputeGrid` covering the passes a run of ``plan`` makes: batch sizes 1..max batch, verify
    widths 2..max l + 1 (draft passes that feed two tokens fall here too), and contexts in powers of two from
    below the shortest prompt to above the longest prompt + output (prefill widths use the same values)."""
    from specedge.record.compute_trace import ComputeGrid

    b_max = max(len(b) for b in plan.batches)
    batch_sizes = tuple(sorted({b for b in GRID_BATCH_SIZES if b < b_max} | {b_max}))
    l_max = max(plan.speculation_length)
    lo = int(sc.tasks["input_tokens"].min())
    hi = int(sc.tasks["input_tokens"].max() + sc.tasks["output_tokens"].max()) + 2 * l_max + 2
    c_lo = 2 ** int(np.floor(np.log2(max(lo, 2))))
    c_hi = 2 ** int(np.ceil(np.log2(hi)))
    contexts = tuple(int(c) for c in 2 ** np.arange(int(np.log2(c_lo)), int(np.log2(c_hi)) + 1))
    return ComputeGrid(batch_sizes=batch_sizes, new_tokens=tuple(range(2, l_max + 2)), context_tokens=contexts,
                       repeats=repeats, warmup=warmup)


def measure_pair(sc, plan, draft, target, *, store, cores=(0, 1), grid=None, stamp: str | None = None,
                 progress: Callable[[str, int, int], None] | None = None, note: str = "") -> dict[str, str]:
    """Measure both models' compute traces on their node cores (``draft``/``target``: ModelSource); returns
    {"draft": id, "verify": id}."""
    import torch

    from specedge.record.compute_trace import cpu_device_id, measure_compute
    from specedge.serve.engine import EngineLM
    from specedge.serve.workload import load_model

    grid = grid or run_grid(sc, plan)
    stamp = stamp or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    old_affinity = os.sched_getaffinity(0)
    old_threads = torch.get_num_threads()
    ids = {}
    try:
        for role, card, source, core in (("draft", sc.draft, draft, cores[0]), ("verify", sc.target, target, cores[1])):
            if core is not None:
                os.sched_setaffinity(0, {int(core)})
            lm = EngineLM(load_model(source), capacity=int(max(grid.context_tokens)) * 2 + 64)
            dataset_id = f"compute-{card.name}-serve-{stamp}"
            frame, meta = measure_compute(
                lm, grid, dataset_id=dataset_id, device=cpu_device_id(1), threads=1, seed=0,
                note=note or f"serving engine on core {core}, measured right before a real run (specedge serve-real)",
                progress=(lambda done, total, info, _r=role: progress(_r, done, total)) if progress else None,
            )
            meta = {**meta, "core": core, "load_average": [round(x, 2) for x in os.getloadavg()],
                    "engine": lm.describe()["engine"]}
            store.write(frame, dataset_id, kind="compute", metadata=meta)
            ids[role] = dataset_id
    finally:
        os.sched_setaffinity(0, old_affinity)
        torch.set_num_threads(old_threads)
    return ids
