"""A small adapter over "a causal LM with a KV cache", so one recorder and one compute-trace measurer drive both
the project's own byte-level GPT and any Hugging Face ``transformers`` causal LM on local disk.

The protocol is deliberately narrow: make an empty cache, run a forward pass of x new tokens per sequence on
top of the cache (which it extends), crop the cache back to a length, and turn text into token ids and back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from specedge.errors import InputError
from specedge.provenance import portable_path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@runtime_checkable
class CausalLM(Protocol):
    """What the recorder needs from a model."""

    name: str
    vocab_size: int  # width of the logits' last axis
    eos_token_id: int | None

    def new_cache(self) -> Any: ...

    def forward(self, tokens: torch.Tensor, cache: Any) -> torch.Tensor:
        """Logits (B, x, V) for tokens (B, x) placed after the cache's positions; extends the cache by x."""

    def cache_length(self, cache: Any) -> int: ...

    def crop(self, cache: Any, length: int) -> None:
        """Keep the first ``length`` cached positions."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def describe(self) -> dict:
        """Provenance: name, parameters, weights_sha256, tokenizer, architecture, dtype, path."""


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def weights_sha256(path: Path) -> str:
    """Content hash of a checkpoint: the file's sha256, or for a directory the sha256 over its weight files'
    (relative name, sha256) pairs in sorted order."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise InputError(f"{path}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) to hash")
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def _dtype(name: str) -> torch.dtype:
    table = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in table:
        raise InputError(f"dtype {name!r}: expected one of {', '.join(table)}")
    return table[name]


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float64: "fp64", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


class ByteGPTLM:
    """The project's byte-level GPT behind the :class:`CausalLM` protocol (tokenizer: UTF-8 bytes)."""

    eos_token_id = None

    def __init__(self, model, name: str, path: Path | None = None, weights_sha256: str | None = None) -> None:
        self.model = model.eval()
        self.name = name
        self.path = path
        self.vocab_size = model.cfg.vocab_size
        self._weights_sha256 = weights_sha256

    @classmethod
    def load(cls, path: Path | str, name: str | None = None, dtype: str = "fp32") -> "ByteGPTLM":
        from specedge.record.bytegpt import WEIGHTS_FILE, load_bytegpt

        path = Path(path)
        model = load_bytegpt(path, dtype=_dtype(dtype))
        return cls(model, name or path.name, path=path, weights_sha256=sha256_file(path / WEIGHTS_FILE))

    def new_cache(self):
        return self.model.new_cache()

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        return self.model(tokens, cache)

    def cache_length(self, cache) -> int:
        return cache.length

    def crop(self, cache, length: int) -> None:
        cache.crop(length)

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def describe(self) -> dict:
        if self._weights_sha256 is None:  # in-memory model: hash the tensors themselves
            h = hashlib.sha256()
            for key, value in sorted(self.model.state_dict().items()):
                h.update(key.encode() + value.detach().cpu().float().numpy().tobytes())
            self._weights_sha256 = h.hexdigest()
        cfg = self.model.cfg
        return {
            "name": self.name,
            "architecture": f"bytegpt(d_model={cfg.d_model}, n_layer={cfg.n_layer}, n_head={cfg.n_head}, "
            f"mlp_ratio={cfg.mlp_ratio}, rope)",
            "parameters": self.model.num_parameters(),
            "weights_sha256": self._weights_sha256,
            "tokenizer": "bytes (UTF-8, 256 ids)",
            "dtype": dtype_name(next(self.model.parameters()).dtype),
            "path": portable_path(self.path),
            "layers": cfg.n_layer,
            "hidden": cfg.d_model,
            "mlp_hidden": cfg.mlp_ratio * cfg.d_model,
        }


class HFCausalLM:
    """A ``transformers`` AutoModelForCausalLM (and its tokenizer) loaded from a local directory, offline."""

    def __init__(self, model, tokenizer, name: str, path: Path | None = None, weights_sha256: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.path = path
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        eos = getattr(model.config, "eos_token_id", None)
        self.eos_token_id = eos[0] if isinstance(eos, list) else eos
        self._weights_sha256 = weights_sha256

    @classmethod
    def load(cls, path: Path | str, name: str | None = None, dtype: str = "fp32", **load_kwargs) -> "HFCausalLM":
        """Load model and tokenizer from ``path`` with ``local_files_only=True`` (never reaches a hub).

        ``load_kwargs`` go to ``from_pretrained`` of both (e.g. ``gguf_file=...``)."""
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"{path}: model directory does not exist")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=_dtype(dtype), **load_kwargs)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot load a transformers causal LM ({exc})") from exc
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **load_kwargs)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"{path}: cannot load the model's tokenizer ({exc})") from exc
        gguf = load_kwargs.get("gguf_file")
        digest = sha256_file(path / gguf) if gguf else weights_sha256(path)
        return cls(model, tokenizer, name or path.name, path=path, weights_sha256=digest)

    def new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        # transformers 5.x names the argument ``cache`` (``past_key_values`` is deprecated); the cache grows in place
        out = self.model(input_ids=tokens, cache=cache, use_cache=True)
        return out.logits

    def cache_length(self, cache) -> int:
        return int(cache.get_seq_length())

    def crop(self, cache, length: int) -> None:
        # transformers 5.x: crop(-n) removes the last n positions (a positive absolute length is refused)
        surplus = self.cache_length(cache) - length
        if surplus < 0:
            raise ValueError(f"cannot crop a cache of length {self.cache_length(cache)} to {length}")
        if surplus:
            cache.crop(-surplus)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def describe(self) -> dict:
        cfg = self.model.config
        if self._weights_sha256 is None:
            h = hashlib.sha256()
            for key, value in sorted(self.model.state_dict().items()):
                h.update(key.encode() + value.detach().cpu().float().numpy().tobytes())
            self._weights_sha256 = h.hexdigest()
        return {
            "name": self.name,
            "architecture": f"transformers {type(self.model).__name__}",
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "weights_sha256": self._weights_sha256,
            "tokenizer": f"{type(self.tokenizer).__name__} (vocab {len(self.tokenizer)})",
            "dtype": dtype_name(self.model.dtype),
            "path": portable_path(self.path),
            "layers": getattr(cfg, "num_hidden_layers", None),
            "hidden": getattr(cfg, "hidden_size", None),
            "mlp_hidden": getattr(cfg, "intermediate_size", None),
        }


def load_lm(path: Path | str, name: str | None = None, dtype: str = "fp32") -> CausalLM:
    """Load whichever kind of checkpoint ``path`` holds: a bytegpt directory or a transformers directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: model path does not exist")
    if (path / "model.pt").is_file() and (path / "config.json").is_file():
        import json

        try:
            arch = json.loads((path / "config.json").read_text()).get("architecture")
        except json.JSONDecodeError as exc:
            raise InputError(f"{path / 'config.json'}: not valid JSON ({exc})") from exc
        if arch == "bytegpt":
            return ByteGPTLM.load(path, name=name, dtype=dtype)
    return HFCausalLM.load(path, name=name, dtype=dtype)
