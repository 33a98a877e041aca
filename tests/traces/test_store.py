"""The trace store: write/read round trips, filters, catalog, versions, verify, provenance, kinds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import acceptance_frame, tree_digest

from specedge.errors import DatasetExistsError, DatasetNotFoundError, InputError, TraceValidationError
from specedge.traces import schema
from specedge.traces.store import DatasetInfo, open_store


def test_write_read_round_trip_is_exact(tmp_path, frame):
    st = open_store(tmp_path)
    info = st.write(frame, "rt", kind="acceptance", metadata={"source": "recorded"})
    assert isinstance(info, DatasetInfo) and info.rows == len(frame) and info.version == 1
    back = st.read("rt")
    assert list(back.columns) == schema.ACCEPTANCE_SCHEMA.names
    assert (back["dataset"] == "rt").all()
    for col in frame.columns:
        np.testing.assert_array_equal(back[col].to_numpy(), frame[col].to_numpy(), err_msg=col)
        expected_dtype = "Int32" if col == "prompt_tokens" else frame[col].dtype  # nullable column
        assert back[col].dtype == expected_dtype, col
    assert back["category"].isna().all()


def test_nullable_columns_stay_null_and_integers_stay_integers(tmp_path, frame):
    frame = frame.copy()
    frame["prompt_tokens"] = pd.array([None] * 3 + list(frame["prompt_tokens"][3:]), dtype="Int32")
    frame["wall_ms"] = pd.array([None] + list(frame["wall_ms"][1:]), dtype="Float32")
    st = open_store(tmp_path)
    st.write(frame, "nulls", kind="acceptance", metadata={"source": "recorded"})
    back = st.read("nulls")
    assert str(back["prompt_tokens"].dtype) == "Int32"
    assert back["prompt_tokens"].isna().sum() == 3
    assert back["wall_ms"].isna().sum() == 1
    assert back["prompt_tokens"][5] == frame["prompt_tokens"][5]


def test_filters_and_columns(store):
    one = store.read("base", filters={"request_id": "r2"})
    assert set(one["request_id"]) == {"r2"} and len(one) == 7
    two = store.read("base", filters={"request_id": ["r1", "r3"], "round": [0, 1]}, columns=["request_id", "round"])
    assert list(two.columns) == ["request_id", "round"]
    assert len(two) == 4 and set(two["round"]) == {0, 1}
    with pytest.raises(InputError, match="unknown column"):
        store.read("base", filters={"nope": 1})
    with pytest.raises(InputError, match="unknown column"):
        store.read("base", columns=["nope"])


def test_list_info_and_not_found(store):
    assert [i.id for i in store.list()] == ["base"]
    info = store.info("base")
    assert info.kind == "acceptance" and info.source == "recorded" and info.metadata["draft_model"] == "d"
    with pytest.raises(DatasetNotFoundError, match=r"'missing'.*store"):
        store.info("missing")
    with pytest.raises(DatasetNotFoundError):
        store.read("missing")


def test_existing_id_refused_and_store_unchanged(store):
    before = tree_digest(store.root)
    with pytest.raises(DatasetExistsError, match="already exists"):
        store.write(acceptance_frame(seed=1), "base", kind="acceptance", metadata={"source": "recorded"})
    assert tree_digest(store.root) == before


def test_replace_keeps_previous_version_readable(store):
    old = store.read("base")
    new_frame = acceptance_frame(requests=2, seed=9)
    info = store.write(new_frame, "base", kind="acceptance", metadata={"source": "recorded", "note": "fix"},
                       replace=True)
    assert info.version == 2 and info.rows == len(new_frame)
    assert len(store.read("base")) == len(new_frame)
    pd.testing.assert_frame_equal(store.read("base", version=1), old)
    assert [v.version for v in store.versions("base")] == [1, 2]
    assert store.info("base", version=1).path.is_file()
    with pytest.raises(DatasetNotFoundError, match="no version 7"):
        store.info("base", version=7)
    assert all(r.ok for r in store.verify()) and len(store.verify()) == 2


def test_verify_detects_a_changed_file(store):
    path = store.info("base").path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    (result,) = store.verify()
    assert not result.ok and result.problem == "checksum mismatch" and result.actual != result.expected


def test_metadata_in_parquet_and_catalog(store):
    info = store.info("base")
    kv = pq.read_schema(info.path).metadata
    assert kv[b"draft_model"] == b"d" and kv[b"source"] == b"recorded"
    record = json.loads(kv[b"specedge"])
    assert record["metadata"] == info.metadata and record["kind"] == "acceptance" and record["schema_version"] == 1
    assert store.file_metadata("base") == record
    catalog = json.loads((store.root / "catalog.json").read_text())
    assert catalog["datasets"]["base"]["metadata"]["target_model"] == "t"


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({}, "'source'"),
        ({"source": "made-up"}, "'source'"),
        ({"source": "derived-from-published"}, "citation"),
        ({"source": "recorded", "x": float("nan")}, "JSON"),
        ({"source": "recorded", "x": object()}, "JSON"),
    ],
)
def test_bad_metadata_refused(tmp_path, frame, metadata, message):
    st = open_store(tmp_path)
    with pytest.raises(InputError, match=message):
        st.write(frame, "m", kind="acceptance", metadata=metadata)
    assert not (tmp_path / "catalog.json").exists()


def test_bad_frames_refused_with_row_and_field(tmp_path, frame):
    st = open_store(tmp_path)
    bad = frame.copy()
    bad.loc[4, "accepted"] = 9
    with pytest.raises(TraceValidationError, match=r"row 4, field 'accepted'"):
        st.write(bad, "b", kind="acceptance", metadata={"source": "recorded"})
    wrong = frame.assign(dataset="other")
    with pytest.raises(TraceValidationError, match="differs from the dataset id"):
        st.write(wrong, "b", kind="acceptance", metadata={"source": "recorded"})
    with pytest.raises(InputError, match="dataset id"):
        st.write(frame, "../escape", kind="acceptance", metadata={"source": "recorded"})
    with pytest.raises(InputError, match="unknown trace kind"):
        st.write(frame, "b", kind="nope", metadata={"source": "recorded"})
    assert not any(tmp_path.iterdir())


def test_compute_and_aggregate_kinds(tmp_path):
    st = open_store(tmp_path)
    compute = pd.DataFrame({"model": ["m"] * 2, "device": ["cpu"] * 2, "dtype": ["fp32"] * 2,
                            "phase": ["decode", "verify"], "batch_size": [1, 2], "new_tokens": [1, 5],
                            "context_tokens": [10, 10], "latency_ms": [0.5, 1.25]})
    st.write(compute, "c", kind="compute", metadata={"source": "recorded"})
    agg = pd.DataFrame({"drafted": [3] * 4, "accepted": [0, 1, 2, 3], "count": [5, 3, 2, 1]})
    st.write(agg, "a", kind="aggregate", metadata={"source": "recorded"})
    assert st.read("c")["latency_ms"].tolist() == [0.5, 1.25]
    assert st.read("a")["count"].dtype == np.int64
    with pytest.raises(TraceValidationError, match="duplicate key"):
        st.write(pd.concat([agg, agg.iloc[:1]]), "a2", kind="aggregate", metadata={"source": "recorded"})


def test_register_kind_lets_later_code_add_a_kind(tmp_path):
    run_schema = pa.schema([pa.field("dataset", pa.string(), nullable=False),
                            pa.field("policy", pa.string(), nullable=False),
                            pa.field("makespan_s", pa.float64(), nullable=False)])

    def positive(table, source, locate):
        values = table.column("makespan_s").to_numpy()
        if (values <= 0).any():
            raise TraceValidationError(f"{source}: {locate(int(np.flatnonzero(values <= 0)[0]))}: makespan_s <= 0")

    schema.register_kind("test-run", run_schema, positive)
    st = open_store(tmp_path)
    st.write(pd.DataFrame({"policy": ["dp"], "makespan_s": [1.5]}), "r", kind="test-run",
             metadata={"source": "recorded"})
    assert st.read("r")["policy"].tolist() == ["dp"]
    with pytest.raises(TraceValidationError, match="row 0: makespan_s"):
        st.write(pd.DataFrame({"policy": ["dp"], "makespan_s": [-1.0]}), "r2", kind="test-run",
                 metadata={"source": "recorded"})


def test_open_store_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECEDGE_STORE", str(tmp_path / "env-store"))
    assert open_store().root == (tmp_path / "env-store").resolve()
    assert open_store(tmp_path / "x").root == (tmp_path / "x").resolve()
    monkeypatch.delenv("SPECEDGE_STORE")
    from pathlib import Path

    import specedge

    repo = Path(specedge.__file__).resolve().parents[2]
    assert open_store().root == (repo / "traces").resolve()


def test_corrupt_catalog_is_a_clean_error(store):
    (store.root / "catalog.json").write_text("{not json")
    from specedge.traces.store import CatalogError

    with pytest.raises(CatalogError, match="catalog.json"):
        store.list()


def test_a_kind_registered_by_entry_point_loads_on_first_use():
    """``run`` datasets (specedge.serve) are readable by the store without the caller importing specedge.serve."""
    import subprocess
    import sys

    code = ("import sys; from specedge.traces import schema; "
            "assert 'specedge.serve.dataset' not in sys.modules; "
            "print(schema.get_kind('run').name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "run"
