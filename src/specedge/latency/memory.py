"""SBS memory check (docs/model.md section 4).

A batch fits the SBS when the draft's weights plus the KV cache of every member at the batch's padded length
I_max + O_max fit in ``sbs_memory_bytes`` [P: per batch, outputs assumed to reach O_max]:

    weight_bytes(draft) + kv_bytes_per_token(draft) * b * (I_max + O_max) <= sbs_memory_bytes

with kv_bytes_per_token = 2 * J * h * kv_bytes_per_value = 4 J h bytes in fp16 [A: K and V, no grouped-query
attention unless ``kv_cache_uses_gqa``]. The MBS has no memory limit [P].
"""

from __future__ import annotations

import numpy as np

from specedge.latency.cards import ModelCard
from specedge.latency.flops import kv_bytes_per_token


def sbs_bytes(draft: ModelCard, params, batch_size, input_max_tokens, output_max_tokens) -> np.ndarray:
    """Bytes the SBS needs for a batch: draft weights + KV cache at I_max + O_max per member."""
    per_token = kv_bytes_per_token(draft, bytes_per_value=params.kv_bytes_per_value, use_gqa=params.kv_cache_uses_gqa)
    b = np.asarray(batch_size, dtype=np.float64)
    length = np.asarray(input_max_tokens, dtype=np.float64) + np.asarray(output_max_tokens, dtype=np.float64)
    return draft.weight_bytes + per_token * b * length


def sbs_fits(sc, batch_size, input_max_tokens, output_max_tokens) -> np.ndarray:
    """Boolean array: does a batch of this size and padded lengths fit the SBS memory of scenario ``sc``?"""
    need = sbs_bytes(sc.draft, sc.params, batch_size, input_max_tokens, output_max_tokens)
    return need <= sc.params.sbs_memory_bytes


def max_batch_size(sc, input_max_tokens, output_max_tokens) -> np.ndarray:
    """Largest batch size that fits (0 if even the weights do not), broadcasting over the lengths."""
    p = sc.params
    per_token = kv_bytes_per_token(sc.draft, bytes_per_value=p.kv_bytes_per_value, use_gqa=p.kv_cache_uses_gqa)
    length = np.asarray(input_max_tokens, dtype=np.float64) + np.asarray(output_max_tokens, dtype=np.float64)
    room = p.sbs_memory_bytes - sc.draft.weight_bytes
    return np.maximum(np.floor(room / (per_token * length)), 0).astype(np.int64)
