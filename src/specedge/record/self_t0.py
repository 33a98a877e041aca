"""Greedy (T = 0) acceptance of self-speculative drafts from one target decode and one draft pass per prompt.

At T = 0 speculative decoding commits exactly the target's greedy continuation t_0, t_1, … (lossless), and a
round starting at generated position p drafts from a context that equals the committed prefix for as long as its
drafts are accepted. So a round's accepted count is the number of leading i < γ with

    d_{p+i} = t_{p+i},   d_j = argmax draft(prompt + t_{<j}),

and the next round starts at p + a + 1 (:func:`greedy_rounds`). Both sequences come from plain forward passes:
the target's greedy continuation (one decode pass per token, continued past an end-of-sequence token, which the
recorder's verification also scores) and ONE teacher-forced pass of each draft over prompt + continuation
(:func:`derive_rounds`). The stop rule is the recorder's (:func:`specedge.record.recorder.speculative_generate`):
rounds run while fewer than ``max_new_tokens`` tokens are committed, and stop after the round that commits the
end-of-sequence token; that round's counts are kept whole.

Cost per prompt: the target's decode once for all drafts, plus one parallel pass per draft, instead of γ draft
passes and one verification pass per round per draft. The rounds equal the recorder's up to float rounding
(a batched pass and an incremental one may break a near-tie of the argmax differently) [A];
``docs/acceptance.md`` compares the two on the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from specedge.errors import InputError

DERIVER_VERSION = "specedge.record.self_t0/1"


def greedy_rounds(target_tokens: Sequence[int], draft_tokens: Sequence[int], *, gamma: int, max_new_tokens: int,
                  eos: int | None) -> list[int]:
    """Accepted count of each round of greedy SD (γ drafts per round) given the target's greedy continuation
    and the draft's teacher-forced argmax at every position; both at least ``max_new_tokens + gamma`` long."""
    if gamma < 1 or max_new_tokens < 1:
        raise InputError(f"gamma and max_new_tokens must be >= 1, got {gamma}, {max_new_tokens}")
    need = max_new_tokens + gamma
    if len(target_tokens) < need or len(draft_tokens) < need:
        raise InputError(f"greedy rounds need {need} positions, got {len(target_tokens)} and {len(draft_tokens)}")
    out, p = [], 0
    while p < max_new_tokens:
        a = 0
        while a < gamma and draft_tokens[p + a] == target_tokens[p + a]:
            a += 1
        out.append(a)
        if eos is not None and eos in target_tokens[p : p + a + 1]:
            break
        p += a + 1
    return out


@torch.inference_mode()
def target_continuation(lm, prompt_ids: list[int], n: int) -> list[int]:
    """The target's greedy continuation of ``prompt_ids``, ``n`` tokens, continued past end-of-sequence."""
    cache = lm.new_cache()
    logits = lm.forward(torch.tensor([prompt_ids], dtype=torch.long), cache)[0, -1]
    out: list[int] = []
    for i in range(n):
        out.append(int(logits.argmax()))
        if i < n - 1:
            logits = lm.forward(torch.tensor([[out[-1]]], dtype=torch.long), cache)[0, -1]
    return out


@torch.inference_mode()
def teacher_forced_argmax(lm, prompt_ids: list[int], continuation: list[int]) -> list[int]:
    """argmax lm(prompt + continuation_{<j}) for j = 0..len(continuation) − 1, in one forward pass."""
    ids = list(prompt_ids) + list(continuation[:-1])
    logits = lm.forward(torch.tensor([ids], dtype=torch.long), lm.new_cache())[0, len(prompt_ids) - 1 :]
    return [int(t) for t in logits.argmax(-1)]


def derive_rounds(target, drafts: dict, prompts: Sequence[tuple[str, list[int]]], *, gamma: int,
                  max_new_tokens: int, progress=None) -> dict[str, pd.DataFrame]:
    """Per draft name, the greedy rounds of every prompt (request_id, token ids) as acceptance-trace columns."""
    n = max_new_tokens + gamma
    cols = {name: {k: [] for k in ("request_id", "round", "accepted", "prompt_tokens")} for name in drafts}
    for i, (rid, ids) in enumerate(prompts):
        t = target_continuation(target, ids, n)
        for name, lm in drafts.items():
            acc = greedy_rounds(t, teacher_forced_argmax(lm, ids, t), gamma=gamma, max_new_tokens=max_new_tokens,
                                eos=target.eos_token_id)
            c = cols[name]
            c["request_id"] += [rid] * len(acc)
            c["round"] += list(range(len(acc)))
            c["accepted"] += acc
            c["prompt_tokens"] += [len(ids)] * len(acc)
        if progress is not None:
            progress(i + 1, len(prompts), {})
    out = {}
    for name, c in cols.items():
        rows = len(c["round"])
        out[name] = pd.DataFrame({
            "request_id": pd.Series(c["request_id"], dtype="string"),
            "turn": np.zeros(rows, dtype=np.int16),
            "round": np.asarray(c["round"], dtype=np.int32),
            "drafted": np.full(rows, gamma, dtype=np.int16),
            "accepted": np.asarray(c["accepted"], dtype=np.int16),
            "prompt_tokens": np.asarray(c["prompt_tokens"], dtype=np.int32),
            "temperature": np.zeros(rows, dtype=np.float32),
        })
    return out


def compare_rounds(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """How far two acceptance traces of the same prompts agree round by round: per request, the rounds before the
    first difference in ``accepted``; requests whose rounds are all equal; both τ (1 + mean accepted)."""
    ids = sorted(set(a["request_id"].astype(str)) & set(b["request_id"].astype(str)))
    same_requests, prefix = 0, 0
    for rid in ids:
        x = a.loc[a["request_id"].astype(str) == rid].sort_values("round")["accepted"].to_numpy()
        y = b.loc[b["request_id"].astype(str) == rid].sort_values("round")["accepted"].to_numpy()
        n = min(x.size, y.size)
        diff = np.flatnonzero(x[:n] != y[:n])
        prefix += int(diff[0]) if diff.size else n
        same_requests += int(x.size == y.size and not diff.size)
    return {"requests": len(ids), "identical_requests": same_requests, "rounds_a": int(len(a)),
            "rounds_b": int(len(b)), "rounds_before_first_difference": prefix,
            "tau_a": float(1 + a["accepted"].mean()), "tau_b": float(1 + b["accepted"].mean())}
