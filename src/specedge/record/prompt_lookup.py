"""Prompt-lookup (n-gram) drafting: a model-free draft for the recorder (:class:`specedge.record.recorder.Drafter`).

Each round the drafter looks for the last ``n`` committed tokens (prompt plus generated text) earlier in the same
sequence and proposes the tokens that followed that earlier occurrence, up to ``k`` (= γ) of them (Saxena 2023,
"prompt lookup decoding"; vLLM's ``ngram`` speculator and transformers' ``prompt_lookup_num_tokens`` work the
same way). Rules, each a named parameter:

- ``max_ngram`` / ``min_ngram``: n is tried from ``max_ngram`` down to ``min_ngram``; the longest suffix that
  matches wins (a longer match is better evidence that the continuation repeats);
- among occurrences of that n-gram the **most recent** one wins (``prefer="recent"``; ``"first"`` takes the
  earliest, as transformers does);
- the continuation never runs past the end of the committed sequence, so a round proposes
  1 ≤ k' ≤ k tokens when a match exists;
- **no match** (not even the last token alone occurs earlier): the drafter proposes nothing. The recorder then
  runs the target on the committed tokens alone, commits the target's own next token, and writes **no row**
  (a step with nothing drafted is a plain decode step, not a speculative round; the schema needs drafted ≥ 1).
  The drafter counts such steps; :meth:`PromptLookupDrafter.describe` reports them (``no_proposal_steps``,
  ``proposal_rounds``, per request too), so the dataset's metadata says how many target passes had no draft.

The proposal is deterministic, so its distribution q is one-hot on the proposed token: at T = 0 a token is
accepted iff it is the target's argmax; at T > 0 it is accepted with probability p(token) (speculative sampling
with a point-mass draft), which keeps the output distributed as the target's.
"""

from __future__ import annotations

import numpy as np
import torch

from specedge.errors import InputError

PLD_NAME = "prompt-lookup"


def lookup(
    committed: list[int] | np.ndarray, k: int, *, max_ngram: int = 3, min_ngram: int = 1, prefer: str = "recent"
) -> tuple[list[int], int]:
    """The proposal for one round: (tokens, n of the matched suffix); ([], 0) when nothing matches.

    Tries suffix lengths n = max_ngram .. min_ngram; for the first n whose suffix occurs earlier in
    ``committed`` (an occurrence that ends before the last token), returns up to ``k`` tokens following the
    chosen occurrence (most recent, or first with ``prefer="first"``).
    """
    if k < 1:
        raise InputError(f"prompt lookup: k must be >= 1, got {k}")
    if not 1 <= min_ngram <= max_ngram:
        raise InputError(f"prompt lookup: need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
    if prefer not in ("recent", "first"):
        raise InputError(f"prompt lookup: prefer must be 'recent' or 'first', got {prefer!r}")
    seq = np.asarray(committed, dtype=np.int64)
    length = seq.size
    for n in range(min(max_ngram, length - 1), min_ngram - 1, -1):
        suffix = seq[length - n :]
        # candidate starts s with s + n <= length - 1: the occurrence ends before the last token, so at least
        # one token follows it
        windows = np.lib.stride_tricks.sliding_window_view(seq[: length - 1], n)
        hits = np.flatnonzero((windows == suffix).all(axis=1))
        if hits.size:
            start = int(hits[-1] if prefer == "recent" else hits[0])
            cont = seq[start + n : start + n + k]
            return cont.tolist(), n
    return [], 0


class PromptLookupDrafter:
    """The recorder's drafter for prompt lookup; q is one-hot over ``vocab_size`` (the target's logits width)."""

    def __init__(self, vocab_size: int, *, max_ngram: int = 3, min_ngram: int = 1, prefer: str = "recent") -> None:
        lookup([0, 0], 1, max_ngram=max_ngram, min_ngram=min_ngram, prefer=prefer)  # validates the parameters
        self.vocab_size = int(vocab_size)
        self.max_ngram, self.min_ngram, self.prefer = max_ngram, min_ngram, prefer
        self.name = f"{PLD_NAME}(n={max_ngram}..{min_ngram})"
        self.proposal_rounds = 0
        self.no_proposal_steps = 0
        self.matched_n: dict[int, int] = {}
        self.per_request: list[dict[str, int]] = []

    def reset(self) -> None:
        """Called by the recorder at the start of each request."""
        self.per_request.append({"proposal_rounds": 0, "no_proposal_steps": 0})

    def propose(self, committed, k, temperature, generator):
        tokens, n = lookup(committed, k, max_ngram=self.max_ngram, min_ngram=self.min_ngram, prefer=self.prefer)
        if not self.per_request:
            self.reset()
        if tokens:
            self.proposal_rounds += 1
            self.per_request[-1]["proposal_rounds"] += 1
            self.matched_n[n] = self.matched_n.get(n, 0) + 1
        else:
            self.no_proposal_steps += 1
            self.per_request[-1]["no_proposal_steps"] += 1
        ids = torch.tensor(tokens, dtype=torch.long)
        q = torch.zeros((len(tokens), self.vocab_size), dtype=torch.float32)
        if tokens:
            q[torch.arange(len(tokens)), ids] = 1.0
        return ids, q

    def describe(self) -> dict:
        steps = self.proposal_rounds + self.no_proposal_steps
        return {
            "kind": "model-free draft (prompt lookup / n-gram)",
            "name": self.name,
            "parameters": 0,
            "weights_sha256": None,
            "max_ngram": self.max_ngram,
            "min_ngram": self.min_ngram,
            "prefer": self.prefer,
            "no_match_policy": "propose nothing; the target decodes one token; the step is not written as a round "
            "(counted in no_proposal_steps)",
            "proposal_rounds": self.proposal_rounds,
            "no_proposal_steps": self.no_proposal_steps,
            "proposal_share_of_target_passes": (self.proposal_rounds / steps) if steps else None,
            "matched_ngram_histogram": {str(n): c for n, c in sorted(self.matched_n.items())},
        }
