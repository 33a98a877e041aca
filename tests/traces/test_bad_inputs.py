"""Every bad input: exit 2, one message naming the file and the location, no traceback, store unchanged."""

from __future__ import annotations

import json

import pytest
from conftest import BAD, SAMPLES, tree_digest

from specedge.cli import main

MANIFEST = json.loads((BAD / "manifest.json").read_text())


def test_corpus_is_complete_and_large_enough():
    files = {p.name for p in BAD.iterdir() if p.name not in ("manifest.json", "README.md")}
    assert files == {e["file"] for e in MANIFEST}
    assert len(MANIFEST) >= 15


def _run(capsys, args: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(args)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_bad_input_is_refused_cleanly(entry, store, capsys):
    before = tree_digest(store.root)
    path = BAD / entry["file"]
    for command in (["ingest", entry["format"], str(path), "--dataset", "new"],
                    ["traces", "validate", str(path), "--format", entry["format"]]):
        rc, err = _run(capsys, command + entry.get("args", []) + ["--store", str(store.root)])
        assert rc == 2, err
        assert "Traceback" not in err
        message = err.strip()
        assert len(message.splitlines()) == 1, message
        assert entry["file"] in message
        for fragment in entry["expect"]:
            assert fragment in message, (fragment, message)
    assert tree_digest(store.root) == before


def test_existing_dataset_id_needs_replace(store, capsys):
    before = tree_digest(store.root)
    rc, err = _run(capsys, ["ingest", "csv", str(SAMPLES / "acceptance.csv"), "--dataset", "base",
                            "--store", str(store.root)])
    assert rc == 2 and "'base' already exists" in err and "--replace" in err
    assert tree_digest(store.root) == before
    rc, _ = _run(capsys, ["ingest", "csv", str(SAMPLES / "acceptance.csv"), "--dataset", "base", "--replace",
                          "--store", str(store.root)])
    assert rc == 0
    assert [v.version for v in store.versions("base")] == [1, 2]
    assert store.read("base", version=1)["request_id"].nunique() == 5  # the old version is still there


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["ingest", "csv", "no-such-file.csv", "--dataset", "x"], "no-such-file.csv: no such file"),
        (["ingest", "xml", str(SAMPLES / "acceptance.csv"), "--dataset", "x"], "unknown ingest format 'xml'"),
        (["ingest", "csv", str(SAMPLES / "acceptance.csv"), "--dataset", "bad/id"], "dataset id 'bad/id'"),
        (["ingest", "specbench", str(SAMPLES / "specbench.jsonl"), "--dataset", "x", "--drafted", "0"], "--drafted 0"),
        (["ingest", "specbench", str(SAMPLES / "specbench.jsonl"), "--dataset", "x", "--meta", "oops"], "key=value"),
        (["ingest", "specbench", str(BAD / "truncated.parquet"), "--dataset", "x"], "Parquet file, not"),
        (["traces", "show", "missing"], "'missing' is not in the store"),
    ],
)
def test_bad_arguments_exit_2(args, fragment, store, capsys):
    before = tree_digest(store.root)
    rc, err = _run(capsys, args + ["--store", str(store.root)])
    assert rc == 2 and fragment in err and "Traceback" not in err
    assert tree_digest(store.root) == before
