"""Re-write a dataset's provenance with portable paths (``specedge traces fix-paths``).

Datasets recorded before the store made paths portable on every write hold absolute paths of the recording
machine in their provenance (``/tmp/...`` plan files, ``.../site-packages/...`` model folders). For such a
dataset, :func:`fix_paths` writes a NEW version through the store's normal versioned write (staged file, lock,
catalog last, and refused if another writer added a version meanwhile) with:

- the same rows: the table is read from the newest version and written unchanged; its content hash
  (:func:`table_content_sha256`) is checked on the table handed to the store and again on the new file read
  back;
- the provenance with every absolute path replaced by :func:`specedge.provenance.portable_path` of it, in
  "recorded on another machine" mode: the path is not looked up on this machine, and a site-packages path
  names the distribution's version only when the record's own ``versions`` holds it;
- a ``paths_fixed`` note: the version it derives from, that only paths changed, which keys, and the content
  hash.

Older versions stay on disk and in the catalog's history, untouched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pyarrow as pa

from specedge.errors import InputError
from specedge.provenance import portable_metadata
from specedge.traces.schema import get_kind

#: Metadata key of the note a fixed version carries.
NOTE_KEY = "paths_fixed"


@dataclass(frozen=True)
class PathFix:
    """What :func:`fix_paths` did (or, with ``dry_run``, would do) to one dataset."""

    dataset_id: str
    from_version: int
    new_version: int | None  # None: nothing written (dry run, or no absolute path)
    changed_keys: tuple[str, ...]
    content_sha256: str

    @property
    def needed(self) -> bool:
        return bool(self.changed_keys)


def table_content_sha256(table: pa.Table) -> str:
    """SHA-256 of a table's content: each column's name, Arrow type and values (as JSON, nulls as null), in
    schema order. Independent of the file's bytes, row groups and key-value metadata."""
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns):
        h.update(json.dumps([name, str(column.type)]).encode())
        h.update(json.dumps(column.to_pylist(), allow_nan=True).encode())
    return h.hexdigest()


def _fixed_metadata(metadata: dict) -> tuple[dict, list[str]]:
    versions = metadata.get("versions")
    recorded = {str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else {}
    fixed, changed = portable_metadata(metadata, recorded_versions=recorded)
    return fixed, changed


def fix_paths(store, dataset_id: str, *, dry_run: bool = False) -> PathFix:
    """Write a new version of ``dataset_id`` whose provenance holds portable paths (module docstring), when its
    newest version's provenance holds an absolute path; otherwise write nothing. Unknown id:
    DatasetNotFoundError, nothing written."""
    info = store.info(dataset_id)  # the newest version; raises for an unknown id
    spec = get_kind(info.kind)
    if info.schema_version != spec.version:
        raise InputError(f"dataset {dataset_id!r} v{info.version}: schema version {info.schema_version}, this "
                         f"specedge writes {spec.version}; re-writing it would change more than paths")
    fixed, changed = _fixed_metadata(dict(info.metadata))
    file_record = store.file_metadata(dataset_id, info.version)
    changed_in_file = _fixed_metadata(dict(file_record.get("metadata", {})))[1]
    table = store.read_table(dataset_id, version=info.version)
    digest = table_content_sha256(table)
    if not changed and not changed_in_file:
        return PathFix(dataset_id, info.version, None, (), digest)
    keys = tuple(sorted(set(changed) | set(changed_in_file)))
    if dry_run:
        return PathFix(dataset_id, info.version, None, keys, digest)
    fixed[NOTE_KEY] = {
        "from_version": info.version,
        "change": "only the provenance's absolute paths, made portable (specedge.provenance.portable_path); "
                  "the rows are those of from_version",
        "keys": list(keys),
        "content_sha256": digest,
    }
    # The table as read carries the old file's key-value metadata; the store writes the fixed record instead.
    table = table.replace_schema_metadata(None).cast(spec.schema)
    if table_content_sha256(table) != digest:
        raise InputError(f"dataset {dataset_id!r}: the table changed when cast to its schema; nothing written")
    new = store.write_validated(table, dataset_id, kind=info.kind, metadata=fixed, replace=True,
                                expect_version=info.version)
    back = table_content_sha256(store.read_table(dataset_id, version=new.version))
    if back != digest:  # pragma: no cover - a Parquet round trip that changes values
        raise InputError(f"dataset {dataset_id!r} v{new.version}: rows differ from v{info.version} "
                         f"({back} != {digest})")
    return PathFix(dataset_id, info.version, new.version, keys, digest)


def fix_all(store, *, dry_run: bool = False) -> list[PathFix]:
    """:func:`fix_paths` on every dataset; the ones that needed it."""
    return [fix for fix in (fix_paths(store, i, dry_run=dry_run) for i in store.ids()) if fix.needed]
