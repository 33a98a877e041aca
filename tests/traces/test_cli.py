"""`specedge traces list|show|validate|verify` and `specedge ingest` through specedge.cli.main."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES

from specedge.cli import main


def _run(capsys, args):
    capsys.readouterr()
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_ingest_then_list_json(store, capsys):
    rc, out, _ = _run(capsys, ["ingest", "specbench", str(SAMPLES / "specbench.jsonl"), "--dataset", "sb",
                               "--meta", "draft_model=sps-68m", "--meta", "target_model=vicuna-7b",
                               "--meta", "temperature=0", "--store", str(store.root)])
    assert rc == 0 and "sb v1" in out and "drafted inferred" in out
    rc, out, _ = _run(capsys, ["traces", "list", "--json", "--store", str(store.root)])
    assert rc == 0
    listed = {d["id"]: d for d in json.loads(out)}
    assert set(listed) == {"base", "sb"}
    sb = listed["sb"]
    assert sb["kind"] == "acceptance" and sb["source"] == "ingested:specbench" and sb["rows"] == 18
    assert sb["metadata"]["draft_model"] == "sps-68m" and sb["metadata"]["target_model"] == "vicuna-7b"
    assert sb["draft_model"] == "sps-68m" and sb["metadata"]["drafted_inferred"] is True


def test_show_json_has_the_statistics(store, capsys):
    rc, out, _ = _run(capsys, ["traces", "show", "base", "--json", "--store", str(store.root)])
    assert rc == 0
    shown = json.loads(out)
    for key in ("rounds", "requests", "tau", "acceptance_ratio", "alpha", "histogram", "survival", "metadata"):
        assert key in shown, key
    frame = store.read("base")
    assert shown["rounds"] == len(frame) and shown["requests"] == 5
    assert shown["tau"] == pytest.approx(1 + frame["accepted"].mean())
    assert len(shown["alpha"]) == 4 and sum(h["count"] for h in shown["histogram"]) == len(frame)


@pytest.mark.parametrize("fmt, name", [("vllm", "vllm_metrics.prom"), ("csv", "compute.csv")])
def test_show_human_output(store, capsys, fmt, name):
    assert _run(capsys, ["ingest", fmt, str(SAMPLES / name), "--dataset", "d", "--store", str(store.root)])[0] == 0
    rc, out, _ = _run(capsys, ["traces", "show", "d", "--store", str(store.root)])
    assert rc == 0 and "d v1" in out
    assert ("histogram" in out) if fmt == "vllm" else ("latency_ms" in out)
    rc, out, _ = _run(capsys, ["traces", "list", "--store", str(store.root)])
    assert rc == 0 and "base" in out and "d" in out


def test_validate_ok(store, capsys):
    rc, out, _ = _run(capsys, ["traces", "validate", str(SAMPLES / "sglang.jsonl"), "--format", "sglang",
                               "--store", str(store.root)])
    assert rc == 0 and "ok:" in out and "4 aggregate rows" in out


def test_verify_ok_then_detects_corruption(store, capsys):
    rc, out, _ = _run(capsys, ["traces", "verify", "--store", str(store.root)])
    assert rc == 0 and "1 dataset file(s) verified" in out
    path = store.info("base").path
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    rc, out, err = _run(capsys, ["traces", "verify", "--store", str(store.root)])
    assert rc == 1 and "checksum mismatch" in err and "base v1" in err and "Traceback" not in err


def test_store_env_var_is_the_default(store, capsys, monkeypatch):
    monkeypatch.setenv("SPECEDGE_STORE", str(store.root))
    rc, out, _ = _run(capsys, ["traces", "list", "--json"])
    assert rc == 0 and [d["id"] for d in json.loads(out)] == ["base"]
