"""FLOPs per pass and the SBS memory check, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from specedge.latency import cards, memory
from specedge.latency.flops import flops_coefficients, forward_flops, kv_bytes_per_token, pass_bytes

LLAMA_68M = cards.load_model_card("llama-68m")


def test_forward_flops_by_hand():
    # 4 * J * h * x * (2h + c + x + h2) with J=2, h=768, h2=3072; x=1, c=100
    assert forward_flops(LLAMA_68M, 1, 100) == 4 * 2 * 768 * 1 * (1536 + 100 + 1 + 3072)
    # gated FFN counts 1.5 h2
    assert forward_flops(LLAMA_68M, 2, 0, ffn_factor=1.5) == 4 * 2 * 768 * 2 * (1536 + 2 + 4608)


def test_flops_are_affine_in_context_and_broadcast():
    x = np.array([[1], [8]])
    c = np.arange(5)
    a, b = flops_coefficients(LLAMA_68M, x)
    np.testing.assert_allclose(forward_flops(LLAMA_68M, x, c), a + b * c)
    assert forward_flops(LLAMA_68M, x, c).shape == (2, 5)


def test_kv_and_pass_bytes():
    assert kv_bytes_per_token(LLAMA_68M) == 4 * 2 * 768  # fp16, K and V
    tiny = cards.load_model_card("tinyllama-1.1b")
    assert kv_bytes_per_token(tiny, use_gqa=True) == 4 * 22 * 256
    assert pass_bytes(LLAMA_68M, 3, 1, 9) == LLAMA_68M.weight_bytes + 3 * 10 * 6144


class _Sc:
    def __init__(self, draft, **params):
        from types import SimpleNamespace

        self.draft = draft
        self.params = SimpleNamespace(kv_bytes_per_value=2.0, kv_cache_uses_gqa=False, **params)


def test_sbs_memory_by_hand():
    tiny = cards.load_model_card("tinyllama-1.1b")
    sc = _Sc(tiny, sbs_memory_bytes=16e9)
    per_slot = 4 * 22 * 2048  # bytes per token of KV
    room = 16e9 - tiny.weight_bytes
    b_max = int(room // (per_slot * (512 + 2048)))
    assert memory.max_batch_size(sc, 512, 2048) == b_max
    assert memory.sbs_fits(sc, b_max, 512, 2048) and not memory.sbs_fits(sc, b_max + 1, 512, 2048)
    np.testing.assert_array_equal(memory.sbs_fits(sc, np.array([1, 10_000]), 512, 2048), [True, False])
    assert memory.sbs_bytes(tiny, sc.params, 2, 10, 20) == pytest.approx(tiny.weight_bytes + 2 * 30 * per_slot)
