"""The results of a sweep on disk: a Parquet dataset, one file per finished chunk, written as it goes.

Layout of an output directory::

    _sweep.json                 the grid that wrote it and the result schema (checked on resume; the leading
                                underscore keeps pyarrow.dataset and pandas.read_parquet from reading it)
    part-<first cell id>.parquet one file per finished chunk of cells
    .tmp-*.parquet              a chunk being written (ignored; a killed run can leave one behind)

A chunk file is written to a temporary name and renamed into place, so a file that exists is complete; the
cells it holds are finished. Rerunning a sweep reads the ``cell_id`` column of every part file and skips those
cells. :func:`read_results` returns the whole dataset (``pyarrow.dataset`` reads the directory as one table).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from specedge.errors import InputError
from specedge.sweep.grid import KEY_COLUMNS, Grid, GridError

MANIFEST_NAME = "_sweep.json"
MANIFEST_FORMAT = "specedge-sweep"
PART_GLOB = "part-*.parquet"
#: Parquet compression codec of part files.
PARQUET_COMPRESSION = "zstd"

_ARROW_TYPES = {"bool": pa.bool_(), "int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}


def result_schema(grid: Grid, metrics: Sequence[str]) -> pa.Schema:
    """Key columns, override columns (typed from the grid), bookkeeping, then one float64 per metric."""
    fields = [
        pa.field("cell_id", pa.string()),
        pa.field("preset", pa.string()),
        pa.field("pair", pa.string()),
        pa.field("acceptance", pa.string()),
        pa.field("policy", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("replications", pa.int64()),
    ]
    fields += [pa.field(name, _ARROW_TYPES[t]) for name, t in grid.override_types().items()]
    fields += [pa.field("status", pa.string()), pa.field("error", pa.string()), pa.field("cpu_s", pa.float64()),
               pa.field("wall_s", pa.float64())]
    fields += [pa.field(m, pa.float64()) for m in metrics]
    return pa.schema(fields)


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) to a table of exactly ``schema`` (missing values become nulls)."""
    columns = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_floating(f.type):
            values = [None if v is None else float(v) for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=schema)


class ResultsDir:
    """An output directory of a sweep (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultsDir({str(self.root)!r})"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def parts(self) -> list[Path]:
        return sorted(self.root.glob(PART_GLOB)) if self.root.is_dir() else []

    def prepare(self, grid: Grid, schema: pa.Schema) -> None:
        """Create the directory, or check that its earlier results have the same columns as this grid's."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"sweep output {self.root}: exists and is not a directory")
        manifest = {
            "format": MANIFEST_FORMAT,
            "format_version": 1,
            "grid": grid.to_dict(),
            "columns": [f"{f.name}:{f.type}" for f in schema],
        }
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"sweep output {self.root}: unreadable {MANIFEST_NAME} ({exc})") from None
            if old.get("format") != MANIFEST_FORMAT:
                raise InputError(f"sweep output {self.root}: {MANIFEST_NAME} is not a specedge sweep manifest")
            if old.get("columns") != manifest["columns"]:
                raise GridError(
                    f"sweep output {self.root} holds results with other columns ({', '.join(old.get('columns', []))});"
                    " a rerun must use a grid with the same overrides, axes and metrics — use another --out"
                )
        elif self.root.is_dir() and any(self.root.iterdir()):
            raise InputError(f"sweep output {self.root}: exists, is not empty and holds no {MANIFEST_NAME}; "
                             "choose an empty or new directory")
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".tmp-*.parquet"):
            stale.unlink(missing_ok=True)
        tmp = self.root / f".{MANIFEST_NAME}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, self.manifest_path)

    def finished_ids(self) -> set[str]:
        """Cell ids of every finished cell (those in part files)."""
        parts = self.parts()
        if not parts:
            return set()
        done: set[str] = set()
        for part in parts:
            done.update(pq.read_table(part, columns=["cell_id"]).column("cell_id").to_pylist())
        return done

    def write_chunk(self, table: pa.Table) -> Path:
        """Write one finished chunk atomically (temporary file, then rename); returns the part path."""
        if table.num_rows == 0:
            raise ValueError("write_chunk: empty chunk")
        first = table.column("cell_id")[0].as_py()
        final = self.root / f"part-{first}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.root / f".tmp-{uuid.uuid4().hex}.parquet"
        pq.write_table(table, tmp, compression=PARQUET_COMPRESSION)
        os.replace(tmp, final)
        return final

    def read(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        return read_results(self.root, columns)


def read_results(root: str | os.PathLike[str], columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Every finished cell of the sweep in ``root`` as a DataFrame, sorted by cell key (not by finish order)."""
    root = Path(root)
    parts = sorted(root.glob(PART_GLOB)) if root.is_dir() else []
    if not parts:
        raise InputError(f"sweep output {root}: holds no finished cells (no {PART_GLOB} files)")
    dataset = pads.dataset([str(p) for p in parts], format="parquet")
    table = dataset.to_table(columns=list(columns) if columns is not None else None)
    frame = table.to_pandas()
    names = list(dataset.schema.names)
    overrides = names[names.index("replications") + 1: names.index("status")] if (
        "replications" in names and "status" in names) else []
    order = [c for c in (*KEY_COLUMNS[1:], *overrides, "cell_id") if c in frame.columns]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)
