"""Self-speculative early exit on a tiny random Llama: the view shares the target's weights, leaves the target
intact, and computes what a separately built k-layer model with the same weights computes."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra")

import torch

from specedge.errors import InputError
from specedge.record.lm import HFCausalLM
from specedge.record.self_draft import EarlyExitLM, SelfDraftLM, exit_agreement, layer_subset_model, \
    parse_layers, truncated_model

LAYERS = 4


def _tiny(seed=0, layers=LAYERS):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    return model


def _reference(model, k):
    """Oracle: a fresh k-layer Llama built from the config, loaded with the target's weights of layers < k."""
    return _reference_subset(model, list(range(k)))


def _reference_subset(model, keep):
    """Oracle: a fresh len(keep)-layer Llama whose layer j holds the target's layer keep[j] (renamed by hand)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**{**model.config.to_dict(), "num_hidden_layers": len(keep)})
    ref = LlamaForCausalLM(cfg).eval()
    state = {}
    for name, w in model.state_dict().items():
        if not name.startswith("model.layers."):
            state[name] = w
            continue
        parts = name.split(".")
        if int(parts[2]) in keep:
            parts[2] = str(keep.index(int(parts[2])))
            state[".".join(parts)] = w
    result = ref.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return ref


@pytest.mark.parametrize("k", [1, 2, LAYERS])
def test_exit_equals_a_separately_built_k_layer_model(k):
    model = _tiny()
    ids = torch.randint(0, 97, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full_before = model(input_ids=ids).logits
        got = truncated_model(model, k)(input_ids=ids).logits
        want = _reference(model, k)(input_ids=ids).logits
        full_after = model(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(full_after, full_before)  # the target still runs all its layers
    assert len(model.model.layers) == LAYERS and model.config.num_hidden_layers == LAYERS
    if k < LAYERS:
        assert not torch.allclose(got, full_before, atol=1e-3)


def test_weights_are_shared_not_copied():
    model = _tiny()
    view = truncated_model(model, 2)
    assert view.lm_head.weight.data_ptr() == model.lm_head.weight.data_ptr()
    assert view.model.embed_tokens.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert len(view.model.layers) == 2
    for mine, theirs in zip(view.model.layers.parameters(), model.model.layers[:2].parameters()):
        assert mine.data_ptr() == theirs.data_ptr()


class _Vocab97:
    """Stands in for a tokenizer: the adapter's describe() only asks its length."""

    def __len__(self) -> int:
        return 97


def test_draft_lm_with_its_own_cache_matches_a_full_pass():
    target = HFCausalLM(_tiny(), tokenizer=_Vocab97(), name="tiny")
    draft = EarlyExitLM(target, 2)
    ids = torch.randint(0, 97, (1, 10), generator=torch.Generator().manual_seed(2))
    cache = draft.new_cache()
    first = draft.forward(ids[:, :6], cache)
    rest = draft.forward(ids[:, 6:], cache)
    whole = draft.forward(ids, draft.new_cache())
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, rtol=1e-5, atol=1e-4)
    assert draft.cache_length(cache) == 10
    desc = draft.describe()
    assert desc["exit_layer"] == 2 and desc["target_layers"] == LAYERS and desc["layers"] == 2


def test_agreement_is_one_at_the_last_layer_and_counts_positions():
    model = _tiny()
    seqs = [list(range(5, 20)), list(range(30, 40))]
    agree = exit_agreement(model, seqs, [1, LAYERS], start=[5, 2])
    assert agree[LAYERS] == 1.0 and 0.0 <= agree[1] < 1.0
    # by hand: positions counted are 15 - 5 + 10 - 2 = 18
    with torch.no_grad():
        view = truncated_model(model, 1)
        hits = 0
        for seq, s0 in zip(seqs, (5, 2)):
            ids = torch.tensor([seq])
            hits += int((view(input_ids=ids).logits[0, s0:].argmax(-1)
                         == model(input_ids=ids).logits[0, s0:].argmax(-1)).sum())
    assert agree[1] == pytest.approx(hits / 18)


def test_bad_exit_is_refused():
    with pytest.raises(InputError, match="k must be in 1..4"):
        truncated_model(_tiny(), 5)


def test_cli_rejects_a_bad_self_draft_before_loading_anything(capsys, monkeypatch):
    import specedge.record.smollm2 as smollm2
    from specedge.cli import main

    def boom():  # the target must not be loaded for a malformed --draft
        raise AssertionError("loaded the target")

    monkeypatch.setattr(smollm2, "load_smollm2", boom)
    assert main(["record", "smollm2-acceptance", "--dataset", "x", "--draft", "self:two"]) == 2
    assert "self:K" in capsys.readouterr().err


def test_layer_skipping_equals_a_model_built_from_the_kept_layers():
    model = _tiny(layers=6)
    keep = [0, 2, 3, 5]
    ids = torch.randint(0, 97, (1, 11), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = model(input_ids=ids).logits
        got = layer_subset_model(model, keep)(input_ids=ids).logits
        want = _reference_subset(model, keep)(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(model(input_ids=ids).logits, full)  # target unchanged
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(6))


def test_layer_skipping_draft_caches_under_its_own_numbering():
    target = HFCausalLM(_tiny(layers=6), tokenizer=_Vocab97(), name="tiny")
    draft = SelfDraftLM(target, [1, 3, 4])
    ids = torch.randint(0, 97, (1, 9), generator=torch.Generator().manual_seed(5))
    cache = draft.new_cache()
    parts = [draft.forward(ids[:, :4], cache), draft.forward(ids[:, 4:7], cache), draft.forward(ids[:, 7:], cache)]
    torch.testing.assert_close(torch.cat(parts, dim=1), draft.forward(ids, draft.new_cache()), rtol=1e-5, atol=1e-4)
    draft.crop(cache, 5)
    assert draft.cache_length(cache) == 5
    assert draft.name == "tiny-skip3" and draft.describe()["kept_layers"] == [1, 3, 4]


def test_parse_layers():
    assert parse_layers("3", 30) == [0, 1, 2]
    assert parse_layers("0-2,5,7-8", 30) == [0, 1, 2, 5, 7, 8]
    with pytest.raises(InputError, match="ranges"):
        parse_layers("a-b", 30)
    with pytest.raises(InputError, match="increasing distinct"):
        layer_subset_model(_tiny(), [2, 1])
