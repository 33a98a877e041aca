"""A batched forward pass over sequences of different lengths: the serving engine of the real two-node run.

The recorder's adapters (:mod:`specedge.record.lm`) run a batch whose sequences all share one cache length.
Serving needs *ragged* batches: prompts of different lengths padded to the batch's longest (docs/model.md section 5),
and sequences that accept different numbers of draft tokens every round. This module gives two model families that
capability without touching their weights or modules: the project's byte-GPT (:class:`RaggedByteGPT`, running
``embed``, each block's ``ln1``/``qkv``/``proj``/``ln2``/``fc``/``out``, ``ln_f``) and LLaMA-family ``transformers``
models such as SmolLM2 (:class:`RaggedLlama`). Both run the model's own layers over a preallocated KV cache with,
per sequence,

- ``offset``: the first cache slot of the sequence (left padding of the first pass: ``x - count``);
- ``length``: how many of its tokens are cached (slots ``offset .. offset + length - 1``);

rotary positions taken per sequence (so a sequence's tokens keep their own positions 0, 1, 2, ... whatever the
padding), a boolean attention mask that hides padding and stale slots, and writes at per-sequence slots. Cropping
rejected drafts is ``length -= n``: no data moves. A pass on b sequences with x new tokens each attends over
``max(offset + length) + x`` slots: the padded context C of the latency model.

:class:`EngineLM` wraps the engine in the :class:`specedge.record.lm.CausalLM` protocol (uniform batches), so the
compute-trace measurer (:func:`specedge.record.compute_trace.measure_compute`) times exactly this code path.

torch is imported here: this module is loaded by the node processes, tests and the compute measurer only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from specedge.errors import InputError

#: Token id fed at padding positions (any id works: padded slots are masked out of every real query).
PAD_TOKEN_ID = 0
#: Slots allocated beyond the requested capacity when the cache must grow (growth doubles, at least this much).
GROWTH_SLOTS = 256


def rope_at(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate channel pairs of x (B, H, T, D) by per-sequence positions (B, T): the byte-GPT's RoPE
    (:func:`specedge.record.bytegpt._rope`) with a position per (sequence, token) instead of one shared start."""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))
    ang = positions.to(torch.float32)[..., None] * inv_freq  # (B, T, D/2)
    cos, sin = ang.cos().to(x.dtype)[:, None], ang.sin().to(x.dtype)[:, None]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


@dataclass
class RaggedCache:
    """Per-layer K/V tensors (B, H, capacity, D) and each sequence's ``offset`` and ``length`` (int64, (B,))."""

    keys: list
    values: list
    offset: torch.Tensor
    length: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.offset.shape[0])

    @property
    def capacity(self) -> int:
        return int(self.keys[0].shape[2]) if self.keys else 0

    def extent(self) -> int:
        """Slots in use: max(offset + length), the padded context of the next pass (0 when empty)."""
        return int((self.offset + self.length).max()) if self.batch_size else 0

    def crop(self, lengths) -> None:
        """Keep each sequence's first ``lengths[i]`` cached tokens (drop rejected drafts)."""
        new = torch.as_tensor(lengths, dtype=torch.int64)
        if new.shape != self.length.shape or bool((new < 0).any()) or bool((new > self.length).any()):
            raise ValueError(f"cannot crop lengths {self.length.tolist()} to {new.tolist()}")
        self.length = new.clone()

    def select(self, rows) -> None:
        """Keep only the sequences at ``rows`` (finished sequences leave the batch)."""
        idx = torch.as_tensor(rows, dtype=torch.int64)
        self.keys = [k.index_select(0, idx) for k in self.keys]
        self.values = [v.index_select(0, idx) for v in self.values]
        self.offset = self.offset.index_select(0, idx)
        self.length = self.length.index_select(0, idx)


@dataclass(frozen=True)
class _Layout:
    """Where a pass's tokens go: slots and rotary positions (B, x), the attention extent and mask."""

    slots: torch.Tensor
    positions: torch.Tensor
    rows: torch.Tensor
    extent: int
    mask: torch.Tensor  # (B, 1, x, extent) bool


