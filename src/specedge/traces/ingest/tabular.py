"""CSV and Parquet files already in a v1 schema; the kind (acceptance / compute / aggregate / any registered
kind) is detected from the columns.

CSV is read with ``pyarrow.csv`` using the schema's column types; only the empty field is null (``nan``,
``NA``, ``null`` are values, so NaN is caught as a bad value, never silently dropped). Row i of a CSV is
reported as "line i+2" (line 1 is the header). A ``dataset`` column must hold one value; it is replaced by
the new dataset id and the old value is kept in the metadata as ``file_dataset``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from specedge.errors import InputError, TraceValidationError
from specedge.traces import schema as sch
from specedge.traces.ingest import Raw, read_bytes
from specedge.traces.validate import row_locator


def _no_drafted(drafted: int | None, fmt: str) -> None:
    if drafted is not None:
        raise InputError(f"--drafted applies to specbench, vllm, sglang and llamacpp; a {fmt} file carries "
                         "'drafted' in every row")


def _head(path: Path, size: int = 4096) -> bytes:
    """The first bytes of a file, with the clean missing/unreadable/empty errors of read_bytes."""
    if not path.is_file() or path.stat().st_size == 0:
        read_bytes(path)
    with open(path, "rb") as fh:
        head = fh.read(size)
    if not head.strip():
        read_bytes(path)
    return head


def _column_types() -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    for name in sch.kinds():
        for f in sch.get_kind(name).schema:
            types.setdefault(f.name, f.type)
    return types


def _detect(path: Path, columns: list[str], sniff: bytes = b"") -> sch.KindSpec:
    spec = sch.detect_kind(columns)
    if spec is None:
        hint = ""
        if sniff.lstrip()[:1] in (b"{", b"["):
            hint = " (the file looks like JSON: did you mean --format specbench, vllm or sglang?)"
        wanted = "; ".join(f"{k}: {', '.join(sch.get_kind(k).detect_columns)}" for k in sch.kinds())
        raise TraceValidationError(
            f"{path}: header: columns {', '.join(columns) or '(none)'} match no trace kind{hint}; expected the "
            f"columns of one of {wanted}"
        )
    return spec


def _retarget_dataset(path: Path, table: pa.Table, dataset_id: str, locate) -> tuple[pa.Table, dict[str, Any]]:
    if "dataset" not in table.column_names:
        return table, {}
    col = table.column("dataset")
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type)):
        return table, {}  # conform reports the type
    values = pc.unique(col.cast(pa.string()).drop_null()).to_pylist()
    if len(values) > 1:
        i = int(np.flatnonzero(pc.not_equal(col, pa.scalar(values[0])).to_numpy(zero_copy_only=False))[0])
        raise TraceValidationError(f"{path}: {locate(i)}, field 'dataset': {values[1]!r} after {values[0]!r}; the "
                                   "file holds several datasets, expected one per file")
    idx = table.column_names.index("dataset")
    table = table.set_column(idx, "dataset", pa.chunked_array([pa.repeat(pa.scalar(dataset_id), table.num_rows)]))
    return table, ({"file_dataset": values[0]} if values and values[0] != dataset_id else {})


def parse_csv(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    _no_drafted(drafted, "csv")
    head = _head(path)
    if head[:4] == b"PAR1":
        raise TraceValidationError(f"{path}: this is a Parquet file, not CSV (use --format parquet)")
    try:
        header = next(csv.reader(io.StringIO(head.decode("utf-8", errors="replace").splitlines()[0])))
    except (StopIteration, IndexError):
        raise TraceValidationError(f"{path}: line 1: no header; expected CSV with a header line") from None
    header = [h.strip() for h in header]
    spec = _detect(path, header, head)
    types = {k: v for k, v in _column_types().items() if k in header}
    convert = pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True,
                                   true_values=["true"], false_values=["false"])
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        _explain_csv_error(path, str(exc), header, types)
        raise  # pragma: no cover - _explain_csv_error always raises
    locate = row_locator(offset=2, word="line")
    table, extra = _retarget_dataset(path, table, dataset_id, locate)
    return Raw(table, spec.name, extra, locate)


def _explain_csv_error(path: Path, message: str, header: list[str], types: dict[str, pa.DataType]) -> None:
    """Turn a pyarrow CSV error into one message naming the line and field (re-reading only on this path)."""
    if "Empty CSV file" in message:
        raise TraceValidationError(f"{path}: empty file; expected CSV with a header line")
    if "CSV parse error" in message:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for n, row in enumerate(csv.reader(fh), start=1):
                if len(row) != len(header):
                    raise TraceValidationError(f"{path}: line {n}: {len(row)} fields, expected {len(header)} "
                                               f"({', '.join(header)})") from None
        raise TraceValidationError(f"{path}: malformed CSV ({message})") from None
    if "conversion error" in message and "column #" in message:
        k = int(message.split("column #", 1)[1].split(":", 1)[0])
        name = header[k]
        target = types[name]
        raw = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(include_columns=[name], column_types={name: pa.string()},
                                                 null_values=[""], strings_can_be_null=True),
        ).column(name).to_numpy(zero_copy_only=False)
        values = pd.to_numeric(pd.Series(raw, dtype=object).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values) & pd.notna(raw)
        if pa.types.is_integer(target):
            info = np.iinfo(target.to_pandas_dtype())
            with np.errstate(invalid="ignore"):
                bad |= (values != np.floor(values)) | (values < info.min) | (values > info.max)
            bad &= pd.notna(raw)
            expect = f"a whole number in {info.min}..{info.max}"
        else:
            expect = f"a {target} number"
        idx = np.flatnonzero(bad)
        if idx.size:
            i = int(idx[0])
            raise TraceValidationError(f"{path}: line {i + 2}, field '{name}': value {raw[i]!r}; expected {expect}") \
                from None
        raise TraceValidationError(f"{path}: field '{name}': {message}; expected {expect}") from None
    raise TraceValidationError(f"{path}: not readable as CSV ({message})") from None


def parse_parquet(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    _no_drafted(drafted, "parquet")
    _head(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        msg = str(exc).split(": ", 1)[-1] if "Could not open Parquet input source" in str(exc) else str(exc)
        size = path.stat().st_size if path.exists() else 0
        if size == 0:
            raise TraceValidationError(f"{path}: empty file; expected a Parquet file") from None
        raise TraceValidationError(f"{path}: not a readable Parquet file (truncated or another format: {msg})") \
            from None
    spec = _detect(path, table.column_names)
    locate = row_locator()
    table, extra = _retarget_dataset(path, table, dataset_id, locate)
    return Raw(table, spec.name, extra, locate)
