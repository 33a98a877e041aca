"""The trace store: a directory of Parquet datasets and a JSON catalog.

Layout of a store directory::

    catalog.json                 the catalog: one entry per dataset id (current version + history)
    <id>/v<N>.parquet            version N of dataset <id>; versions are never edited or deleted
    .catalog.lock                file lock serialising writers (not store content)
    .staging/                    files being written (not store content; a killed writer leaves them here)

A write validates first, stages the Parquet file in ``.staging/``, then, holding the lock, renames the file
into place and replaces ``catalog.json`` (temporary file + ``os.replace``), catalog last. A writer killed
before the catalog rename leaves the store (catalog and dataset files) exactly as it was; the only window
that leaves anything behind is between the two renames, and the next writer deletes such an unreferenced
data file under the lock. ``replace=True`` writes version N+1 and keeps version N on disk and in the
entry's ``history``, so the previous version stays readable (``read(id, version=N)``).

Checksums are the SHA-256 of the Parquet file bytes; :meth:`TraceStore.verify` recomputes them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import pickle
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from specedge.errors import DatasetExistsError, DatasetNotFoundError, InputError, SpecedgeError, TraceValidationError
from specedge.provenance import portable_metadata
from specedge.traces.frames import frame_to_table, table_to_frame  # noqa: F401 (re-exported)
from specedge.traces.provenance import SOURCES, check_dataset_id, check_metadata  # noqa: F401 (re-exported)
from specedge.traces.schema import get_kind
from specedge.traces.validate import conform, row_locator

CATALOG_NAME = "catalog.json"
# catalog path -> ((path, inode, size, mtime_ns), parsed catalog): see TraceStore._catalog_view
_CATALOG_CACHE: dict[str, tuple[tuple, dict[str, Any]]] = {}


def _copied(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON-derived metadata (a pickle round trip: several times faster than copy.deepcopy)."""
    return pickle.loads(pickle.dumps(dict(metadata), protocol=pickle.HIGHEST_PROTOCOL))
LOCK_NAME = ".catalog.lock"
STAGING_NAME = ".staging"
CATALOG_FORMAT = "specedge-trace-catalog"
CATALOG_FORMAT_VERSION = 1
#: Seconds a writer waits for the catalog lock before giving up with a clean error.
LOCK_TIMEOUT_S = 120.0
#: Parquet compression codec of dataset files.
PARQUET_COMPRESSION = "zstd"
#: Test hook: seconds to sleep after the data file is staged and before it is committed (used only by the
#: kill-mid-ingest test; unset in normal use).
PAUSE_ENV = "SPECEDGE_TEST_PAUSE_BEFORE_COMMIT_S"
#: Key of the Parquet key-value metadata entry that holds the full provenance record as JSON.
PARQUET_META_KEY = "specedge"



class CatalogError(InputError):
    """The catalog file is unreadable or not a specedge catalog."""


class ChecksumError(SpecedgeError):
    """``verify`` found dataset files whose bytes no longer match the catalog (exit status 1)."""


@dataclass(frozen=True)
class DatasetInfo:
    """One catalog entry: a dataset version and its provenance."""

    id: str
    kind: str
    source: str
    rows: int
    checksum: str
    schema_version: int
    path: Path
    metadata: dict = field(default_factory=dict)
    version: int = 1
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``specedge traces list --json`` prints per dataset)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "rows": self.rows,
            "checksum": self.checksum,
            "schema_version": self.schema_version,
            "version": self.version,
            "created": self.created,
            "path": str(self.path),
            "draft_model": self.metadata.get("draft_model"),
            "target_model": self.metadata.get("target_model"),
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing one dataset version."""

    dataset_id: str
    version: int
    path: Path
    expected: str
    actual: str | None
    ok: bool
    problem: str = ""


# ------------------------------------------------------------------------------------------ helpers
def sha256_file(path: Path, chunk_bytes: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _repo_traces_dir() -> Path | None:
    """The repository's traces/ when running from a source checkout (src layout, editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "specedge").is_dir():
            traces = parent / "traces"
            return traces if traces.is_dir() else None
    return None


def default_store_path() -> Path:
    """$SPECEDGE_STORE, else the repository's traces/, else ./traces."""
    env = os.environ.get("SPECEDGE_STORE", "").strip()
    if env:
        return Path(env).expanduser()
    return _repo_traces_dir() or Path.cwd() / "traces"


def open_store(path: str | os.PathLike[str] | None = None) -> TraceStore:
    """Open the store at ``path`` (created on first write); ``None`` resolves :func:`default_store_path`."""
    root = Path(path).expanduser() if path is not None else default_store_path()
    if root.exists() and not root.is_dir():
        raise InputError(f"store {root}: not a directory")
    return TraceStore(root.resolve())


