"""The run dataset kind: round trip through the store, and the validator's refusals."""

from __future__ import annotations

import pandas as pd
import pytest

from specedge.errors import TraceValidationError
from specedge.serve.dataset import RECORDS, run_table, split_records
from specedge.traces.store import open_store

from .tiny import RUN_ID


def _parts(tiny_run):
    return split_records(open_store(tiny_run["store"]).read(RUN_ID))


def test_round_trip_through_the_store(tiny_run, tmp_path):
    parts = _parts(tiny_run)
    store = open_store(tmp_path / "store")
    info = store.write(run_table(parts, "copy"), "copy", kind="run", metadata={"source": "recorded"})
    assert info.rows == sum(len(p) for p in parts.values())
    back = split_records(store.read("copy"))
    assert set(back) == set(RECORDS)
    for record, frame in parts.items():
        pd.testing.assert_frame_equal(back[record].reset_index(drop=True), frame.reset_index(drop=True),
                                      check_dtype=False)


@pytest.mark.parametrize("record, column, value, words", [
    ("round", "accepted", 99, "exceeds drafted"),
    ("pass", "end_s", -1.0, "expected >= 0"),
    ("task", "completion_s", None, "null; a 'task' row needs it"),
    ("round", "tokens", 50, "its rounds commit"),
    ("job", "node", "edge", "expected one of draft, verify"),
])
def test_bad_rows_are_refused_with_the_row_named(tiny_run, tmp_path, record, column, value, words):
    parts = {k: v.copy() for k, v in _parts(tiny_run).items()}
    parts[record].loc[0, column] = value
    store = open_store(tmp_path / "store")
    with pytest.raises(TraceValidationError, match=words):
        store.write(run_table(parts, "bad"), "bad", kind="run", metadata={"source": "recorded"})
    assert "bad" not in store
