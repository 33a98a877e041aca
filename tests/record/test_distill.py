"""The distillation recipe on a tiny random teacher built from a config (no download, no SmolLM2 needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import json

import torch

from specedge.errors import InputError
from specedge.record.bytegpt import ByteGPTConfig
from specedge.record.distill import (
    DistillConfig,
    binned_loss,
    distill,
    distillation_instructions,
    generate_corpus,
    load_draft,
    svd_embedding,
)
from specedge.record.prompts import Prompt
from specedge.record.recorder import LMDrafter, greedy_decode, record_acceptance
from .conftest import tiny_bytegpt

VOCAB, EOS = 256, 2  # the byte vocabulary, so a distilled draft can serve a tiny byte-GPT target


@pytest.fixture(scope="module")
def teacher():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=1,
        eos_token_id=EOS, pad_token_id=EOS,
    )
    return LlamaForCausalLM(cfg).eval()


def _prompts(n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [[1] + torch.randint(3, VOCAB, (int(3 + i % 5),), generator=g).tolist() for i in range(n)]


def test_recipe_runs_two_steps_and_the_checkpoint_drafts(teacher, tmp_path):
    cfg = DistillConfig(prompts=6, max_new_tokens=8, gen_batch=4, steps=2, batch_size=3, top_k=8, warmup_steps=1,
                        eval_every=1)
    arch = ByteGPTConfig(d_model=16, n_layer=1, n_head=2, vocab_size=VOCAB)
    result = distill(teacher, _prompts(6), tmp_path / "draft", cfg, arch, eos_token_id=EOS, pad_token_id=EOS)
    corpus = result["corpus"]
    assert corpus["sequences"] == 6 and 6 <= corpus["generated_tokens"] <= 48
    assert corpus["sampled_sequences"] == 2  # the second of two generation batches samples (sample_every = 2)
    assert result["train_sequences"] + result["held_out_sequences"] == 6
    assert len(result["history"]) == 1 and result["history"][0]["step"] == 1
    held = result["held_out"]
    assert 0.0 <= held["top1_agreement"] <= 1.0 and 0.0 <= held["expected_acceptance"] <= 1.0
    saved = json.loads((tmp_path / "draft" / "config.json").read_text())
    assert saved["architecture"] == "bytegpt" and saved["config"]["vocab_size"] == VOCAB
    assert saved["training"]["distill_config"]["steps"] == 2
    state = torch.load(tmp_path / "draft" / "model.pt", weights_only=True)
    assert {v.dtype for v in state.values()} == {torch.float16}  # stored in checkpoint_dtype
    draft = load_draft(tmp_path / "draft")
    assert next(draft.model.parameters()).dtype == torch.float32
    assert draft.describe()["parameters"] == result["parameters"]
    # the loaded draft drives the recorder as an LM draft for a target of the same (byte) vocabulary
    target = tiny_bytegpt(0, 32, 2, 2, "tiny-target")
    rec = record_acceptance(target, LMDrafter(draft), [Prompt("p", "hello world")], dataset_id="d", gamma=3,
                            temperature=0.0, max_new_tokens=8)
    assert rec.outputs["p"] == greedy_decode(target, target.encode("hello world"), 8)
    assert (rec.frame["drafted"] == 3).all()
    assert rec.metadata["draft"]["architecture"].startswith("specedge GPT")
    with pytest.raises(InputError, match="no tokenizer"):
        draft.encode("x")


def test_same_seed_same_corpus_and_eos_cut(teacher):
    cfg = DistillConfig(max_new_tokens=6, gen_batch=3, top_k=4, sample_every=1, seed=5)
    a = generate_corpus(teacher, _prompts(3), cfg, eos_token_id=EOS, pad_token_id=EOS)
    b = generate_corpus(teacher, _prompts(3), cfg, eos_token_id=EOS, pad_token_id=EOS)
    for x, y in zip(a.sequences, b.sequences):
        assert x.tolist() == y.tolist()
    for seq, p, ids, logp in zip(a.sequences, a.prompt_lens, a.topk_ids, a.topk_logp):
        gen = seq[p:].tolist()
        assert ids.shape == logp.shape == (len(gen), 4)
        assert EOS not in gen[:-1]  # cut right after the first EOS
        assert (logp <= 0).all() and (torch.from_numpy(logp).exp().sum(-1) <= 1.0 + 1e-5).all()
        assert (logp[:, :-1] >= logp[:, 1:]).all()  # top-k in descending order


def test_greedy_corpus_follows_the_teachers_argmax(teacher):
    cfg = DistillConfig(max_new_tokens=5, gen_batch=2, top_k=3, sample_every=0)
    corpus = generate_corpus(teacher, _prompts(2), cfg, eos_token_id=EOS, pad_token_id=EOS)
    for seq, p, ids in zip(corpus.sequences, corpus.prompt_lens, corpus.topk_ids):
        assert seq[p:].tolist() == ids[:, 0].tolist()  # greedy token = the kept top-1


def test_binned_loss_with_the_whole_vocabulary_is_the_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(5, 10)
    teacher = torch.randn(5, 10).log_softmax(-1)
    logp, ids = teacher.sort(dim=-1, descending=True)
    loss, metrics = binned_loss(logits, ids, logp)
    expected = -(teacher.exp() * logits.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(loss, expected, atol=1e-5)
    accept = torch.minimum(teacher.exp(), logits.softmax(-1)).sum(-1)
    assert torch.allclose(metrics["expected_acceptance"], accept, atol=1e-5)
    assert torch.equal(metrics["top1_agreement"], (logits.argmax(-1) == teacher.argmax(-1)).float())


def test_svd_embedding_keeps_the_top_directions():
    torch.manual_seed(0)
    e = torch.randn(50, 3) @ torch.randn(3, 12)  # rank 3
    proj = svd_embedding(e, 3)
    assert proj.shape == (50, 3)
    assert torch.allclose(proj @ proj.T, e @ e.T, atol=1e-3)  # rank-3 projection keeps all inner products
    with pytest.raises(InputError, match="exceeds"):
        svd_embedding(e, 13)


def test_distillation_instructions_are_seeded_distinct_and_exclude_the_evaluation_set():
    a = distillation_instructions(60, seed=3)
    assert a == distillation_instructions(60, seed=3) and a != distillation_instructions(60, seed=4)
    assert len(set(a)) == 60
    b = distillation_instructions(60, seed=3, exclude=a[:5])
    assert not set(a[:5]) & set(b)


def test_config_is_validated():
    with pytest.raises(InputError, match="embedding_init"):
        DistillConfig(embedding_init="zeros")
    with pytest.raises(InputError, match="steps"):
        DistillConfig(steps=0)


def test_corpus_cache_round_trip(teacher, tmp_path):
    cfg = DistillConfig(max_new_tokens=5, gen_batch=2, top_k=4, steps=1, batch_size=2, warmup_steps=1)
    arch = ByteGPTConfig(d_model=16, n_layer=1, n_head=2, vocab_size=VOCAB)
    cache = tmp_path / "corpus.npz"
    first = distill(teacher, _prompts(4), tmp_path / "a", cfg, arch, eos_token_id=EOS, pad_token_id=EOS,
                    corpus_cache=cache)
    assert cache.is_file()
    second = distill(teacher, _prompts(4), tmp_path / "b", cfg, arch, eos_token_id=EOS, pad_token_id=EOS,
                     corpus_cache=cache)
    # read, not regenerated: the recorded generation wall time and the file's sha256 are the first run's
    assert first["corpus"] == second["corpus"]
    assert first["held_out"] == second["held_out"]  # same seed, same corpus: the same training
    with pytest.raises(InputError, match="sequences for"):
        distill(teacher, _prompts(5), tmp_path / "c", cfg, arch, eos_token_id=EOS, pad_token_id=EOS, corpus_cache=cache)
