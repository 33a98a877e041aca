"""The ``workload`` trace kind: one row per request (arrival timestamp, input tokens, output tokens).

Columns: dataset, request_id, timestamp_s (seconds from any origin; the online simulator shifts the first to 0),
input_tokens (>= 1), output_tokens (>= 1), category and user (optional strings). Registered with the trace store
when imported (the ``specedge.trace_kinds`` entry point ``workload`` names this module).

Layouts :func:`parse_workload` reads (each checked against the public source, named beside its sample file in
``tests/online/data/``):

- ``specedge``: CSV or Parquet already in the columns above (``request_id`` optional);
- ``azure``: the Azure LLM inference trace CSV (Azure/AzurePublicDataset, ``AzureLLMInferenceDataset2023.md``
  schema: ``TIMESTAMP`` invocation time as a date-time, ``ContextTokens``, ``GeneratedTokens``);
- ``burstgpt``: BurstGPT's CSV (HPMLL/BurstGPT ``README.md`` schema: ``Timestamp`` seconds from the first day's
  midnight, ``Model``, ``Request tokens``, ``Response tokens``, ``Total tokens``, ``Log Type``); ``Model`` becomes
  the category. Rows with zero response tokens (failed requests, kept in ``BurstGPT_*.csv``) are refused with
  their line unless ``drop_empty=True`` [A: a zero-token request has nothing to serve].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from specedge.errors import TraceValidationError
from specedge.traces.schema import register_kind

KIND = "workload"
LAYOUTS = ("specedge", "azure", "burstgpt")

WORKLOAD_SCHEMA = pa.schema([
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("timestamp_s", pa.float64(), nullable=False),
    pa.field("input_tokens", pa.int32(), nullable=False),
    pa.field("output_tokens", pa.int32(), nullable=False),
    pa.field("category", pa.string(), nullable=True),
    pa.field("user", pa.string(), nullable=True),
])


def check_workload(table: pa.Table, source: str, locate) -> None:
    """Semantic checks: token counts >= 1, finite timestamps, unique request ids."""
    for col in ("input_tokens", "output_tokens"):
        vals = table.column(col).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(vals < 1)
        if bad.size:
            raise TraceValidationError(f"{source}: {locate(int(bad[0]))}: {col} must be >= 1, got {vals[bad[0]]}")
    ts = table.column("timestamp_s").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~np.isfinite(ts))
    if bad.size:
        raise TraceValidationError(f"{source}: {locate(int(bad[0]))}: timestamp_s must be finite")
    ids = pd.Series(table.column("request_id").to_pylist())
    dup = ids.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise TraceValidationError(f"{source}: {locate(i)}: request_id {ids[i]!r} repeats an earlier row")


SPEC = register_kind(KIND, WORKLOAD_SCHEMA, check_workload,
                     detect_columns=("timestamp_s", "input_tokens", "output_tokens"))


def _line(i: int) -> str:
    return f"line {int(i) + 2}"  # CSV data row i is line i + 2 (header on line 1)


def _need(frame: pd.DataFrame, cols, path: Path) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise TraceValidationError(f"{path.name}: missing column(s) {', '.join(map(repr, missing))}; "
                                   f"found {', '.join(map(repr, frame.columns))}")


def _ints(frame: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    vals = pd.to_numeric(frame[col], errors="coerce")
    bad = np.flatnonzero(vals.isna().to_numpy() | (vals.to_numpy() != np.floor(vals.to_numpy())))
    if bad.size:
        raise TraceValidationError(f"{path.name}: {_line(bad[0])}: field {col!r}: expected an integer, got "
                                   f"{frame[col].iloc[bad[0]]!r}")
    return vals.to_numpy().astype(np.int64)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise TraceValidationError(f"{path}: no such file")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                   keep_default_na=False)
    except Exception as exc:  # pandas/pyarrow parse errors
        raise TraceValidationError(f"{path.name}: cannot read ({exc})") from None


def parse_workload(path, layout: str, *, dataset_id: str = "workload", drop_empty: bool = False) -> pd.DataFrame:
    """Read a workload file in one of :data:`LAYOUTS` into the kind's columns (validated, nothing written)."""
    path = Path(path)
    if layout not in LAYOUTS:
        raise TraceValidationError(f"unknown workload layout {layout!r}; known: {', '.join(LAYOUTS)}")
    raw = _read(path)
    if layout == "azure":
        _need(raw, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"), path)
        ts = pd.to_datetime(raw["TIMESTAMP"], errors="coerce", format="mixed")
        bad = np.flatnonzero(ts.isna().to_numpy())
        if bad.size:
            raise TraceValidationError(f"{path.name}: {_line(bad[0])}: field 'TIMESTAMP': expected a date-time, "
                                       f"got {raw['TIMESTAMP'].iloc[bad[0]]!r}")
        t = (ts - ts.min()).dt.total_seconds().to_numpy()
        out = pd.DataFrame({"timestamp_s": t, "input_tokens": _ints(raw, "ContextTokens", path),
                            "output_tokens": _ints(raw, "GeneratedTokens", path), "category": None})
    elif layout == "burstgpt":
        _need(raw, ("Timestamp", "Model", "Request tokens", "Response tokens"), path)
        t = pd.to_numeric(raw["Timestamp"], errors="coerce")
        bad = np.flatnonzero(t.isna().to_numpy())
        if bad.size:
            raise TraceValidationError(f"{path.name}: {_line(bad[0])}: field 'Timestamp': expected seconds, got "
                                       f"{raw['Timestamp'].iloc[bad[0]]!r}")
        out = pd.DataFrame({"timestamp_s": t.to_numpy(np.float64),
                            "input_tokens": _ints(raw, "Request tokens", path),
                            "output_tokens": _ints(raw, "Response tokens", path),
                            "category": raw["Model"].astype(str).to_numpy()})
    else:
        _need(raw, ("timestamp_s", "input_tokens", "output_tokens"), path)
        t = pd.to_numeric(raw["timestamp_s"], errors="coerce")
        bad = np.flatnonzero(t.isna().to_numpy())
        if bad.size:
            raise TraceValidationError(f"{path.name}: {_line(bad[0])}: field 'timestamp_s': expected seconds, got "
                                       f"{raw['timestamp_s'].iloc[bad[0]]!r}")
        out = pd.DataFrame({"timestamp_s": t.to_numpy(np.float64),
                            "input_tokens": _ints(raw, "input_tokens", path),
                            "output_tokens": _ints(raw, "output_tokens", path),
                            "category": raw["category"].astype(str).to_numpy() if "category" in raw else None})
        if "request_id" in raw:
            out["request_id"] = raw["request_id"].astype(str).to_numpy()
        if "user" in raw:
            out["user"] = raw["user"].astype(str).to_numpy()
    if drop_empty:
        out = out[(out["input_tokens"] >= 1) & (out["output_tokens"] >= 1)]
    if "request_id" not in out:
        out["request_id"] = [f"{path.stem}:{i}" for i in out.index]
    if "user" not in out:
        out["user"] = None
    out.insert(0, "dataset", dataset_id)
    out = out[[f.name for f in WORKLOAD_SCHEMA]].reset_index(drop=True)
    rows = out.index if not drop_empty else None
    locate = (lambda i: _line(i)) if rows is not None else (lambda i: f"row {int(i)} (after dropping empty rows)")
    check_workload(pa.Table.from_pandas(out, schema=WORKLOAD_SCHEMA, preserve_index=False), path.name, locate)
    return out


def ingest_workload(store, path, layout: str, dataset_id: str, *, note: str = "", drop_empty: bool = False):
    """Parse ``path`` and write it to ``store`` as a new ``workload`` dataset (the store is untouched on error)."""
    frame = parse_workload(path, layout, dataset_id=dataset_id, drop_empty=drop_empty)
    table = pa.Table.from_pandas(frame, schema=WORKLOAD_SCHEMA, preserve_index=False)
    return store.write(table, dataset_id, kind=KIND, metadata={"source": f"ingested:{layout}", "note": note})
