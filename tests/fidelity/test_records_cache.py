"""The fidelity study caches each run's records and their time outside passes; a host-overhead fit through the
cache must equal one computed from freshly read records (the shipped store's quiet runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specedge.fidelity import compare
from specedge.latency.host_overhead import fit_job_overhead, outside_pass_times
from specedge.provenance import REPO_ROOT
from specedge.serve.dataset import split_records
from specedge.traces.store import open_store

PAIR = "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"


def test_pair_fit_through_the_cache_equals_a_fresh_fit():
    store = open_store(REPO_ROOT / "traces")
    runs = [i for i in store.list() if i.kind == "run" and i.metadata.get("pair") == PAIR
            and not i.metadata.get("online")]
    quiet = [i for i in runs if not compare.run_noise(i.metadata)[0]]
    if len(quiet) < 3:
        pytest.skip("needs the shipped quiet runs of the stdlib pair")
    target = quiet[0]
    parts = split_records(store.read(target.id))
    compare._RECORDS_CACHE.clear()
    for _ in range(2):  # the second call is served from the cache
        fits, desc = compare.host_overheads(store, target.id, target.metadata, parts, "pair")
        others = desc["runs"]
        assert target.id not in others and len(others) >= 2
        fresh = []
        for run_id in others:
            p = split_records(store.read(run_id))
            fresh.append(outside_pass_times(p["job"], p["pass"]))
        samples = pd.concat(fresh, ignore_index=True)
        for node in ("draft", "verify"):
            want = fit_job_overhead(samples, node).overhead
            got = fits[node]
            for field in ("a_s", "per_seq_s", "per_token_s"):
                np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-12, err_msg=field)
