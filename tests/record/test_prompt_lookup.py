"""Prompt-lookup drafting: hand-made token sequences, the drafter's q and counters, and the recorder with it."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')")

import torch

from specedge.errors import InputError
from specedge.record.prompt_lookup import PromptLookupDrafter, lookup
from specedge.record.prompts import Prompt
from specedge.record.recorder import greedy_decode, record_acceptance


def test_match_proposes_the_continuation():
    #        0  1  2  3  4  5  6  7
    seq = [5, 6, 7, 8, 9, 1, 5, 6]
    tokens, n = lookup(seq, 4, max_ngram=3)
    assert n == 2  # "5 6" occurs at 0; the 3-gram "1 5 6" does not occur earlier
    assert tokens == [7, 8, 9, 1]


def test_no_match_proposes_nothing():
    assert lookup([1, 2, 3, 4], 5) == ([], 0)
    assert lookup([7], 5) == ([], 0)  # a single token has nothing before it
    # the suffix itself is not a match: [3] occurs only as the last token
    assert lookup([1, 2, 3], 3, min_ngram=1) == ([], 0)


def test_longest_suffix_wins_over_a_more_recent_shorter_match():
    # the 3-gram "1 2 3" occurs at 0 (followed by 40); the 1-gram "3" also occurs at 5 (followed by 50), more
    # recently; the longest suffix must win
    seq = [1, 2, 3, 40, 41, 3, 50, 9, 1, 2, 3]
    tokens, n = lookup(seq, 2, max_ngram=3)
    assert (tokens, n) == ([40, 41], 3)
    # limited to unigrams, the most recent "3" (at 5) is used
    assert lookup(seq, 2, max_ngram=1) == ([50, 9], 1)


def test_most_recent_or_first_occurrence():
    seq = [4, 10, 4, 11, 4, 12, 4]
    assert lookup(seq, 1, max_ngram=1, prefer="recent") == ([12], 1)
    assert lookup(seq, 1, max_ngram=1, prefer="first") == ([10], 1)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 12])
def test_never_proposes_more_than_k_nor_past_the_sequence_end(k):
    seq = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2]
    tokens, n = lookup(seq, k)
    assert n == 2
    assert tokens == [3, 4, 5, 6, 7, 8, 9, 1, 2][:k]
    assert 1 <= len(tokens) <= k
    # continuation limited by the end of the sequence: "9" at 8 is followed by "1 2" only ... then ends
    short, _ = lookup([9, 1, 2, 9], 12, max_ngram=1)
    assert short == [1, 2, 9]


def test_min_ngram_excludes_short_matches():
    seq = [1, 2, 3, 9, 5, 3]
    assert lookup(seq, 2, min_ngram=1) == ([9, 5], 1)
    assert lookup(seq, 2, min_ngram=2) == ([], 0)


def test_parameters_are_validated():
    with pytest.raises(InputError, match="k must be"):
        lookup([1, 2], 0)
    with pytest.raises(InputError, match="min_ngram"):
        lookup([1, 2], 1, min_ngram=3, max_ngram=2)
    with pytest.raises(InputError, match="prefer"):
        PromptLookupDrafter(10, prefer="best")


def test_drafter_q_is_one_hot_and_counts_steps():
    d = PromptLookupDrafter(16, max_ngram=2)
    d.reset()
    gen = torch.Generator().manual_seed(0)
    tokens, q = d.propose([1, 2, 3, 1, 2], 3, 0.0, gen)
    assert tokens.tolist() == [3, 1, 2]
    assert q.shape == (3, 16)
    assert torch.equal(q.argmax(-1), tokens) and torch.equal(q.sum(-1), torch.ones(3))
    tokens, q = d.propose([1, 2, 3, 4], 3, 0.0, gen)
    assert tokens.numel() == 0 and q.shape == (0, 16)
    desc = d.describe()
    assert (desc["proposal_rounds"], desc["no_proposal_steps"]) == (1, 1)
    assert desc["matched_ngram_histogram"] == {"2": 1}
    assert d.per_request == [{"proposal_rounds": 1, "no_proposal_steps": 1}]


def test_recorder_with_prompt_lookup_keeps_the_targets_greedy_output(tiny_pair):
    """Speculative decoding with prompt-lookup drafts (rounds with and without a proposal) commits exactly the
    target's own greedy continuation; only rounds with a proposal become rows."""
    target, _ = tiny_pair
    prompts = [Prompt("a", "abcabcabcab"), Prompt("b", "the cat, the dog, the ")]
    drafter = PromptLookupDrafter(target.vocab_size, max_ngram=3)
    rec = record_acceptance(target, drafter, prompts, dataset_id="pld-test", gamma=6, temperature=0.0,
                            max_new_tokens=24, seed=1)
    for p in prompts:
        assert rec.outputs[p.request_id] == greedy_decode(target, target.encode(p.text), 24)
    frame = rec.frame
    assert len(frame) == drafter.proposal_rounds > 0
    assert (frame["drafted"] >= 1).all() and (frame["drafted"] <= 6).all()
    assert (frame["accepted"] <= frame["drafted"]).all()
    # every committed token came from a round or a no-proposal step: 1 + accepted per round, 1 per plain step
    generated = sum(len(v) for v in rec.outputs.values())
    committed = int((frame["accepted"] + 1).sum()) + drafter.no_proposal_steps
    assert committed >= generated  # the last round of a request may overshoot max_new_tokens
    assert committed - generated < 2 * 7


def test_recorder_with_prompt_lookup_at_temperature_one(tiny_pair):
    target, _ = tiny_pair
    drafter = PromptLookupDrafter(target.vocab_size)
    rec = record_acceptance(target, drafter, [Prompt("a", "xyxyxyxyxyxy")], dataset_id="pld-t1", gamma=4,
                            temperature=1.0, max_new_tokens=16, seed=3)
    assert len(rec.outputs["a"]) == 16
    assert (rec.frame["accepted"] <= rec.frame["drafted"]).all()
    assert rec.metadata["draft"]["proposal_rounds"] == len(rec.frame)
