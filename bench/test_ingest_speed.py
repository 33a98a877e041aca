"""pytest-benchmark: ingest + validate 1,000,000 acceptance rows, and read them back.

Runs once each in the normal test run (addopts has --benchmark-disable); measure with
``python -m pytest bench/test_ingest_speed.py --benchmark-enable``. Targets (2 cores): ingest <= 3 s,
read <= 0.5 s, peak memory <= 1 GB (the arrow pool's peak is recorded in extra_info; asv's
peakmem_ingest in bench/ingest.py measures the whole process).
"""

from __future__ import annotations

import itertools

import pyarrow as pa

from bench.ingest import write_inputs

ROWS = 1_000_000


def _ingest_benchmark(benchmark, tmp_path, fmt):
    from specedge.traces.ingest import ingest
    from specedge.traces.store import open_store

    path = write_inputs(tmp_path / "in", ROWS)[fmt]
    store = open_store(tmp_path / "store")
    ids = (f"bench-{i}" for i in itertools.count())
    info = benchmark.pedantic(lambda: ingest(store, fmt, path, next(ids)), rounds=3, iterations=1)
    assert info.rows == ROWS and store.info(info.id).checksum == info.checksum
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info["arrow_pool_peak_bytes"] = pa.default_memory_pool().max_memory()


def test_ingest_csv_1m(benchmark, tmp_path):
    _ingest_benchmark(benchmark, tmp_path, "csv")


def test_ingest_parquet_1m(benchmark, tmp_path):
    _ingest_benchmark(benchmark, tmp_path, "parquet")


def test_read_1m(benchmark, tmp_path):
    from specedge.traces.ingest import ingest
    from specedge.traces.store import open_store

    store = open_store(tmp_path / "store")
    ingest(store, "parquet", write_inputs(tmp_path / "in", ROWS)["parquet"], "big")
    frame = benchmark.pedantic(lambda: store.read("big"), rounds=5, iterations=1)
    assert len(frame) == ROWS and frame["accepted"].dtype == "int16"
