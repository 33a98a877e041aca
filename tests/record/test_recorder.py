"""The recorder on tiny randomly initialised byte-level GPTs: valid rounds, bonus semantics, greedy equality."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import json

import numpy as np
import torch

from specedge.errors import InputError
from specedge.record.bytegpt import ByteGPT, ByteGPTConfig, load_bytegpt, save_bytegpt
from specedge.record.lm import ByteGPTLM, load_lm
from specedge.record.prompts import Prompt, load_prompt_file
from specedge.record.recorder import LMDrafter, greedy_decode, record_acceptance

PROMPTS = [Prompt("a", "def main(argv):\n"), Prompt("b", "import os\nimport sys\n"), Prompt("c", "class X:")]
GAMMA, NEW = 5, 40


def _record(target, draft, temperature, dataset="tiny", seed=0):
    return record_acceptance(target, LMDrafter(draft), PROMPTS, dataset_id=dataset, gamma=GAMMA,
                             temperature=temperature, max_new_tokens=NEW, seed=seed)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rounds_are_valid(tiny_pair, temperature):
    target, draft = tiny_pair
    rec = _record(target, draft, temperature)
    f = rec.frame
    assert list(f.columns) == ["dataset", "request_id", "turn", "round", "drafted", "accepted", "prompt_tokens",
                               "temperature", "wall_ms"]
    assert (f["drafted"] == GAMMA).all() and f["accepted"].between(0, GAMMA).all()
    assert (f["wall_ms"] > 0).all() and (f["temperature"] == temperature).all()
    for p in PROMPTS:
        rows = f[f["request_id"] == p.request_id]
        assert rows["round"].tolist() == list(range(len(rows)))
        assert (rows["prompt_tokens"] == len(p.text.encode())).all()
        committed = (rows["accepted"] + 1).to_numpy()  # accepted drafts + the corrected/bonus token
        assert committed[:-1].sum() < NEW <= committed.sum()  # stops at the first round reaching NEW
        assert len(rec.outputs[p.request_id]) == NEW
    assert 0 < f["accepted"].mean() < GAMMA  # neither degenerate: a random pair disagrees sometimes
    md = rec.metadata
    assert md["source"] == "recorded" and md["rounds"] == len(f) and md["gamma"] == GAMMA
    assert md["target_model"] == "tiny-target" and md["draft_model"] == "tiny-draft"
    assert md["target_parameters"] == target.model.num_parameters()
    assert len(md["target_weights_sha256"]) == 64 and md["versions"]["torch"] == torch.__version__
    assert md["cpu_model"] and md["torch_threads"] >= 1
    json.dumps(md)  # metadata is plain JSON


def test_greedy_output_equals_the_targets_own_greedy_decoding(tiny_pair):
    target, draft = tiny_pair
    rec = _record(target, draft, 0.0)
    for p in PROMPTS:
        assert rec.outputs[p.request_id] == greedy_decode(target, target.encode(p.text), NEW)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_draft_equal_to_target_accepts_everything_and_adds_a_bonus(tiny_pair, temperature):
    target, _ = tiny_pair
    rec = _record(target, target, temperature)
    assert (rec.frame["accepted"] == GAMMA).all()
    assert len(rec.frame) == len(PROMPTS) * -(-NEW // (GAMMA + 1))  # γ + 1 tokens per round


def test_same_seed_same_rounds_other_seed_other_rounds(tiny_pair):
    target, draft = tiny_pair
    a, b, c = (_record(target, draft, 1.0, seed=s).frame for s in (0, 0, 1))
    assert a["accepted"].tolist() == b["accepted"].tolist()
    assert a["accepted"].tolist() != c["accepted"].tolist()


def test_checkpoint_round_trip_and_bad_paths(tmp_path):
    torch.manual_seed(0)
    model = ByteGPT(ByteGPTConfig(d_model=16, n_layer=1, n_head=2))
    save_bytegpt(model, tmp_path / "m", extra={"steps": 0})
    lm = load_lm(tmp_path / "m")
    assert isinstance(lm, ByteGPTLM) and lm.name == "m"
    x = torch.randint(0, 256, (1, 7))
    assert torch.allclose(lm.forward(x, None), model.eval()(x))
    assert lm.describe()["weights_sha256"] == load_lm(tmp_path / "m").describe()["weights_sha256"]
    with pytest.raises(InputError, match="does not exist"):
        load_lm(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    with pytest.raises(InputError, match="bytegpt checkpoint"):
        load_bytegpt(tmp_path / "bad")


def test_cached_passes_match_a_full_pass(tiny_pair):
    target, _ = tiny_pair
    x = torch.randint(0, 256, (2, 12))
    full = target.forward(x, target.new_cache())
    cache = target.new_cache()
    parts = [target.forward(x[:, :5], cache), target.forward(x[:, 5:6], cache), target.forward(x[:, 6:], cache)]
    assert torch.allclose(full, torch.cat(parts, dim=1), atol=1e-10)
    target.crop(cache, 6)
    assert torch.allclose(target.forward(x[:, 6:], cache), full[:, 6:], atol=1e-10)


def test_prompt_files(tmp_path):
    good = tmp_path / "p.jsonl"
    good.write_text('{"request_id": "q1", "prompt": "hello"}\n\n{"prompt": "world"}\n')
    assert load_prompt_file(good) == [Prompt("q1", "hello"), Prompt("3", "world")]
    txt = tmp_path / "p.txt"
    txt.write_text("one\ntwo\n")
    assert [p.text for p in load_prompt_file(txt)] == ["one", "two"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    with pytest.raises(InputError, match="bad.jsonl, line 2"):
        load_prompt_file(bad)
    bad.write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        load_prompt_file(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_prompt_file(tmp_path / "nope.jsonl")


def test_bad_recorder_arguments(tiny_pair):
    target, draft = tiny_pair
    with pytest.raises(InputError, match="gamma"):
        record_acceptance(target, LMDrafter(draft), PROMPTS, dataset_id="x", gamma=0)
    with pytest.raises(InputError, match="no prompts"):
        record_acceptance(target, LMDrafter(draft), [], dataset_id="x")
