"""A small byte-level GPT with a KV cache: the project's own draft and target models.

Vocabulary: the 256 byte values (text is UTF-8 bytes, no tokenizer to ship). Architecture: pre-LayerNorm
decoder blocks, multi-head causal self-attention with rotary position embeddings (RoPE, so a pass at any
context length is well defined), a 4x GELU MLP, no biases, output head tied to the token embedding.

torch is imported here; this module lives under :mod:`specedge.record` and is never imported at CLI start-up.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from specedge.errors import InputError

BYTE_VOCAB_SIZE = 256


@dataclass(frozen=True)
class ByteGPTConfig:
    """Shape of a byte-level GPT.

    d_model: width; n_layer: decoder blocks; n_head: attention heads (d_model % n_head == 0);
    mlp_ratio: hidden width of the MLP as a multiple of d_model; rope_base: RoPE frequency base.
    """

    d_model: int
    n_layer: int
    n_head: int
    mlp_ratio: int = 4
    vocab_size: int = BYTE_VOCAB_SIZE
    rope_base: float = 10_000.0

    def __post_init__(self) -> None:
        if self.d_model % self.n_head or (self.d_model // self.n_head) % 2:
            raise InputError(
                f"ByteGPTConfig: d_model={self.d_model} must split into n_head={self.n_head} heads of even size"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ByteGPTConfig":
        return cls(**json.loads(text))


class KVCache:
    """Per-layer key/value tensors of shape (batch, heads, length, head_dim), grown by concatenation."""

    def __init__(self, n_layer: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        k = self.keys[0]
        return 0 if k is None else int(k.shape[2])

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = k, v
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        return self.keys[layer], self.values[layer]

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions (drop rejected draft tokens)."""
        if length < 0 or length > self.length:
            raise ValueError(f"cannot crop a cache of length {self.length} to {length}")
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if k is not None:
                self.keys[i], self.values[i] = k[:, :, :length], v[:, :, :length]


def _rope(x: torch.Tensor, start: int, base: float) -> torch.Tensor:
    """Rotate pairs of channels of x (B, H, T, D) by position start..start+T-1."""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))
    pos = torch.arange(start, start + x.shape[2], dtype=torch.float32, device=x.device)
    ang = torch.outer(pos, inv_freq)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2)


class _Block(nn.Module):
    def __init__(self, cfg: ByteGPTConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=False)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=False)
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None, start: int) -> torch.Tensor:
        b, t, d = x.shape
        h, hd = self.cfg.n_head, self.cfg.head_dim
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, h, hd).permute(2, 0, 3, 1, 4)
        q, k = _rope(q, start, self.cfg.rope_base), _rope(k, start, self.cfg.rope_base)
        if cache is not None:
            k, v = cache.append(self.layer, k, v)
        if t == 1:
            att = F.scaled_dot_product_attention(q, k, v)
        elif start == 0:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # t new queries on top of `start` cached keys: query j sees keys 0..start+j
            mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(diagonal=start)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class ByteGPT(nn.Module):
    """Decoder-only byte-level language model. ``forward(tokens, cache)`` returns logits (B, T, 256)."""

    def __init__(self, cfg: ByteGPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2 style scaled init of the residual projections
            for lin in (block.proj, block.out):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.n_layer)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = 0 if cache is None else cache.length
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cache, start)
        return F.linear(self.ln_f(x), self.embed.weight)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"


def save_bytegpt(model: ByteGPT, directory: Path, extra: dict | None = None) -> Path:
    """Write ``config.json`` (shape plus ``extra`` under "training") and ``model.pt`` (fp32 state dict)."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(model.cfg.to_json())
    from specedge.provenance import portable_metadata

    payload = {"architecture": "bytegpt", "config": cfg, "training": portable_metadata(extra or {})[0]}
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)
    return directory


def load_bytegpt(directory: Path | str, dtype: torch.dtype = torch.float32) -> ByteGPT:
    """Load a checkpoint written by :func:`save_bytegpt`; a missing or malformed one is an InputError."""
    directory = Path(directory)
    cfg_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not cfg_path.is_file() or not weights_path.is_file():
        raise InputError(f"{directory}: not a bytegpt checkpoint (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        payload = json.loads(cfg_path.read_text())
        if payload.get("architecture") != "bytegpt":
            raise InputError(f"{cfg_path}: architecture is {payload.get('architecture')!r}, expected 'bytegpt'")
        cfg = ByteGPTConfig(**payload["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{cfg_path}: malformed bytegpt config ({exc})") from exc
    model = ByteGPT(cfg)
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return model.to(dtype).eval()
