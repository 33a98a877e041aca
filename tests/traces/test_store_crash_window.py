"""The window between the data rename and the catalog rename: a writer that dies there leaves an unreferenced
data file, never a catalog entry naming a missing file; the next writer removes the leftover."""

from __future__ import annotations

import json
import os

import pytest
from conftest import SAMPLES, tree_digest

from specedge.traces import store as store_mod
from specedge.traces.ingest import ingest
from specedge.traces.store import open_store


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so no cleanup handler in the store can catch it."""


def _catalog_paths(root) -> list[str]:
    catalog = json.loads((root / "catalog.json").read_text())
    return [p for e in catalog["datasets"].values() for p in [e["path"]] + [h["path"] for h in e.get("history", [])]]


def test_data_rename_happens_before_the_catalog_rename(store, monkeypatch):
    order = []
    real = os.replace

    def spy(src, dst):
        order.append(os.path.basename(str(dst)))
        return real(src, dst)

    monkeypatch.setattr(store_mod.os, "replace", spy)
    ingest(store, "vllm", SAMPLES / "vllm_metrics.prom", "vp")
    assert order[-2:] == ["v1.parquet", "catalog.json"]


@pytest.mark.parametrize("replace", [False, True])
def test_death_between_the_renames_leaves_no_dangling_catalog_entry(store, monkeypatch, replace):
    dataset = "base" if replace else "killed"
    catalog_before = (store.root / "catalog.json").read_bytes()
    listing_before = tree_digest(store.root, include_hidden=False)

    def die(self, catalog):
        raise Killed()

    monkeypatch.setattr(store_mod.TraceStore, "_write_catalog", die)
    with pytest.raises(Killed):
        ingest(store, "sglang", SAMPLES / "sglang.jsonl", dataset, replace=replace)
    monkeypatch.undo()

    # The data file was renamed into place; the catalog was not touched and names only existing files.
    assert (store.root / "catalog.json").read_bytes() == catalog_before
    leftover = store.root / dataset / ("v2.parquet" if replace else "v1.parquet")
    assert leftover.exists()
    assert set(tree_digest(store.root, include_hidden=False)) - set(listing_before) >= {leftover.relative_to(
        store.root).as_posix()}
    fresh = open_store(store.root)
    assert all((fresh.root / p).exists() for p in _catalog_paths(fresh.root))
    assert all(r.ok for r in fresh.verify())
    assert fresh.ids() == ["base"]

    # The next writer removes the unreferenced file and commits normally.
    ingest(fresh, "llamacpp", SAMPLES / "llamacpp.txt", "next")
    assert not leftover.exists()
    assert all((fresh.root / p).exists() for p in _catalog_paths(fresh.root))
    assert sorted(fresh.ids()) == ["base", "next"] and all(r.ok for r in fresh.verify())