class _Ragged:
    """The ragged cache bookkeeping shared by every model family (see the module docstring)."""

    n_layer: int
    n_kv_heads: int
    head_dim: int
    dtype: torch.dtype

    def new_cache(self, batch_size: int, capacity: int) -> RaggedCache:
        shape = (batch_size, self.n_kv_heads, max(int(capacity), 1), self.head_dim)
        return RaggedCache(
            keys=[torch.zeros(shape, dtype=self.dtype) for _ in range(self.n_layer)],
            values=[torch.zeros(shape, dtype=self.dtype) for _ in range(self.n_layer)],
            offset=torch.zeros(batch_size, dtype=torch.int64),
            length=torch.zeros(batch_size, dtype=torch.int64),
        )

    @staticmethod
    def _grow(cache: RaggedCache, needed: int) -> None:
        if needed <= cache.capacity:
            return
        new_cap = max(needed, 2 * cache.capacity, cache.capacity + GROWTH_SLOTS)
        for store in (cache.keys, cache.values):
            for i, t in enumerate(store):
                grown = torch.zeros((t.shape[0], t.shape[1], new_cap, t.shape[3]), dtype=t.dtype)
                grown[:, :, : t.shape[2]] = t
                store[i] = grown

    def _layout(self, tokens: torch.Tensor, counts, cache: RaggedCache) -> tuple[_Layout, torch.Tensor]:
        b, x = tokens.shape
        counts = torch.as_tensor(counts, dtype=torch.int64)
        if counts.shape != (b,) or bool((counts < 1).any()) or bool((counts > x).any()):
            raise InputError(f"ragged forward: counts {counts.tolist()} must be in 1..{x} for {b} rows")
        j = torch.arange(x, dtype=torch.int64)
        if bool((cache.length == 0).all()):  # first pass: left padding
            cache.offset = (x - counts).clone()
            slots = j.expand(b, x)
            positions = (j[None, :] - cache.offset[:, None]).clamp(min=0)
        else:
            slots = (cache.offset + cache.length)[:, None] + j[None, :]
            positions = cache.length[:, None] + j[None, :]
        extent = int(slots.max()) + 1
        self._grow(cache, extent)
        # key slot t is visible to query (i, j) iff offset_i <= t <= slot_ij; a first-pass padding query sees
        # itself only (so no row of the mask is empty and no NaN enters the cache)
        t = torch.arange(extent, dtype=torch.int64)
        visible = (t[None, None, :] >= cache.offset[:, None, None]) & (t[None, None, :] <= slots[:, :, None])
        visible |= t[None, None, :] == slots[:, :, None]
        rows = torch.arange(b, dtype=torch.int64)[:, None].expand(b, x)
        return _Layout(slots, positions, rows, extent, visible[:, None]), counts

    @staticmethod
    def _attend(q, k, v, cache: RaggedCache, layer: int, lay: _Layout, **sdpa) -> torch.Tensor:
        """Write this pass's k, v (B, H_kv, x, D) at their slots and attend q over the visible slots."""
        ck, cv = cache.keys[layer], cache.values[layer]
        ck[lay.rows, :, lay.slots] = k.transpose(1, 2)
        cv[lay.rows, :, lay.slots] = v.transpose(1, 2)
        return F.scaled_dot_product_attention(q, ck[:, :, : lay.extent], cv[:, :, : lay.extent],
                                              attn_mask=lay.mask, **sdpa)


class RaggedByteGPT(_Ragged):
    """Ragged batched forward passes of a :class:`specedge.record.bytegpt.ByteGPT` (see the module docstring)."""

    def __init__(self, model) -> None:
        self.model = model.eval()
        self.cfg = model.cfg
        self.dtype = next(model.parameters()).dtype
        self.n_layer, self.n_kv_heads, self.head_dim = self.cfg.n_layer, self.cfg.n_head, self.cfg.head_dim

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, counts, cache: RaggedCache) -> torch.Tensor:
        """Logits (B, x, V) for ``tokens`` (B, x); row i holds ``counts[i]`` real tokens.

        On an empty cache (every length 0, the first pass) rows are *left*-padded: the real tokens are the last
        ``counts[i]`` of the row and the sequence's offset becomes ``x - counts[i]``. Afterwards rows are
        *right*-padded: the real tokens come first and go to slots ``offset + length ..``. Lengths grow by
        ``counts``; padding positions produce logits that mean nothing.
        """
        lay, counts = self._layout(tokens, counts, cache)
        b, x = tokens.shape
        model, cfg = self.model, self.cfg
        h = model.embed(tokens)
        for layer, block in enumerate(model.blocks):
            q, k, v = block.qkv(block.ln1(h)).view(b, x, 3, cfg.n_head, cfg.head_dim).permute(2, 0, 3, 1, 4)
            q, k = rope_at(q, lay.positions, cfg.rope_base), rope_at(k, lay.positions, cfg.rope_base)
            att = self._attend(q, k, v, cache, layer, lay)
            h = h + block.proj(att.transpose(1, 2).reshape(b, x, cfg.d_model))
            h = h + block.out(F.gelu(block.fc(block.ln2(h))))
        cache.length = cache.length + counts
        return F.linear(model.ln_f(h), model.embed.weight)


