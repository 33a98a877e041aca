"""The recorder drives a transformers causal LM loaded from a local directory (tiny random Llama, no download)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import torch

from specedge.errors import InputError
from specedge.record.lm import HFCausalLM, load_lm
from specedge.record.prompts import Prompt
from specedge.record.recorder import LMDrafter, greedy_decode, record_acceptance


def _byte_tokenizer():
    """A byte-level BPE tokenizer with no merges: ids are the UTF-8 byte values (built offline)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    tok = Tokenizer(models.BPE(vocab={chars[b]: b for b in range(256)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def _save_tiny_llama(path, seed, hidden, layers, noise=0.0):
    """A random tiny Llama (seed) whose weights are then perturbed by ``noise`` x their std (torch seed + 1)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=256, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(50.0)  # spread the logits
        torch.manual_seed(seed + 1)
        for w in model.parameters():
            w.add_(noise * w.std() * torch.randn_like(w) if w.numel() > 1 else 0)
    model.save_pretrained(path)
    _byte_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    target = load_lm(_save_tiny_llama(root / "tiny-llama-target", 0, 32, 2), dtype="fp64")
    # the draft: the target's weights plus noise, so that it agrees with the target often but not always
    draft = load_lm(_save_tiny_llama(root / "tiny-llama-draft", 0, 32, 2, noise=0.25), dtype="fp64")
    return target, draft


def test_loads_from_a_local_path_with_provenance(hf_pair):
    target, _ = hf_pair
    assert isinstance(target, HFCausalLM) and target.name == "tiny-llama-target"
    d = target.describe()
    assert d["parameters"] == sum(p.numel() for p in target.model.parameters())
    assert len(d["weights_sha256"]) == 64 and d["layers"] == 2 and d["hidden"] == 32
    assert target.encode("def f():") == list(b"def f():") and target.decode(list(b"ok")) == "ok"


def test_crop_then_extend_matches_a_full_pass(hf_pair):
    target, _ = hf_pair
    x = torch.randint(0, 256, (2, 10))
    full = target.forward(x, target.new_cache())
    cache = target.new_cache()
    target.forward(x[:, :7], cache)
    target.crop(cache, 4)
    assert target.cache_length(cache) == 4
    assert torch.allclose(target.forward(x[:, 4:], cache), full[:, 4:], atol=1e-9)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_records_an_hf_pair(hf_pair, temperature):
    target, draft = hf_pair
    prompts = [Prompt("p0", "import os\n"), Prompt("p1", "def f(x):")]
    rec = record_acceptance(target, LMDrafter(draft), prompts, dataset_id="hf-tiny", gamma=4,
                            temperature=temperature, max_new_tokens=24)
    f = rec.frame
    assert f["accepted"].between(0, 4).all() and (f["drafted"] == 4).all()
    assert 0 < f["accepted"].mean() < 4
    assert rec.metadata["target_model"] == "tiny-llama-target"
    assert rec.metadata["versions"]["transformers"]
    if temperature == 0:
        for p in prompts:
            assert rec.outputs[p.request_id] == greedy_decode(target, target.encode(p.text), 24)


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_lm(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        load_lm(tmp_path / "empty")
