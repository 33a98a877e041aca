"""Self-speculative early exit on a tiny random Llama: the view shares the target's weights, leaves the target
intact, and computes what a separately built k-layer model with the same weights computes."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra")

import torch

from specedge.errors import InputError
from specedge.record.lm import HFCausalLM
from specedge.record.self_draft import EarlyExitLM, exit_agreement, truncated_model

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
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**{**model.config.to_dict(), "num_hidden_layers": k})
    ref = LlamaForCausalLM(cfg).eval()
    state = {name: w for name, w in model.state_dict().items()
             if not name.startswith("model.layers.") or int(name.split(".")[2]) < k}
    missing, unexpected = ref.load_state_dict(state, strict=True), None
    assert not missing.missing_keys and not missing.unexpected_keys and unexpected is None
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
    assert view.model.layers[1] is model.model.layers[1] and len(view.model.layers) == 2


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