# ------------------------------------------------------------------------------------------ the store
class TraceStore:
    """A directory of versioned Parquet datasets with a catalog. See the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"TraceStore({str(self.root)!r})"

    # ------------------------------------------------------------------ catalog
    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG_NAME

    def _load_catalog(self) -> dict[str, Any]:
        path = self.catalog_path
        if not path.exists():
            return {"format": CATALOG_FORMAT, "format_version": CATALOG_FORMAT_VERSION, "datasets": {}}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CatalogError(f"store catalog {path}: unreadable ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != CATALOG_FORMAT or not isinstance(
            data.get("datasets"), dict
        ):
            raise CatalogError(f"store catalog {path}: not a specedge trace catalog")
        if int(data.get("format_version", 0)) > CATALOG_FORMAT_VERSION:
            raise CatalogError(
                f"store catalog {path}: format version {data.get('format_version')} is newer than this specedge "
                f"understands ({CATALOG_FORMAT_VERSION})"
            )
        return data

    def _catalog_view(self) -> dict[str, Any]:
        """The catalog for reading, parsed again only when ``catalog.json`` changed (else shared; never mutate it).

        Writers replace the file (``os.replace``), so a new inode, size or mtime means a new catalog; the key is
        that triple. Readers that scan many datasets (the fidelity study, the report) call :meth:`info` thousands
        of times; parsing the whole catalog each time dominated their run time. Writers use :meth:`_load_catalog`.
        """
        path = self.catalog_path
        try:
            st = path.stat()
        except FileNotFoundError:
            return self._load_catalog()
        key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
        hit = _CATALOG_CACHE.get(key[0])
        if hit is not None and hit[0] == key:
            return hit[1]
        data = self._load_catalog()
        _CATALOG_CACHE[key[0]] = (key, data)
        return data

    def _info(self, entry: Mapping[str, Any]) -> DatasetInfo:
        return DatasetInfo(
            id=entry["id"],
            kind=entry["kind"],
            source=entry["source"],
            rows=int(entry["rows"]),
            checksum=entry["checksum"],
            schema_version=int(entry["schema_version"]),
            path=self.root / entry["path"],
            metadata=_copied(entry.get("metadata", {})),
            version=int(entry.get("version", 1)),
            created=entry.get("created", ""),
        )

    def list(self) -> list[DatasetInfo]:
        """Current version of every dataset, sorted by id."""
        datasets = self._catalog_view()["datasets"]
        return [self._info(datasets[k]) for k in sorted(datasets)]

    def ids(self) -> list[str]:
        return sorted(self._catalog_view()["datasets"])

    def __contains__(self, dataset_id: str) -> bool:
        return dataset_id in self._catalog_view()["datasets"]

    def info(self, dataset_id: str, version: int | None = None) -> DatasetInfo:
        """The catalog entry of ``dataset_id`` (its current version, or ``version``)."""
        datasets = self._catalog_view()["datasets"]
        if dataset_id not in datasets:
            known = ", ".join(sorted(datasets)) or "none"
            raise DatasetNotFoundError(f"dataset {dataset_id!r} is not in the store {self.root} (datasets: {known})")
        entry = datasets[dataset_id]
        if version is None or int(version) == int(entry.get("version", 1)):
            return self._info(entry)
        for old in entry.get("history", []):
            if int(old["version"]) == int(version):
                return self._info(old)
        have = sorted([int(entry.get("version", 1))] + [int(o["version"]) for o in entry.get("history", [])])
        raise DatasetNotFoundError(
            f"dataset {dataset_id!r} in the store {self.root} has no version {version} (versions: {have})"
        )

    def versions(self, dataset_id: str) -> list[DatasetInfo]:
        """Every version of ``dataset_id``, oldest first (the last one is current)."""
        current = self.info(dataset_id)
        entry = self._catalog_view()["datasets"][dataset_id]
        return [self._info(o) for o in entry.get("history", [])] + [current]

    # ------------------------------------------------------------------ read
    def read_table(
        self,
        dataset_id: str,
        filters: Mapping[str, object] | None = None,
        columns: Sequence[str] | None = None,
        *,
        version: int | None = None,
    ) -> pa.Table:
        """The dataset as an Arrow table (same arguments as :meth:`read`)."""
        info = self.info(dataset_id, version)
        schema = get_kind(info.kind).schema
        names = schema.names
        if columns is not None:
            columns = list(columns)
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise InputError(f"dataset {dataset_id!r}: unknown column(s) {', '.join(unknown)}; "
                                 f"columns are {', '.join(names)}")
        expr = None
        for col, value in (filters or {}).items():
            if col not in names:
                raise InputError(f"dataset {dataset_id!r}: cannot filter on unknown column {col!r}; "
                                 f"columns are {', '.join(names)}")
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            term = pc.field(col).isin(pa.array(values, type=schema.field(col).type))
            expr = term if expr is None else expr & term
        if not info.path.is_file():
            raise CatalogError(f"dataset {dataset_id!r} v{info.version}: file {info.path} is missing "
                               "(run `specedge traces verify`)")
        try:
            return pq.read_table(info.path, columns=columns, filters=expr)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CatalogError(f"dataset {dataset_id!r} v{info.version}: cannot read {info.path} ({exc})") from None

    def read(
        self,
        dataset_id: str,
        filters: Mapping[str, object] | None = None,
        columns: Sequence[str] | None = None,
        *,
        version: int | None = None,
    ) -> pd.DataFrame:
        """The dataset as a DataFrame. ``filters`` maps a column to a value or a list of values (rows kept where
        the column is one of them); ``columns`` selects columns. Non-null integer columns come back as numpy
        ints, nullable integer columns (``prompt_tokens``) as pandas ``Int32``, nullable floats as floats with
        NaN for null, strings as pandas strings."""
        table = self.read_table(dataset_id, filters, columns, version=version)
        return table_to_frame(table, get_kind(self.info(dataset_id, version).kind).schema)

    # ------------------------------------------------------------------ write
    def write(
        self,
        frame: pd.DataFrame | pa.Table,
        dataset_id: str,
        *,
        kind: str,
        metadata: Mapping[str, object],
        replace: bool = False,
    ) -> DatasetInfo:
        """Validate ``frame`` as a ``kind`` trace and add it as dataset ``dataset_id``.

        Raises TraceValidationError (nothing written) for bad data, DatasetExistsError when the id exists and
        ``replace`` is false. With ``replace=True`` the previous version is kept (see :meth:`versions`).
        """
        check_dataset_id(dataset_id)
        spec = get_kind(kind)
        where = f"dataset {dataset_id!r}"
        meta = check_metadata(metadata, where)
        table = frame_to_table(frame, where)
        table = conform(table, spec, dataset_id=dataset_id, source=where, locate=row_locator())
        return self.write_validated(table, dataset_id, kind=kind, metadata=meta, replace=replace)

    def write_validated(
        self, table: pa.Table, dataset_id: str, *, kind: str, metadata: Mapping[str, object], replace: bool = False,
        expect_version: int | None = None,
    ) -> DatasetInfo:
        """Write a table that :func:`~specedge.traces.validate.conform` already returned (ingest's path).

        Absolute paths in ``metadata`` are written portable (:func:`specedge.provenance.portable_metadata`).
        ``expect_version``: refuse (nothing written) unless the dataset's current version is still this one."""
        check_dataset_id(dataset_id)
        spec = get_kind(kind)
        meta = portable_metadata(check_metadata(metadata, f"dataset {dataset_id!r}"))[0]
        if not table.schema.equals(spec.schema):
            raise TraceValidationError(f"dataset {dataset_id!r}: table is not in the '{kind}' schema; use write()")
        if not replace and dataset_id in self:  # early, friendly check; repeated under the lock
            raise self._exists(dataset_id)

        staging = self.root / STAGING_NAME
        staging.mkdir(parents=True, exist_ok=True)
        self._clean_staging(staging)
        stage_path = staging / f"{dataset_id}.{os.getpid()}.{uuid.uuid4().hex[:12]}.parquet"
        record = {"dataset": dataset_id, "kind": kind, "schema_version": spec.version, "metadata": meta}
        kv = {PARQUET_META_KEY: json.dumps(record, sort_keys=True)}
        for key, value in meta.items():
            kv.setdefault(key, value if isinstance(value, str) else json.dumps(value))
        try:
            pq.write_table(table.replace_schema_metadata(kv), stage_path, compression=PARQUET_COMPRESSION)
            with open(stage_path, "rb") as fh:
                os.fsync(fh.fileno())
            checksum = sha256_file(stage_path)
            return self._commit(stage_path, dataset_id, kind, spec.version, table.num_rows, checksum, meta, replace,
                                expect_version)
        finally:
            stage_path.unlink(missing_ok=True)

    def _exists(self, dataset_id: str) -> DatasetExistsError:
        return DatasetExistsError(
            f"dataset {dataset_id!r} already exists in the store {self.root}; pass --replace (replace=True) to "
            "add a new version (the previous one is kept)"
        )

    def _lock(self):
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.root / LOCK_NAME), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise SpecedgeError(
                f"store {self.root}: another writer held {LOCK_NAME} for more than {LOCK_TIMEOUT_S:.0f} s"
            ) from None
        return lock

    def _commit(self, stage_path: Path, dataset_id: str, kind: str, schema_version: int, rows: int, checksum: str,
                meta: dict[str, Any], replace: bool, expect_version: int | None = None) -> DatasetInfo:
        lock = self._lock()
        try:
            catalog = self._load_catalog()
            datasets = catalog["datasets"]
            old = datasets.get(dataset_id)
            if old is not None and not replace:
                raise self._exists(dataset_id)
            now = None if old is None else int(old.get("version", 1))
            if expect_version is not None and now != expect_version:
                raise DatasetExistsError(f"dataset {dataset_id!r}: expected version {expect_version} to be current, "
                                         f"found {now} (another writer got there first); nothing written")
            self._remove_orphans(datasets)
            pause = os.environ.get(PAUSE_ENV)
            if pause:
                time.sleep(float(pause))
            version = 1
            if old is not None:
                version = 1 + max([int(old.get("version", 1))] + [int(o["version"]) for o in old.get("history", [])])
            rel = f"{dataset_id}/v{version}.parquet"
            final = self.root / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            entry = {
                "id": dataset_id,
                "kind": kind,
                "source": meta["source"],
                "rows": int(rows),
                "checksum": checksum,
                "schema_version": int(schema_version),
                "version": version,
                "path": rel,
                "created": _now(),
                "metadata": meta,
                "history": [],
            }
            if old is not None:
                previous = {k: v for k, v in old.items() if k != "history"}
                previous["replaced"] = entry["created"]
                entry["history"] = list(old.get("history", [])) + [previous]
            datasets[dataset_id] = entry
            os.replace(stage_path, final)
            _fsync_dir(final.parent)
            self._write_catalog(catalog)
            return self._info(entry)
        finally:
            lock.release()

    def _write_catalog(self, catalog: dict[str, Any]) -> None:
        staging = self.root / STAGING_NAME
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f"catalog.{os.getpid()}.{uuid.uuid4().hex[:12]}.json"
        text = json.dumps(catalog, indent=2, sort_keys=True, allow_nan=False) + "\n"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.catalog_path)
            _fsync_dir(self.root)
        finally:
            tmp.unlink(missing_ok=True)

    def _remove_orphans(self, datasets: Mapping[str, Any]) -> None:
        """Delete v<N>.parquet files that no catalog entry references (left by a writer killed between its two
        renames). Called with the lock held, so no other writer is between its renames."""
        referenced = set()
        for entry in datasets.values():
            referenced.add(entry["path"])
            referenced.update(o["path"] for o in entry.get("history", []))
        for path in self.root.glob("*/v*.parquet"):
            rel = path.relative_to(self.root).as_posix()
            if rel not in referenced and re.fullmatch(r"v\d+\.parquet", path.name):
                path.unlink(missing_ok=True)

    @staticmethod
    def _clean_staging(staging: Path) -> None:
        """Remove staged files of writers that no longer run (killed mid-write)."""
        for path in staging.iterdir():
            parts = path.name.split(".")  # <dataset id or "catalog">.<pid>.<random hex>.<suffix>
            if len(parts) < 4 or not parts[-3].isdigit():
                continue
            pid = int(parts[-3])
            if pid != os.getpid() and not _pid_alive(pid):
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ verify
    def verify(self) -> list[VerifyResult]:
        """Re-hash every version of every dataset and compare with the catalog."""
        results = []
        for dataset_id in self.ids():
            for info in self.versions(dataset_id):
                if not info.path.is_file():
                    results.append(VerifyResult(info.id, info.version, info.path, info.checksum, None, False,
                                                "file missing"))
                    continue
                actual = sha256_file(info.path)
                ok = actual == info.checksum
                results.append(VerifyResult(info.id, info.version, info.path, info.checksum, actual, ok,
                                            "" if ok else "checksum mismatch"))
        return results

    def file_metadata(self, dataset_id: str, version: int | None = None) -> dict[str, Any]:
        """The provenance record stored inside the Parquet file (independent of the catalog)."""
        info = self.info(dataset_id, version)
        kv = pq.read_schema(info.path).metadata or {}
        raw = kv.get(PARQUET_META_KEY.encode())
        if raw is None:
            raise CatalogError(f"dataset {dataset_id!r}: {info.path} has no '{PARQUET_META_KEY}' metadata")
        return json.loads(raw)
