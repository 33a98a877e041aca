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


def truncated_model(model, k: int):
    """A view of a transformers decoder-only causal LM that runs only its first ``k`` layers, then the final norm
    and the LM head. Every parameter is shared with ``model``; ``model`` itself is left unchanged."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise InputError(f"{type(model).__name__}: no model.layers; early exit needs a decoder-only transformers LM")
    n = len(layers)
    if not 1 <= k <= n:
        raise InputError(f"early exit after k={k} layers: k must be in 1..{n}")
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = k
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = list(cfg.layer_types)[:k]
    view_inner = copy.copy(inner)
    object.__setattr__(view_inner, "_modules", dict(inner._modules))  # own module table: the target keeps n layers
    view_inner.layers = torch.nn.ModuleList(list(layers)[:k])
    view_inner.config = cfg
    view = copy.copy(model)
    object.__setattr__(view, "_modules", dict(model._modules))
    view.model = view_inner
    view.config = cfg
    return view


class EarlyExitLM(HFCausalLM):
    """The first ``k`` layers of ``target`` (an :class:`HFCausalLM`) as a draft LM with its own k-layer cache."""

    def __init__(self, target: HFCausalLM, k: int):
        super().__init__(truncated_model(target.model, k), target.tokenizer, f"{target.name}-exit{k}",
                         path=target.path, weights_sha256=target.describe()["weights_sha256"])
        self.k = int(k)
        self.target_layers = len(target.model.model.layers)
        self.target_name = target.name

    def describe(self) -> dict:
        desc = super().describe()
        desc.update(
            architecture=f"self-speculative early exit: the first {self.k} of {self.target_layers} layers of "
                         f"{self.target_name} + its final norm and LM head (shared weights)",
            parameters_shared_with_target=True,
            exit_layer=self.k,
            target_layers=self.target_layers,
        )
        return desc


@torch.inference_mode()
def exit_agreement(model, sequences, exits, *, start: int = 0) -> dict[int, float]:
    """Teacher-forced agreement of each early exit k in ``exits`` with the full model: the share of positions
    t ≥ ``start`` (per sequence) where argmax draft_k(x_{≤t}) equals argmax target(x_{≤t}), pooled over
    ``sequences`` (lists of token ids). ``start`` may be an int or one int per sequence."""
    starts = [start] * len(sequences) if isinstance(start, int) else list(start)
    hits = {int(k): 0 for k in exits}
    total = 0
    views = {int(k): truncated_model(model, int(k)) for k in exits}
    for seq, s0 in zip(sequences, starts):
        ids = torch.as_tensor([list(seq)], dtype=torch.long)
        full = model(input_ids=ids).logits[0, s0:].argmax(-1)
        total += int(full.numel())
        for k, view in views.items():
            hits[k] += int((view(input_ids=ids).logits[0, s0:].argmax(-1) == full).sum())
    return {k: hits[k] / total if total else float("nan") for k in hits}
