"""Self-speculative drafting: the target's own first k layers and its LM head as the draft (early exit).

Draft & Verify (Zhang et al., ACL 2024) and LayerSkip (Elhoushi et al., ACL 2024) draft with a subset of the
target's own layers, so the draft needs no extra weights and shares the tokenizer by construction. This module
implements the *prefix exit* variant [A]:

    draft_k(x) = LMHead(Norm(h_k)),   h_0 = Embed(x),   h_j = Layer_j(h_{j−1}), j = 1..k,

with the target's embedding, first k decoder layers, final norm and LM head (the same tensors, not copies). The
draft keeps its own KV cache (k layers); the target verifies as usual. Its cost per draft token is about k / n of a
target forward (n = the target's layers) [A: layer cost uniform].

A target not trained for early exit (SmolLM2 was not) usually agrees poorly at small k; :func:`exit_agreement`
measures, teacher-forced, how often each exit's argmax equals the full model's argmax (an estimate of the first
position's acceptance at T = 0), so k can be chosen before a recording.
"""

from __future__ import annotations

import copy

import torch

from specedge.errors import InputError
from specedge.record.lm import HFCausalLM


def _renumbered(layer, index: int):
    """A shallow copy of a decoder layer whose attention caches under ``index`` (weights shared)."""
    new = copy.copy(layer)
    object.__setattr__(new, "_modules", dict(layer._modules))
    attn = getattr(layer, "self_attn", None)
    if attn is not None and hasattr(attn, "layer_idx"):
        attn = copy.copy(attn)
        object.__setattr__(attn, "_modules", dict(layer.self_attn._modules))
        attn.layer_idx = index
        new.self_attn = attn
    return new


def layer_subset_model(model, keep):
    """A view of a transformers decoder-only causal LM that runs only the layers ``keep`` (indices, in order),
    then the final norm and the LM head. Every parameter is shared with ``model``; ``model`` is left unchanged.
    Kept layers are renumbered 0..len(keep)−1 for the view's own KV cache."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise InputError(f"{type(model).__name__}: no model.layers; a self-draft needs a decoder-only transformers LM")
    n = len(layers)
    keep = [int(i) for i in keep]
    if not keep or any(not 0 <= i < n for i in keep) or sorted(set(keep)) != keep:
        raise InputError(f"self-draft layers {keep}: need increasing distinct indices in 0..{n - 1}")
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = len(keep)
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [cfg.layer_types[i] for i in keep]
    view_inner = copy.copy(inner)
    object.__setattr__(view_inner, "_modules", dict(inner._modules))  # own module table: the target keeps n layers
    view_inner.layers = torch.nn.ModuleList([_renumbered(layers[i], j) for j, i in enumerate(keep)])
    view_inner.config = cfg
    view = copy.copy(model)
    object.__setattr__(view, "_modules", dict(model._modules))
    view.model = view_inner
    view.config = cfg
    return view


def truncated_model(model, k: int):
    """The early exit after ``k`` layers: :func:`layer_subset_model` with layers 0..k−1."""
    n = len(getattr(getattr(model, "model", None), "layers", []) or [])
    if n and not 1 <= k <= n:
        raise InputError(f"early exit after k={k} layers: k must be in 1..{n}")
    return layer_subset_model(model, range(k))


def parse_layers(spec: str, n: int) -> list[int]:
    """``"K"`` → the first K layers; ``"0-9,12,15-29"`` → those layer indices (inclusive ranges)."""
    spec = spec.strip()
    if spec.isdigit():
        return list(range(int(spec)))
    keep: list[int] = []
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            keep.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InputError(f"self-draft layers {spec!r}: expected K or ranges like 0-9,12,15-{n - 1}") from None
    return keep


class SelfDraftLM(HFCausalLM):
    """Layers ``keep`` of ``target`` (an :class:`HFCausalLM`) + its norm and LM head as a draft LM with its own
    KV cache (``keep`` = range(k): the early exit after k layers; otherwise Draft & Verify-style layer skipping)."""

    def __init__(self, target: HFCausalLM, keep):
        keep = list(keep)
        n = len(target.model.model.layers)
        prefix = keep == list(range(len(keep)))
        tag = f"exit{len(keep)}" if prefix else f"skip{n - len(keep)}"
        super().__init__(layer_subset_model(target.model, keep), target.tokenizer, f"{target.name}-{tag}",
                         path=target.path, weights_sha256=target.describe()["weights_sha256"])
        self.keep = keep
        self.k = len(keep)
        self.target_layers = n
        self.target_name = target.name
        self.prefix = prefix

    def describe(self) -> dict:
        desc = super().describe()
        what = (f"the first {self.k} of {self.target_layers} layers" if self.prefix
                else f"{self.k} of {self.target_layers} layers (kept: {self.keep})")
        desc.update(
            architecture=f"self-speculative draft: {what} of {self.target_name} + its final norm and LM head "
                         "(shared weights)",
            parameters_shared_with_target=True,
            kept_layers=self.keep,
            exit_layer=self.k if self.prefix else None,
            target_layers=self.target_layers,
        )
        return desc


class EarlyExitLM(SelfDraftLM):
    """The first ``k`` layers of ``target`` as a draft LM (:class:`SelfDraftLM` with layers 0..k−1)."""

    def __init__(self, target: HFCausalLM, k: int):
        n = len(target.model.model.layers)
        if not 1 <= int(k) <= n:
            raise InputError(f"early exit after k={k} layers: k must be in 1..{n}")
        super().__init__(target, range(int(k)))


def _key(k):
    return int(k) if isinstance(k, int) else tuple(int(i) for i in k)


@torch.inference_mode()
def exit_agreement(model, sequences, exits, *, start: int = 0) -> dict:
    """Teacher-forced agreement of each draft in ``exits`` (an int k: the first k layers; or a sequence of kept
    layer indices) with the full model: the share of positions
    t ≥ ``start`` (per sequence) where argmax draft_k(x_{≤t}) equals argmax target(x_{≤t}), pooled over
    ``sequences`` (lists of token ids). ``start`` may be an int or one int per sequence."""
    starts = [start] * len(sequences) if isinstance(start, int) else list(start)
    hits = {_key(k): 0 for k in exits}
    total = 0
    views = {_key(k): layer_subset_model(model, range(k) if isinstance(k, int) else k) for k in exits}
    for seq, s0 in zip(sequences, starts):
        ids = torch.as_tensor([list(seq)], dtype=torch.long)
        full = model(input_ids=ids).logits[0, s0:].argmax(-1)
        total += int(full.numel())
        for k, view in views.items():
            hits[k] += int((view(input_ids=ids).logits[0, s0:].argmax(-1) == full).sum())
    return {k: hits[k] / total if total else float("nan") for k in hits}
