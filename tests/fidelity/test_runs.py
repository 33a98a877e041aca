"""fidelity.runs: the run-metadata helpers moved out of fidelity.compare are the same objects under both names, and
memo.clear empties the records cache that runs._records fills (not a copy of it)."""

from __future__ import annotations

from specedge.fidelity import compare, memo, runs

MOVED = ("named_traces", "run_noise", "pair_runs", "_RECORDS_CACHE", "_records", "latest_run", "fronthaul_of")


def test_compare_re_exports_every_moved_name():
    for name in MOVED:
        assert getattr(compare, name) is getattr(runs, name), name


def test_clear_empties_the_cache_records_fills():
    runs._RECORDS_CACHE[("probe",)] = 1
    memo.clear()
    assert not runs._RECORDS_CACHE
