"""Record acceptance rounds by running real speculative decoding on a draft and a target (batch size 1).

One round: the drafter proposes k tokens (an LM draft: k autoregressive steps on its own KV cache); the target
runs one forward pass over the tokens it has not cached yet plus the k drafts (round 0: the whole prompt, so
the prompt's prefill is part of round 0's wall time); :func:`specedge.record.sampler.verify` accepts a prefix
and draws the corrected/bonus token; both caches are later cropped to the committed prefix (rejected drafts are
dropped). One row per round: (request_id, turn = 0, round, drafted = k, accepted, prompt_tokens, temperature,
wall_ms). Generation stops once ``max_new_tokens`` tokens are committed (the last round's surplus is dropped
from the text, not from the round's counts) or the target's end-of-sequence token is committed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from specedge.errors import InputError
from specedge.record.lm import CausalLM
from specedge.record.prompts import Prompt
from specedge.record.sampler import probabilities, sample, verify

RECORDER_VERSION = "specedge.record.recorder/1"

SAMPLER_DESCRIPTION = {
    True: "greedy (T=0): draft proposes its argmax; accept iff it is the target's argmax; next token = target argmax",
    False: "standard speculative sampling (Leviathan et al. 2023): accept if u < min(1, p/q); "
    "on rejection resample from norm(max(0, p - q)); bonus token from p when all pass",
}


class Drafter(Protocol):
    """Proposes draft tokens given the committed sequence; q are the distributions they were drawn from
    (one-hot rows for a deterministic drafter such as prompt lookup)."""

    name: str

    def reset(self) -> None: ...

    def propose(
        self, committed: list[int], k: int, temperature: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns tokens (k',) int64 and q (k', V), 0 ≤ k' ≤ k."""

    def describe(self) -> dict: ...


class _CacheState:
    """A model's KV cache plus the token ids it holds, so it can be synced to the committed sequence."""

    def __init__(self, lm: CausalLM) -> None:
        self.lm = lm
        self.cache = lm.new_cache()
        self.tokens: list[int] = []

    def sync(self, committed: list[int]) -> list[int]:
        """Crop to the longest common prefix (at most len(committed) - 1); return the committed ids to feed."""
        limit = min(len(self.tokens), len(committed) - 1)
        a = np.asarray(self.tokens[:limit])
        b = np.asarray(committed[:limit])
        mismatch = np.flatnonzero(a != b)
        n = int(mismatch[0]) if mismatch.size else limit
        if n < len(self.tokens):
            self.lm.crop(self.cache, n)
            del self.tokens[n:]
        return committed[n:]

    def forward(self, ids: list[int]) -> torch.Tensor:
        logits = self.lm.forward(torch.tensor([ids], dtype=torch.long), self.cache)
        self.tokens.extend(ids)
        return logits[0]


class LMDrafter:
    """A draft language model: k autoregressive steps on its own KV cache."""

    def __init__(self, lm: CausalLM) -> None:
        self.lm = lm
        self.name = lm.name
        self._state: _CacheState | None = None

    def reset(self) -> None:
        self._state = _CacheState(self.lm)

    def propose(self, committed, k, temperature, generator):
        if self._state is None:
            self.reset()
        state = self._state
        logits = state.forward(state.sync(committed))[-1]
        tokens, qs = [], []
        for i in range(k):
            q = probabilities(logits, temperature)
            token = sample(q, generator)
            tokens.append(token)
            qs.append(q)
            if i < k - 1:
                logits = state.forward([int(token)])[-1]
        return torch.stack(tokens), torch.stack(qs)

    def describe(self) -> dict:
        return {"kind": "draft model", **self.lm.describe()}


@dataclass(frozen=True)
class Recording:
    """What one recording produced: the rounds (acceptance schema), provenance metadata, generated texts."""

    frame: pd.DataFrame
    metadata: dict
    outputs: dict[str, list[int]] = field(default_factory=dict)


