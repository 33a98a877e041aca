"""The vectorised replay equals the straightforward per-event reference (bench/reference_replay.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.reference_replay import reference_replay
from specedge import evaluate

from .helpers import aggregate_frame, small_scenario, sorted_plan, trace_frame

CASES = [
    # (acceptance, mode, batches, l, extra scenario overrides)
    ("expected", "sd-pipeline", 3, 4, {}),
    ("expected", "sd-serial", 2, 7, {}),
    ("expected", "ad", 3, 4, {}),
    ("iid", "sd-pipeline", 4, 5, {}),
    ("iid", "sd-serial", 3, 3, {"fronthaul_delay_s": 0.004}),
    ("iid", "sd-pipeline", 12, 2, {"release": "batch-uploads", "downlink_s_per_token": 0.001}),
    ("trace", "sd-pipeline", 3, 4, {}),  # l <= recorded 6: exact truncation
    ("trace", "sd-pipeline", 2, 9, {"fronthaul_delay_s": 0.002}),  # l > 6: extrapolated rounds
    ("aggregate", "sd-serial", 3, 7, {}),
    ("iid", "sd-pipeline", 3, 4, {"compute_model": "roofline"}),
]


@pytest.mark.parametrize(("acceptance", "mode", "batches", "l", "kw"), CASES)
def test_vectorised_equals_reference(acceptance, mode, batches, l, kw):
    source = {"trace": trace_frame(), "aggregate": aggregate_frame()}.get(acceptance, acceptance)
    sc = small_scenario(14, seed=2, acceptance=source, alpha=0.7, **kw)
    plan = sorted_plan(sc, batches, l=l, mode=mode)
    for replication in (0, 1):
        ref = reference_replay(sc, plan, seed=5, replication=replication)
        run = evaluate(sc, plan, replications=2, seed=5).runs[replication]
        np.testing.assert_array_equal(run.rounds, ref["rounds"])
        np.testing.assert_array_equal(run.batch, ref["batch"])
        np.testing.assert_array_equal(run.extrapolated_rounds, ref["extrapolated_rounds"])
        np.testing.assert_allclose(run.round_tokens, ref["round_tokens"], rtol=1e-12)
        for key in ("upload_s", "first_token_s", "completion_s"):
            np.testing.assert_allclose(getattr(run, key), ref[key], rtol=1e-9, err_msg=key)
    if acceptance == "trace" and l > 6:
        assert sum(ref["extrapolated_rounds"]) > 0
