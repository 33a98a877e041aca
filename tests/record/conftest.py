"""Tiny randomly initialised models for the recorder tests (no download, no training)."""

from __future__ import annotations

import pytest

#: Every test module here starts with ``pytest.importorskip("torch", reason=TORCH_REASON)``; nothing in this
#: file imports torch at import time, so that a plain ``pytest`` without the record extra skips this folder.
TORCH_REASON = "needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')"


def tiny_bytegpt(
    seed: int, d_model: int = 32, n_layer: int = 2, n_head: int = 2, name: str = "tiny", noise: float = 0.0
):
    """A random ByteGPT (seed); with noise > 0 its weights are then perturbed by noise x their std (seed + 1)."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    from specedge.record.bytegpt import ByteGPT, ByteGPTConfig
    from specedge.record.lm import ByteGPTLM

    torch.manual_seed(seed)
    model = ByteGPT(ByteGPTConfig(d_model=d_model, n_layer=n_layer, n_head=n_head))
    with torch.no_grad():  # larger than the 0.02 init: sharper next-byte distributions that depend on context
        model.embed.weight.mul_(20.0)
        for pname, weight in model.named_parameters():
            if pname.startswith("blocks") and weight.dim() == 2:
                weight.mul_(10.0)
        torch.manual_seed(seed + 1)
        for weight in model.parameters():
            weight.add_(noise * weight.std() * torch.randn_like(weight))
    return ByteGPTLM(model.double(), name)


@pytest.fixture(scope="session")
def tiny_pair():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.set_num_threads(1)
    # the draft is the target plus noise: it agrees with the target often but not always
    return tiny_bytegpt(0, 48, 2, 4, "tiny-target"), tiny_bytegpt(0, 48, 2, 4, "tiny-draft", noise=0.3)
