"""Greedy rounds derived from one target decode + one teacher-forced draft pass equal the recorder's SD rounds.

Oracle: :func:`specedge.record.recorder.record_acceptance` at T = 0 (it runs speculative decoding round by round;
no code is shared with :mod:`specedge.record.self_t0`), and rounds worked out by hand."""

from __future__ import annotations

import pytest

from tests.record.conftest import TORCH_REASON

pytest.importorskip("torch", reason=TORCH_REASON)

from specedge.errors import InputError
from specedge.record.prompts import Prompt
from specedge.record.recorder import LMDrafter, record_acceptance
from specedge.record.self_t0 import derive_rounds, greedy_rounds


def test_rounds_by_hand():
    # target:  0 1 2 3 4 5 6 7 8 9 ;  draft agrees except at positions 2 and 3 and 8
    t = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    d = [10, 11, 99, 99, 14, 15, 16, 17, 99, 19]
    # p=0: 10,11 match, 2 mismatches -> a=2, commit t0..t2, p=3; p=3: mismatch -> a=0, p=4;
    # p=4: 14,15,16 match (gamma 3) -> a=3, p=8 >= max_new 7? no: 8 >= 7 stops
    assert greedy_rounds(t, d, gamma=3, max_new_tokens=7, eos=None) == [2, 0, 3]
    # the same with an end-of-sequence token at position 3: the round that commits it is the last
    assert greedy_rounds(t, d, gamma=3, max_new_tokens=7, eos=13) == [2, 0]
    # eos inside the accepted drafts of a round (position 5): that round is kept whole and ends the request
    assert greedy_rounds(t, d, gamma=3, max_new_tokens=7, eos=15) == [2, 0, 3]
    # max_new_tokens reached exactly at a round boundary
    assert greedy_rounds(t, d, gamma=3, max_new_tokens=3, eos=None) == [2]


def test_refuses_short_sequences():
    with pytest.raises(InputError):
        greedy_rounds([1, 2, 3], [1, 2, 3], gamma=3, max_new_tokens=2, eos=None)


@pytest.mark.parametrize("eos", [None, 73])  # byte 73 is in two of the greedy outputs
def test_equals_the_recorder(tiny_pair, eos):
    target, draft = tiny_pair
    prompts = [Prompt(f"p{i}", text) for i, text in enumerate(["def f(x):\n  return", "the quick brown", "abc"])]
    target.eos_token_id = eos
    try:
        rec = record_acceptance(target, LMDrafter(draft), prompts, dataset_id="oracle", gamma=5, temperature=0.0,
                                max_new_tokens=24)
        derived = derive_rounds(target, {"d": draft}, [(p.request_id, target.encode(p.text)) for p in prompts],
                                gamma=5, max_new_tokens=24)["d"]
    finally:
        target.eos_token_id = None
    want = rec.frame[["request_id", "round", "drafted", "accepted", "prompt_tokens"]].reset_index(drop=True)
    got = derived[["request_id", "round", "drafted", "accepted", "prompt_tokens"]].reset_index(drop=True)
    assert got.astype(str).values.tolist() == want.astype(str).values.tolist()
    assert 0 < got["accepted"].sum() < 5 * len(got)  # the pair disagrees sometimes: the test is not vacuous
    committed = (got["accepted"] + 1).groupby(got["request_id"]).sum()
    assert (committed < 24).any() == (eos is not None)  # the end-of-sequence token did stop a request


def test_compare_rounds():
    import pandas as pd

    from specedge.record.self_t0 import compare_rounds

    a = pd.DataFrame({"request_id": ["r", "r", "r", "s"], "round": [0, 1, 2, 0], "accepted": [1, 2, 3, 4]})
    b = pd.DataFrame({"request_id": ["r", "r", "s", "s"], "round": [0, 1, 0, 1], "accepted": [1, 5, 4, 0]})
    got = compare_rounds(a, b)
    assert got["requests"] == 2 and got["identical_requests"] == 0
    assert got["rounds_before_first_difference"] == 1 + 1  # r differs at round 1; s agrees on its 1 common round
    assert compare_rounds(a, a)["identical_requests"] == 2
    assert got["tau_a"] == pytest.approx(3.5) and got["tau_b"] == pytest.approx(3.5)
