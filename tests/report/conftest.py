"""A small trace store for the report tests: two published-figure datasets, one aggregate, one compute trace."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def report_store(tmp_path_factory):
    from specedge.latency.cards import load_device_card, load_model_card
    from specedge.latency.compute import RooflineCompute
    from specedge.traces import published
    from specedge.traces.store import open_store

    store = open_store(tmp_path_factory.mktemp("report-store"))
    for fig in published.FIGURES[:2]:
        store.write(published.draw_rounds(fig, seed=0), fig.dataset_id, kind="acceptance",
                    metadata=published.metadata(fig, 0))
    store.write(pd.DataFrame({"drafted": [4] * 5, "accepted": [0, 1, 2, 3, 4], "count": [30, 20, 15, 10, 25]}),
                "test-aggregate", kind="aggregate",
                metadata={"source": "ingested:vllm", "note": "test fixture: a hand-written histogram"})
    model, device = load_model_card("llama-68m"), load_device_card("rtx-3080")
    truth = RooflineCompute(model, device, compute_efficiency=0.3, memory_efficiency=0.5, overhead_s=2e-3)
    rng = np.random.default_rng(0)
    rows = []
    for phase, b, x, c in itertools.product(("decode", "verify"), (1, 4, 16), (1, 8), (64, 1024)):
        if (phase == "decode") != (x == 1):
            continue
        for _ in range(2):
            rows.append({"model": "llama-68m", "device": "rtx-3080", "dtype": "fp16", "phase": phase,
                         "batch_size": b, "new_tokens": x, "context_tokens": c,
                         "latency_ms": float(truth.latency_s(b, x, c)) * 1e3 * rng.lognormal(0, 0.03)})
    store.write(pd.DataFrame(rows), "test-compute-llama68m", kind="compute",
                metadata={"source": "ingested:csv",
                          "note": "test fixture: a roofline model with noise, not a measurement"})
    return store.root
