"""asv benchmarks: ingest + validate acceptance rows from CSV and Parquet, and read them back.

Targets on the 2-core reference machine for 1,000,000 rows: ingest (read + validate + write + checksum +
catalog) <= 3 s, read <= 0.5 s, peak memory <= 1 GB. Input files are generated in ``setup_cache``, outside
the timings. ``make_acceptance_table`` is shared with bench/test_ingest_speed.py.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: Rounds per synthetic request (the synthetic trace has rows / ROUNDS_PER_REQUEST requests).
ROUNDS_PER_REQUEST = 200
#: Draft length of the synthetic rounds.
DRAFTED = 8


def make_acceptance_table(rows: int, seed: int = 0) -> pa.Table:
    """A valid v1 acceptance table of ``rows`` rounds (no ``dataset`` column), built with array operations."""
    rng = np.random.default_rng(seed)
    requests = -(-rows // ROUNDS_PER_REQUEST)
    req = np.repeat(np.arange(requests, dtype=np.int32), ROUNDS_PER_REQUEST)[:rows]
    names = pa.array([f"req-{i:07d}" for i in range(requests)])
    # accepted = leading successes of Bernoulli(0.7) positions, truncated at DRAFTED
    accepted = np.minimum(rng.geometric(0.3, rows) - 1, DRAFTED).astype(np.int16)
    return pa.table(
        {
            "request_id": pa.DictionaryArray.from_arrays(pa.array(req), names).cast(pa.string()),
            "turn": pa.array(np.zeros(rows, dtype=np.int16)),
            "round": pa.array((np.arange(rows) % ROUNDS_PER_REQUEST).astype(np.int32)),
            "drafted": pa.array(np.full(rows, DRAFTED, dtype=np.int16)),
            "accepted": pa.array(accepted),
            "prompt_tokens": pa.array(np.repeat(rng.integers(16, 2048, requests), ROUNDS_PER_REQUEST)[:rows]
                                      .astype(np.int32)),
            "temperature": pa.array(np.zeros(rows, dtype=np.float32)),
            "wall_ms": pa.array(rng.uniform(5, 50, rows).astype(np.float32)),
        }
    )


def write_inputs(directory: Path, rows: int) -> dict[str, Path]:
    """The same synthetic table as CSV and as Parquet under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    table = make_acceptance_table(rows)
    paths = {"csv": directory / f"acceptance-{rows}.csv", "parquet": directory / f"acceptance-{rows}.parquet"}
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"])
    return paths


class IngestAcceptance:
    """`specedge ingest csv|parquet` on n acceptance rows: time and peak memory; then read time."""

    params = ([100_000, 1_000_000], ["csv", "parquet"])
    param_names = ["rows", "format"]
    timeout = 600

    def setup_cache(self):
        # asv runs setup_cache in a cache directory of its own and removes it after the suite.
        root = Path("ingest-inputs").resolve()
        return {rows: {fmt: str(p) for fmt, p in write_inputs(root, rows).items()} for rows in self.params[0]}

    def setup(self, inputs, rows, fmt):
        from specedge.traces.ingest import ingest
        from specedge.traces.store import open_store

        self.tmp = Path(tempfile.mkdtemp(prefix="specedge-bench-store-"))
        self.store = open_store(self.tmp)
        self.path = Path(inputs[rows][fmt])
        self.ids = (f"bench-{i}" for i in itertools.count())
        self.ingest = ingest
        ingest(self.store, fmt, self.path, "read-me")

    def teardown(self, inputs, rows, fmt):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_ingest(self, inputs, rows, fmt):
        self.ingest(self.store, fmt, self.path, next(self.ids))

    def peakmem_ingest(self, inputs, rows, fmt):
        self.ingest(self.store, fmt, self.path, next(self.ids))

    def time_read(self, inputs, rows, fmt):
        self.store.read("read-me")

    def track_stored_bytes_per_row(self, inputs, rows, fmt):
        return self.store.info("read-me").path.stat().st_size / rows

    track_stored_bytes_per_row.unit = "bytes/row"


class DerivedStatistics:
    """τ, survival, α and the histogram of n rounds (what `specedge traces show` computes)."""

    params = [1_000_000]
    param_names = ["rows"]

    def setup(self, rows):
        from specedge.traces.store import table_to_frame

        self.frame = table_to_frame(make_acceptance_table(rows))

    def time_summary(self, rows):
        from specedge.traces import stats

        stats.summary(self.frame)
