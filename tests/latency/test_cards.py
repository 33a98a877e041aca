"""Model and device cards: the shipped ones load and agree with their architectures; new ones need no code."""

from __future__ import annotations

import pytest

from specedge.errors import ScenarioError
from specedge.latency import cards


def _params_from_architecture(card: cards.ModelCard) -> int:
    h, kv = card.hidden_size, card.kv_hidden_size
    layer = 2 * h * h + 2 * h * kv + 3 * h * card.ffn_size + 2 * h
    return 2 * card.vocab_size * h + card.num_layers * layer + h


@pytest.mark.parametrize("name", ["llama-68m", "tinyllama-1.1b", "llama-7b", "llama-13b"])
def test_shipped_model_cards_match_their_architecture(name):
    card = cards.load_model_card(name)
    assert card.name == name
    assert _params_from_architecture(card) == card.num_params


def test_shipped_devices_load():
    assert {"rtx-3080", "rtx-4500", "epyc-host"} <= set(cards.available_device_cards())
    gpu = cards.load_device_card("rtx-3080")
    assert gpu.kind == "gpu" and not gpu.measured and gpu.peak_flops == pytest.approx(59.5e12)
    assert cards.load_device_card("epyc-host").measured


def test_pair_parsing_and_unknown_names():
    draft, target = cards.parse_pair("llama-68m/llama-7b")
    assert (draft.num_layers, target.num_layers) == (2, 32)
    with pytest.raises(ScenarioError, match="unknown model card 'gpt-9'.*llama-68m"):
        cards.parse_pair("gpt-9/llama-7b")
    with pytest.raises(ScenarioError, match="draft/target"):
        cards.parse_pair("llama-7b")
    with pytest.raises(ScenarioError, match="unknown device card"):
        cards.load_device_card("tpu-v9")


def test_a_new_card_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "toy-1m.toml").write_text(
        'name = "toy-1m"\ndisplay_name = "Toy"\nnum_layers = 1\nhidden_size = 64\nffn_size = 256\n'
        "num_params = 1000000\nbytes_per_param = 4\nnum_attention_heads = 4\nnum_kv_heads = 4\n"
        'vocab_size = 256\nsource = "test"\n'
    )
    (tmp_path / "cards" / "broken.toml").write_text('name = "broken"\nnum_layers = 1\n')
    monkeypatch.setenv("SPECEDGE_MODELS", str(tmp_path))
    toy = cards.load_model_card("toy-1m")
    assert toy.weight_bytes == 4e6 and toy.kv_hidden_size == 64
    with pytest.raises(ScenarioError, match=r"broken\.toml: model card misses field\(s\) display_name"):
        cards.load_model_card("broken")


def test_card_name_must_match_file(tmp_path, monkeypatch):
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "gpu-x.toml").write_text(
        'name = "gpu-y"\ndisplay_name = "X"\nkind = "gpu"\npeak_flops = 1e12\n'
        'memory_bandwidth_bytes_per_s = 1e11\nmemory_bytes = 1e9\nmeasured = false\nsource = "t"\n'
    )
    monkeypatch.setenv("SPECEDGE_MODELS", str(tmp_path))
    with pytest.raises(ScenarioError, match="must equal the file name 'gpu-x'"):
        cards.load_device_card("gpu-x")


def test_host_measurement_writes_a_loadable_card(tmp_path, monkeypatch):
    from specedge.latency.hostbench import host_card_toml

    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "this-host.toml").write_text(host_card_toml("this-host", matmul_n=64,
                                                                        copy_bytes=1 << 20))
    monkeypatch.setenv("SPECEDGE_MODELS", str(tmp_path))
    card = cards.load_device_card("this-host")
    assert card.measured and card.kind == "cpu" and card.peak_flops > 0 and card.memory_bandwidth_bytes_per_s > 0
