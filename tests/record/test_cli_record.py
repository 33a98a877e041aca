"""``specedge record acceptance|compute`` end to end on tiny checkpoints, written through the trace store."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import torch

from specedge.cli import main
from specedge.record.bytegpt import save_bytegpt
from specedge.traces.store import open_store

from .conftest import tiny_bytegpt


def _checkpoints(tmp_path):
    target = tiny_bytegpt(0, 32, 2, 2, "t")
    draft = tiny_bytegpt(0, 32, 2, 2, "d", noise=0.3)
    save_bytegpt(target.model.float(), tmp_path / "tiny-target")
    save_bytegpt(draft.model.float(), tmp_path / "tiny-draft")
    return tmp_path / "tiny-target", tmp_path / "tiny-draft"


def test_record_acceptance_and_compute_write_to_the_store(tmp_path):
    target, draft = _checkpoints(tmp_path)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"request_id": "a", "prompt": "import os\\n"}\n{"request_id": "b", "prompt": "def f():"}\n')
    store_dir = tmp_path / "store"
    args = ["record", "acceptance", "--target", str(target), "--draft", str(draft), "--dataset", "tiny-t1",
            "-T", "1", "--gamma", "4", "--max-new-tokens", "16", "--prompts", str(prompts),
            "--store", str(store_dir), "--licence", "test", "--note", "tiny random models"]
    assert main(args) == 0
    assert main(args) == 2  # the id exists: refused, not overwritten
    store = open_store(store_dir)
    info = store.info("tiny-t1")
    assert info.kind == "acceptance" and info.source == "recorded"
    assert info.metadata["target_model"] == "tiny-target" and info.metadata["gamma"] == 4
    frame = store.read("tiny-t1")
    assert set(frame["request_id"]) == {"a", "b"} and (frame["drafted"] == 4).all()

    assert main(["record", "compute", "--model", str(target), "--dataset", "compute-tiny", "--batch-sizes", "1,2",
                 "--new-tokens", "1,2", "--contexts", "8", "--repeats", "2", "--warmup", "1",
                 "--store", str(store_dir), "--allow-noisy"]) == 0  # tests share the machine
    assert "before" in store.info("compute-tiny").metadata["foreign_work"]
    compute = store.read("compute-tiny")
    assert len(compute) == 2 * (1 + 1 + 2) * 2 and set(compute["phase"]) == {"prefill", "decode", "verify"}
    assert store.info("compute-tiny").metadata["torch_threads"] == 1
    assert main(["record", "fit-compute", "compute-tiny", "--card", "stdlib-bytegpt-3m", "--store", str(store_dir)]) == 0
    torch.set_num_threads(1)


def test_bad_inputs_exit_2_with_a_message(tmp_path, capsys):
    target, draft = _checkpoints(tmp_path)
    assert main(["record", "acceptance", "--target", str(tmp_path / "nope"), "--draft", str(draft),
                 "--dataset", "x", "--store", str(tmp_path / "s")]) == 2
    assert "nope: model path does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert main(["record", "acceptance", "--target", str(target), "--draft", str(draft), "--dataset", "x",
                 "--prompts", str(bad), "--store", str(tmp_path / "s")]) == 2
    assert "bad.jsonl, line 1" in capsys.readouterr().err
    assert main(["record", "compute", "--model", str(target), "--dataset", "x", "--batch-sizes", "a,b"]) == 2
