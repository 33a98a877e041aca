"""The store's read-side catalog cache: parsed once per catalog file, refreshed when a writer replaces it, and
never corrupted by a caller that mutates what it was given."""

from __future__ import annotations

import json

from conftest import acceptance_frame

from specedge.traces import store as store_module
from specedge.traces.store import open_store


def _count_parses(monkeypatch) -> list[int]:
    calls = [0]
    real = json.loads

    def counting(text, *args, **kwargs):
        calls[0] += 1
        return real(text, *args, **kwargs)

    monkeypatch.setattr(store_module.json, "loads", counting)
    return calls


def test_reads_parse_the_catalog_once_until_it_changes(tmp_path, monkeypatch):
    st = open_store(tmp_path)
    st.write(acceptance_frame(), "a", kind="acceptance", metadata={"source": "recorded"})
    calls = _count_parses(monkeypatch)
    for _ in range(50):
        st.info("a")
        assert "a" in st
        st.list()
    assert calls[0] <= 1
    # another store object on the same directory shares the parsed catalog
    open_store(tmp_path).info("a")
    assert calls[0] <= 1


def test_a_write_is_seen_by_the_next_read(tmp_path):
    st = open_store(tmp_path)
    other = open_store(tmp_path)
    st.write(acceptance_frame(), "a", kind="acceptance", metadata={"source": "recorded"})
    assert other.ids() == ["a"]
    st.write(acceptance_frame(seed=1), "b", kind="acceptance", metadata={"source": "recorded"})
    assert other.ids() == ["a", "b"]
    st.write(acceptance_frame(seed=2), "a", kind="acceptance", metadata={"source": "recorded"}, replace=True)
    assert other.info("a").version == 2
    assert [v.version for v in other.versions("a")] == [1, 2]


def test_mutating_returned_metadata_does_not_change_the_store(tmp_path):
    st = open_store(tmp_path)
    st.write(acceptance_frame(), "a", kind="acceptance",
             metadata={"source": "recorded", "params": {"gamma": 4, "notes": ["x"]}})
    info = st.info("a")
    info.metadata["params"]["gamma"] = 99
    info.metadata["params"]["notes"].append("y")
    info.metadata["extra"] = 1
    again = st.info("a").metadata
    assert again["params"] == {"gamma": 4, "notes": ["x"]} and "extra" not in again