class RaggedLlama(_Ragged):
    """Ragged batched forward passes of a ``transformers`` LLaMA-family causal LM (SmolLM2 is one), running the
    model's own modules: embedding, per layer RMSNorm, q/k/v/o projections with the model's rotary embedding at
    per-sequence positions and grouped-query attention, RMSNorm, MLP; final norm and LM head."""

    def __init__(self, model) -> None:
        self.model = model.eval()
        cfg = model.config
        self.cfg = cfg
        self.dtype = next(model.parameters()).dtype
        self.n_layer = int(cfg.num_hidden_layers)
        self.n_kv_heads = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, counts, cache: RaggedCache) -> torch.Tensor:
        """As :meth:`RaggedByteGPT.forward`."""
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        lay, counts = self._layout(tokens, counts, cache)
        b, x = tokens.shape
        base = self.model.model
        h = base.embed_tokens(tokens)
        cos, sin = base.rotary_emb(h, lay.positions)
        for layer, block in enumerate(base.layers[: self.n_layer]):
            attn = block.self_attn
            y = block.input_layernorm(h)
            q = attn.q_proj(y).view(b, x, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(y).view(b, x, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(y).view(b, x, -1, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            att = self._attend(q, k, v, cache, layer, lay, scale=attn.scaling,
                               enable_gqa=q.shape[1] != self.n_kv_heads)
            h = h + attn.o_proj(att.transpose(1, 2).reshape(b, x, -1))
            h = h + block.mlp(block.post_attention_layernorm(h))
        cache.length = cache.length + counts
        return self.model.lm_head(base.norm(h))


#: ``transformers`` decoder-layer classes whose structure :class:`RaggedLlama` follows.
LLAMA_LAYERS = ("LlamaDecoderLayer",)


def ragged_engine(lm):
    """The ragged engine of a loaded :class:`specedge.record.lm.CausalLM`: the byte-GPT (and models built on it)
    or a LLaMA-family ``transformers`` model; an InputError for any other kind."""
    from specedge.record.lm import ByteGPTLM, HFCausalLM

    if isinstance(lm, ByteGPTLM):
        return RaggedByteGPT(lm.model)
    if isinstance(lm, HFCausalLM):
        layers = getattr(getattr(lm.model, "model", None), "layers", None)
        kind = type(layers[0]).__name__ if layers else type(lm.model).__name__
        if kind in LLAMA_LAYERS:
            return RaggedLlama(lm.model)
        raise InputError(f"model {lm.name!r}: the serving engine supports LLaMA-family transformers models "
                         f"({', '.join(LLAMA_LAYERS)}), not {kind}")
    raise InputError(f"model {lm.name!r} ({type(lm).__name__}): the serving engine supports byte-GPT checkpoints "
                     "and LLaMA-family transformers models only (ragged batches need per-sequence positions)")


class EngineLM:
    """The ragged engine behind the :class:`specedge.record.lm.CausalLM` protocol, for uniform batches: every
    sequence feeds all x tokens and is cropped to the same length. Used to measure compute traces of the exact
    code path that serves (``measure_compute(EngineLM(lm), ...)``)."""

    def __init__(self, lm, capacity: int = 2048) -> None:
        self.lm = lm
        self.engine = ragged_engine(lm)
        self.name = lm.name
        self.vocab_size = lm.vocab_size
        self.eos_token_id = lm.eos_token_id
        self.capacity = int(capacity)

    def new_cache(self):
        return {"cache": None}  # made on the first pass, when the batch size is known

    def forward(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        b, x = tokens.shape
        if cache["cache"] is None or cache["cache"].batch_size != b:
            cache["cache"] = self.engine.new_cache(b, self.capacity)
        return self.engine.forward(tokens, torch.full((b,), x, dtype=torch.int64), cache["cache"])

    def cache_length(self, cache) -> int:
        return 0 if cache["cache"] is None else cache["cache"].extent()

    def crop(self, cache, length: int) -> None:
        c = cache["cache"]
        if c is not None:
            c.crop(torch.clamp(length - c.offset, min=0))

    def encode(self, text: str) -> list[int]:
        return self.lm.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.lm.decode(ids)

    def describe(self) -> dict:
        return {**self.lm.describe(), "engine": engine_name(self.engine)}


def engine_name(engine) -> str:
    return f"specedge.serve.engine.{type(engine).__name__} (ragged KV cache, per-sequence positions, masked SDPA)"
