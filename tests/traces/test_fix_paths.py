"""Provenance never names the recording machine's folders: ``specedge traces fix-paths`` re-writes old datasets
(new version, same rows, old version kept), every store write makes paths portable, and the shipped store's
newest versions hold no absolute path.

The absolute-path detector here is the test's own (it shares no code with specedge.provenance)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from specedge.errors import DatasetExistsError, DatasetNotFoundError
from specedge.traces import store as store_mod
from specedge.traces.fix_paths import NOTE_KEY, fix_all, fix_paths, table_content_sha256
from specedge.traces.store import open_store

from conftest import acceptance_frame, tree_digest

REPO = Path(__file__).resolve().parents[2]
# "/x/..." at the start of a string or after a separator, except the kernel's /proc, /sys, /dev; or any
# site-packages folder.
_ABSOLUTE = re.compile(r"""(?:^|[\s"'(=,;\[{])/(?!proc/|sys/|dev/)[^\s/"]+/|site-packages/""")

TMP_PLAN = "/tmp/sm/plans/s4x2-l3-optimal.json"
SITE = "/work/venv/lib/python3.11/site-packages/numpy/core"


def absolute_paths(record) -> list[str]:
    """Every JSON string (key or value) in ``record`` that holds an absolute path."""
    found: list[str] = []

    def walk(obj):
        if isinstance(obj, str):
            if _ABSOLUTE.search(obj):
                found.append(obj)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(k)
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(record)
    return found


def legacy_metadata(versions: dict | None = None) -> dict:
    meta = {
        "source": "recorded", "draft_model": "d", "target_model": "t",
        "plan_file": TMP_PLAN,
        "target": {"name": "t", "path": SITE},
        "note": f"plan from {TMP_PLAN}; CPU from /proc/stat; 12 tokens/s",
        "cpu_usage": {"source": "/proc/stat per-core jiffies, /proc/<pid>/stat"},
    }
    if versions is not None:
        meta["versions"] = versions
    return meta


def write_legacy(st, dataset_id: str, meta: dict, monkeypatch) -> None:
    """Write as specedge did before the store made paths portable."""
    with monkeypatch.context() as m:
        m.setattr(store_mod, "portable_metadata", lambda record, **_: (record, []))
        st.write(acceptance_frame(), dataset_id, kind="acceptance", metadata=meta)


@pytest.fixture
def legacy(tmp_path, monkeypatch):
    st = open_store(tmp_path / "store")
    write_legacy(st, "old", legacy_metadata(), monkeypatch)
    st.write(acceptance_frame(seed=1), "clean", kind="acceptance", metadata={"source": "recorded"})
    assert absolute_paths(st.info("old").metadata)  # the fixture really is legacy
    return st


def test_new_version_has_portable_paths_same_rows_and_the_old_one_is_untouched(legacy):
    before = tree_digest(legacy.root, include_hidden=False)
    v1_meta = legacy.info("old", version=1).metadata
    fix = fix_paths(legacy, "old")
    assert (fix.from_version, fix.new_version) == (1, 2)

    new = legacy.info("old")
    assert new.version == 2
    assert absolute_paths(new.metadata) == []
    assert absolute_paths(legacy.file_metadata("old")) == []
    assert new.metadata["plan_file"] == "s4x2-l3-optimal.json (outside the repository)"
    assert new.metadata["target"]["path"] == "numpy:numpy/core"  # no version recorded: none claimed
    assert "/proc/stat" in new.metadata["cpu_usage"]["source"]  # a kernel interface, not a machine folder
    assert "12 tokens/s" in new.metadata["note"] and TMP_PLAN not in new.metadata["note"]
    assert {k: v for k, v in new.metadata.items() if k not in ("plan_file", "target", "note", NOTE_KEY)} == {
        k: v for k, v in v1_meta.items() if k not in ("plan_file", "target", "note")}

    note = new.metadata[NOTE_KEY]
    assert note["from_version"] == 1 and "only" in note["change"] and "paths" in note["change"]
    assert set(note["keys"]) == {"plan_file", "target.path", "note"}
    assert note["content_sha256"] == table_content_sha256(legacy.read_table("old", version=1))

    pd.testing.assert_frame_equal(legacy.read("old", version=1), legacy.read("old", version=2))
    after = tree_digest(legacy.root, include_hidden=False)
    assert {k: v for k, v in after.items() if k in before and k != "catalog.json"} == {
        k: v for k, v in before.items() if k != "catalog.json"}  # v1 file (and the other dataset) untouched
    assert legacy.info("old", version=1).metadata == v1_meta  # history keeps the original record
    assert [r.ok for r in legacy.verify()] == [True] * 3


def test_a_recorded_version_is_kept_the_installed_one_never_claimed(tmp_path, monkeypatch):
    st = open_store(tmp_path / "store")
    write_legacy(st, "old", legacy_metadata(versions={"numpy": "0.0.1-recorded"}), monkeypatch)
    fix_paths(st, "old")
    assert st.info("old").metadata["target"]["path"] == "numpy==0.0.1-recorded:numpy/core"


def test_nothing_to_fix_writes_nothing_and_a_second_run_is_a_no_op(legacy):
    assert fix_paths(legacy, "clean").new_version is None
    assert [f.dataset_id for f in fix_all(legacy)] == ["old"]
    before = tree_digest(legacy.root, include_hidden=False)
    assert fix_all(legacy) == []
    assert tree_digest(legacy.root, include_hidden=False) == before
    assert legacy.info("old").version == 2


def test_dry_run_and_unknown_id_write_nothing(legacy):
    before = tree_digest(legacy.root, include_hidden=False)
    fix = fix_paths(legacy, "old", dry_run=True)
    assert fix.needed and fix.new_version is None and "plan_file" in fix.changed_keys
    with pytest.raises(DatasetNotFoundError, match="'nope' is not in the store"):
        fix_paths(legacy, "nope")
    assert tree_digest(legacy.root, include_hidden=False) == before


def test_a_version_added_meanwhile_refuses_the_write(legacy):
    table = legacy.read_table("old").replace_schema_metadata(None)
    legacy.write(acceptance_frame(seed=2), "old", kind="acceptance", metadata={"source": "recorded"}, replace=True)
    before = tree_digest(legacy.root, include_hidden=False)
    with pytest.raises(DatasetExistsError, match="expected version 1"):
        legacy.write_validated(table, "old", kind="acceptance", metadata={"source": "recorded"}, replace=True,
                               expect_version=1)
    assert tree_digest(legacy.root, include_hidden=False) == before


def test_every_write_makes_metadata_paths_portable(tmp_path):
    st = open_store(tmp_path / "store")
    st.write(acceptance_frame(), "new", kind="acceptance", metadata=legacy_metadata())
    assert absolute_paths(st.info("new").metadata) == []
    assert absolute_paths(st.file_metadata("new")) == []
    assert str(tmp_path) not in st.catalog_path.read_text()


def test_cli_fix_paths(legacy, capsys):
    from specedge.cli import main

    def run(*args):
        capsys.readouterr()
        rc = main(["traces", "fix-paths", *args, "--store", str(legacy.root)])
        out = capsys.readouterr()
        return rc, out.out + out.err

    rc, out = run("--all", "--dry-run")
    assert rc == 0 and "old v1: would write" in out and legacy.info("old").version == 1
    rc, out = run("--all")
    assert rc == 0 and "old v1 -> v2" in out and legacy.info("old").version == 2
    rc, out = run("nope")
    assert rc == 2 and "'nope' is not in the store" in out
    rc, out = run()
    assert rc == 2 and "--all" in out


def test_shipped_store_newest_versions_hold_no_absolute_path():
    """The standard going forward: the newest version of every dataset in traces/ (catalog entry, Parquet
    key-value metadata) names no absolute path; only the history may."""
    st = open_store(REPO / "traces")
    catalog = json.loads(st.catalog_path.read_text())
    bad = {}
    for dataset_id, entry in catalog["datasets"].items():
        current = {k: v for k, v in entry.items() if k != "history"}
        found = absolute_paths(current)
        kv = {k.decode(): v.decode() for k, v in (pq.read_schema(st.root / entry["path"]).metadata or {}).items()}
        found += absolute_paths(kv) + absolute_paths(json.loads(kv["specedge"]))
        if found:
            bad[dataset_id] = sorted(set(found))[:3]
    assert bad == {}
