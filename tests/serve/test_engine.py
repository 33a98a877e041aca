"""The ragged serving engine computes exactly what the byte-GPT computes on each sequence alone."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import torch

from specedge.errors import InputError
from specedge.record.bytegpt import ByteGPT, ByteGPTConfig
from specedge.serve.engine import EngineLM, RaggedByteGPT


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return ByteGPT(ByteGPTConfig(d_model=48, n_layer=2, n_head=4)).double().eval()


def _alone(model, ids):
    with torch.inference_mode():
        return model(torch.as_tensor(ids)[None])[0]


def test_ragged_batch_matches_each_sequence_alone(model):
    eng = RaggedByteGPT(model)
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, 256, (n,), generator=g) for n in (5, 9, 3)]
    x = max(len(s) for s in seqs)
    toks = torch.zeros(3, x, dtype=torch.long)
    for i, s in enumerate(seqs):
        toks[i, x - len(s):] = s  # first pass: left padding
    cache = eng.new_cache(3, 4)  # too small on purpose: the cache grows
    out = eng.forward(toks, torch.tensor([5, 9, 3]), cache)
    for i, s in enumerate(seqs):
        torch.testing.assert_close(out[i, x - len(s):], _alone(model, s))
    assert cache.extent() == 9 and cache.length.tolist() == [5, 9, 3]

    # ragged continuation (right padding), then crops of different sizes, then a member leaves
    more = [torch.randint(0, 256, (n,), generator=g) for n in (2, 1, 3)]
    toks = torch.zeros(3, 3, dtype=torch.long)
    for i, s in enumerate(more):
        toks[i, : len(s)] = s
    out = eng.forward(toks, torch.tensor([2, 1, 3]), cache)
    for i in range(3):
        full = torch.cat([seqs[i], more[i]])
        torch.testing.assert_close(out[i, : len(more[i])], _alone(model, full)[len(seqs[i]):])
    drop = [1, 0, 2]
    cache.crop(cache.length - torch.tensor(drop))
    new = torch.randint(0, 256, (3, 1), generator=g)
    out = eng.forward(new, torch.ones(3, dtype=torch.long), cache)
    kept = [torch.cat([seqs[i], more[i][: len(more[i]) - drop[i]], new[i]]) for i in range(3)]
    for i in range(3):
        torch.testing.assert_close(out[i, 0], _alone(model, kept[i])[-1])
    cache.select([0, 2])
    out = eng.forward(torch.tensor([[7], [8]]), torch.ones(2, dtype=torch.long), cache)
    for row, i in enumerate([0, 2]):
        torch.testing.assert_close(out[row, 0], _alone(model, torch.cat([kept[i], torch.tensor([7 + row])]))[-1])


def test_bad_counts_and_crops_are_refused(model):
    eng = RaggedByteGPT(model)
    cache = eng.new_cache(2, 8)
    with pytest.raises(InputError, match="counts"):
        eng.forward(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 3]), cache)
    eng.forward(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 2]), cache)
    with pytest.raises(ValueError, match="cannot crop"):
        cache.crop([4, 1])


def test_engine_lm_follows_the_causal_lm_protocol(model):
    from specedge.record.lm import ByteGPTLM

    lm = EngineLM(ByteGPTLM(model, "m"), capacity=16)
    cache = lm.new_cache()
    ids = torch.randint(0, 256, (2, 6))
    logits = lm.forward(ids, cache)
    assert logits.shape == (2, 6, 256) and lm.cache_length(cache) == 6
    lm.crop(cache, 4)
    assert lm.cache_length(cache) == 4
    nxt = lm.forward(ids[:, 4:5], cache)
    torch.testing.assert_close(nxt[:, 0], logits[:, 4])
    assert "engine" in lm.describe()


def test_ragged_llama_matches_the_transformers_model_on_each_sequence():
    from transformers import LlamaConfig, LlamaForCausalLM

    from specedge.record.lm import HFCausalLM
    from specedge.serve.engine import RaggedLlama, ragged_engine

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    hf = LlamaForCausalLM(cfg).double().eval()
    eng = ragged_engine(HFCausalLM(hf, tokenizer=None, name="tiny-llama"))
    assert isinstance(eng, RaggedLlama)
    g = torch.Generator().manual_seed(2)
    seqs = [torch.randint(0, 64, (n,), generator=g) for n in (4, 7)]
    toks = torch.zeros(2, 7, dtype=torch.long)
    toks[0, 3:] = seqs[0]
    toks[1] = seqs[1]
    cache = eng.new_cache(2, 16)
    out = eng.forward(toks, torch.tensor([4, 7]), cache)
    with torch.inference_mode():
        for i, s in enumerate(seqs):
            torch.testing.assert_close(out[i, 7 - len(s):], hf(input_ids=s[None]).logits[0])
        more = torch.tensor([[5, 6], [9, 0]])
        out = eng.forward(more, torch.tensor([2, 1]), cache)
        torch.testing.assert_close(out[0], hf(input_ids=torch.cat([seqs[0], more[0]])[None]).logits[0, -2:])
        torch.testing.assert_close(out[1, 0], hf(input_ids=torch.cat([seqs[1], more[1, :1]])[None]).logits[0, -1])