def request_generator(seed: int, request_id: str) -> torch.Generator:
    """A torch generator seeded from (seed, request_id): one request's random numbers do not depend on order."""
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Library versions and hardware, for provenance metadata."""
    import specedge

    try:
        import transformers

        tf_version = transformers.__version__
    except ImportError:  # pragma: no cover - transformers is part of the record extra
        tf_version = None
    import os

    return {
        "versions": {
            "specedge": specedge.__version__,
            "torch": torch.__version__,
            "transformers": tf_version,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "hardware": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
    }


def speculative_generate(
    target: CausalLM,
    drafter: Drafter,
    prompt_ids: list[int],
    *,
    gamma: int,
    temperature: float,
    max_new_tokens: int,
    generator: torch.Generator,
    on_round: Callable[[int, int, float], None] | None = None,
) -> list[int]:
    """Speculatively decode one request; calls ``on_round(drafted, accepted, wall_ms)`` per round; returns the
    generated ids (at most max_new_tokens, ending at the target's EOS if it came)."""
    if not prompt_ids:
        raise InputError("speculative decoding needs a non-empty prompt")
    drafter.reset()
    tstate = _CacheState(target)
    committed = list(prompt_ids)
    n_prompt = len(prompt_ids)
    eos = target.eos_token_id
    while len(committed) - n_prompt < max_new_tokens:
        start = time.perf_counter()
        drafts, q = drafter.propose(committed, gamma, temperature, generator)
        k = int(drafts.shape[0])
        logits = tstate.forward(tstate.sync(committed) + drafts.tolist())[-(k + 1) :]
        if k and q.shape[-1] != logits.shape[-1]:
            raise InputError(
                f"draft {drafter.name!r} has {q.shape[-1]} logits, target {target.name!r} {logits.shape[-1]}: "
                "speculative sampling needs the same vocabulary"
            )
        p = probabilities(logits, temperature)
        out = verify(drafts.view(1, k), q.reshape(1, k, p.shape[-1]).to(p.dtype), p.view(1, k + 1, -1), generator)
        accepted = int(out.accepted[0])
        new = drafts[:accepted].tolist() + [int(out.next_token[0])]
        committed.extend(new)
        wall_ms = (time.perf_counter() - start) * 1e3
        if on_round is not None and k > 0:
            on_round(k, accepted, wall_ms)
        if eos is not None and eos in new:
            cut = len(committed) - len(new) + new.index(eos) + 1
            del committed[cut:]
            break
    return committed[n_prompt : n_prompt + max_new_tokens]


@torch.inference_mode()
def greedy_decode(lm: CausalLM, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """The model's own greedy decoding, one token per pass on a KV cache (the T = 0 reference)."""
    state = _CacheState(lm)
    seq = list(prompt_ids)
    for _ in range(max_new_tokens):
        logits = state.forward(state.sync(seq))[-1]
        seq.append(int(logits.argmax()))
        if lm.eos_token_id is not None and seq[-1] == lm.eos_token_id:
            break
    return seq[len(prompt_ids) :]


def record_acceptance(
    target: CausalLM,
    drafter: Drafter,
    prompts: Sequence[Prompt],
    *,
    dataset_id: str,
    gamma: int = 12,
    temperature: float = 0.0,
    max_new_tokens: int = 160,
    seed: int = 0,
    licence: str = "",
    note: str = "",
    prompt_source: str = "",
    progress: Callable[[int, int, dict], None] | None = None,
) -> Recording:
    """Run speculative decoding over ``prompts`` and return the rounds with provenance metadata.

    gamma: draft length per round (record long, γ ≥ 10, so that shorter lengths replay exactly);
    temperature: 0 (greedy) or > 0 (speculative sampling at that temperature); seed: per-request generators
    are seeded from (seed, request_id).
    """
    if gamma < 1:
        raise InputError(f"gamma must be >= 1, got {gamma}")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0, got {temperature}")
    if not prompts:
        raise InputError("no prompts to record")
    columns: dict[str, list] = {k: [] for k in ("request_id", "round", "drafted", "accepted", "prompt_tokens", "wall_ms")}
    outputs: dict[str, list[int]] = {}
    started = time.perf_counter()
    for i, prompt in enumerate(prompts):
        ids = target.encode(prompt.text)
        if not ids:
            raise InputError(f"prompt {prompt.request_id!r} encodes to no tokens")
        rounds = 0

        def on_round(drafted: int, accepted: int, wall_ms: float, _rid=prompt.request_id, _n=len(ids)) -> None:
            nonlocal rounds
            columns["request_id"].append(_rid)
            columns["round"].append(rounds)
            columns["drafted"].append(drafted)
            columns["accepted"].append(accepted)
            columns["prompt_tokens"].append(_n)
            columns["wall_ms"].append(wall_ms)
            rounds += 1

        outputs[prompt.request_id] = speculative_generate(
            target, drafter, ids, gamma=gamma, temperature=temperature, max_new_tokens=max_new_tokens,
            generator=request_generator(seed, prompt.request_id), on_round=on_round,
        )
        if progress is not None:
            acc = np.asarray(columns["accepted"], dtype=float)
            progress(i + 1, len(prompts), {"rounds": len(acc), "tau": 1.0 + acc.mean() if acc.size else float("nan")})
    frame = pd.DataFrame(
        {
            "dataset": pd.Series([dataset_id] * len(columns["round"]), dtype="string"),
            "request_id": pd.Series(columns["request_id"], dtype="string"),
            "turn": np.zeros(len(columns["round"]), dtype=np.int16),
            "round": np.asarray(columns["round"], dtype=np.int32),
            "drafted": np.asarray(columns["drafted"], dtype=np.int16),
            "accepted": np.asarray(columns["accepted"], dtype=np.int16),
            "prompt_tokens": np.asarray(columns["prompt_tokens"], dtype=np.int32),
            "temperature": np.full(len(columns["round"]), temperature, dtype=np.float32),
            "wall_ms": np.asarray(columns["wall_ms"], dtype=np.float32),
        }
    )
    tdesc, ddesc = target.describe(), drafter.describe()
    env = environment()
    acc = frame["accepted"].to_numpy(dtype=float)
    metadata = {
        "source": "recorded",
        "kind": "acceptance",
        "dataset": dataset_id,
        "target_model": tdesc["name"],
        "target_parameters": tdesc.get("parameters"),
        "target_weights_sha256": tdesc.get("weights_sha256"),
        "target": tdesc,
        "draft_model": ddesc.get("name"),
        "draft_parameters": ddesc.get("parameters"),
        "draft_weights_sha256": ddesc.get("weights_sha256"),
        "draft": ddesc,
        "tokenizer": tdesc.get("tokenizer"),
        "sampler": SAMPLER_DESCRIPTION[temperature == 0],
        "temperature": temperature,
        "gamma": gamma,
        "max_new_tokens": max_new_tokens,
        "prompt_count": len(prompts),
        "prompt_source": prompt_source,
        "recorder": RECORDER_VERSION,
        **env,
        "torch_threads": env["hardware"]["torch_threads"],
        "cpu_model": env["hardware"]["cpu_model"],
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recording_wall_s": round(time.perf_counter() - started, 3),
        "rounds": int(len(frame)),
        "tau_mean_tokens_per_round": float(1 + acc.mean()) if acc.size else None,
        "draft_acceptance_ratio": float(acc.sum() / frame["drafted"].sum()) if acc.size else None,
        "licence": licence,
        "note": note,
    }
    return Recording(frame=frame, metadata=metadata, outputs=outputs)
