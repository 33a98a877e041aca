"""FLOPs and bytes of one forward pass (docs/model.md section 4).

One pass of one sequence, ``x`` new tokens on top of ``c`` cached tokens, costs [P form, unified by us]::

    F(x, c) = 4 * J * h * x * (2h + c + x + ffn_factor * h2)

per layer and token: 8h^2 for the Q, K, V, O projections, 4h(c + x) for attention scores and weighted values, and
4 h h2 for a two-matrix FFN (2 FLOPs per multiply-add). ``ffn_factor`` = 1 is the paper's form; 1.5 counts the
third (gate) matrix of LLaMA's SwiGLU FFN. The vocabulary projection and norms are not counted.

All functions broadcast numpy arrays.
"""

from __future__ import annotations

import numpy as np

from specedge.latency.cards import ModelCard


def forward_flops(card: ModelCard, new_tokens, context_tokens, *, ffn_factor: float = 1.0) -> np.ndarray:
    """F(x, c): FLOPs of one forward pass of one sequence (see the module docstring)."""
    x = np.asarray(new_tokens, dtype=np.float64)
    c = np.asarray(context_tokens, dtype=np.float64)
    h = float(card.hidden_size)
    return 4.0 * card.num_layers * h * x * (2.0 * h + c + x + ffn_factor * card.ffn_size)


def flops_coefficients(card: ModelCard, new_tokens, *, ffn_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with F(x, c) = a + b * c for fixed x: the pass cost is affine in the context length."""
    x = np.asarray(new_tokens, dtype=np.float64)
    h = float(card.hidden_size)
    k = 4.0 * card.num_layers * h * x
    return k * (2.0 * h + x + ffn_factor * card.ffn_size), k


def kv_bytes_per_token(card: ModelCard, *, bytes_per_value: float = 2.0, use_gqa: bool = False) -> float:
    """Bytes of KV cache one token occupies: 2 (K and V) x J x width x bytes per value.

    ``use_gqa=False`` is the paper's memory formula (width h, full multi-head KV, i.e. 4 J h bytes in fp16);
    ``use_gqa=True`` uses the card's grouped-query width.
    """
    width = card.kv_hidden_size if use_gqa else card.hidden_size
    return 2.0 * card.num_layers * width * bytes_per_value


def pass_bytes(
    card: ModelCard, batch_size, new_tokens, context_tokens, *, bytes_per_value: float = 2.0, use_gqa: bool = False
) -> np.ndarray:
    """Bytes one pass moves from memory: all weights once, plus every sequence's KV cache read and new KV written.

    Activations are not counted (they stay in cache for the batch sizes of interest).
    """
    b = np.asarray(batch_size, dtype=np.float64)
    x = np.asarray(new_tokens, dtype=np.float64)
    c = np.asarray(context_tokens, dtype=np.float64)
    per_token = kv_bytes_per_token(card, bytes_per_value=bytes_per_value, use_gqa=use_gqa)
    return card.weight_bytes + b * (c + x) * per_token
