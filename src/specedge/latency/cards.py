"""Model cards and device cards: data files under ``models/``, loaded by name.

A *model card* (``models/cards/<name>.toml``) gives a transformer's architecture: layers J, hidden size h, FFN
size h2, parameter count and bytes per parameter. A *device card* (``models/devices/<name>.toml``) gives a
device's peak FLOP/s, memory bandwidth and memory size, with where the figures came from. Adding a card is adding a
file; no code changes.

Cards are found on a search path: the directories in ``$SPECEDGE_MODELS`` (``os.pathsep``-separated, each holding
``cards/`` and ``devices/``), then the ``models/`` directory of the source checkout, then ``models/`` in the
current directory.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, fields
from functools import lru_cache
from pathlib import Path

from specedge.errors import ScenarioError

#: The repository's ``models/`` directory (src/specedge/latency/cards.py -> ../../../models).
REPO_MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


@dataclass(frozen=True)
class ModelCard:
    """A decoder-only transformer's architecture, as the latency model needs it.

    ``num_kv_heads`` < ``num_attention_heads`` means grouped-query attention; whether the KV-cache size uses it
    is a scenario switch (the paper's memory formula assumes full multi-head KV).
    """

    name: str
    display_name: str
    num_layers: int
    hidden_size: int
    ffn_size: int
    num_params: int
    bytes_per_param: float
    num_attention_heads: int
    num_kv_heads: int
    vocab_size: int
    source: str
    hf_id: str = ""

    @property
    def weight_bytes(self) -> float:
        """Bytes of the weights (parameters x bytes per parameter)."""
        return float(self.num_params) * float(self.bytes_per_param)

    @property
    def kv_hidden_size(self) -> int:
        """Width of one of K or V per layer per token with grouped-query attention."""
        return self.hidden_size * self.num_kv_heads // self.num_attention_heads


@dataclass(frozen=True)
class DeviceCard:
    """A compute device: public (or measured) peak throughput, memory bandwidth and memory size.

    ``peak_flops`` is the dense throughput in the dtype the model runs in (fp16 tensor cores with fp32
    accumulation for the GPUs; fp32 BLAS for a measured CPU). ``measured`` says whether the figures were measured
    on the device (then ``source`` says how and when) or copied from a datasheet.
    """

    name: str
    display_name: str
    kind: str
    peak_flops: float
    memory_bandwidth_bytes_per_s: float
    memory_bytes: float
    measured: bool
    source: str
    #: Power drawn when powered but not computing, and while running passes (W). Optional: 0 = not given; the
    #: energy model (:mod:`specedge.multicell.energy`) refuses a card without them. The card's comments cite them.
    idle_power_w: float = 0.0
    busy_power_w: float = 0.0
    power_source: str = ""


def search_path() -> list[Path]:
    """The directories searched for ``cards/`` and ``devices/``, in order."""
    dirs = [Path(p) for p in os.environ.get("SPECEDGE_MODELS", "").split(os.pathsep) if p]
    dirs += [REPO_MODELS_DIR, Path.cwd() / "models"]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def _card_files(subdir: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in search_path():
        folder = base / subdir
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def available_model_cards() -> list[str]:
    return sorted(_card_files("cards"))


def available_device_cards() -> list[str]:
    return sorted(_card_files("devices"))


def _load(cls: type, subdir: str, what: str, name: str):
    files = _card_files(subdir)
    if name not in files:
        known = ", ".join(sorted(files)) or "none (is $SPECEDGE_MODELS set?)"
        raise ScenarioError(f"unknown {what} {name!r}; known {what}s: {known}")
    return _parse(cls, files[name], what)


@lru_cache(maxsize=256)
def _parse(cls: type, path: Path, what: str):
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    names = {f.name: f for f in fields(cls)}
    required = [f.name for f in fields(cls) if f.default is MISSING]
    missing = [k for k in required if k not in data]
    if missing:
        raise ScenarioError(f"{path}: {what} misses field(s) {', '.join(missing)}")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ScenarioError(f"{path}: unknown field(s) {', '.join(unknown)}; expected {', '.join(names)}")
    if data["name"] != path.stem:
        raise ScenarioError(f"{path}: field 'name' is {data['name']!r}; it must equal the file name {path.stem!r}")
    values = {}
    for key, value in data.items():
        kind = names[key].type
        try:
            if kind in ("int", int):
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif kind in ("float", float):
                value = float(value)
            elif kind in ("bool", bool):
                if not isinstance(value, bool):
                    raise ValueError
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise ScenarioError(f"{path}: field {key!r} = {value!r} is not a valid {kind}") from None
        if kind in ("int", "float", int, float) and not value > 0:
            raise ScenarioError(f"{path}: field {key!r} must be > 0, got {value!r}")
        values[key] = value
    return cls(**values)


def load_model_card(name: str) -> ModelCard:
    """The model card ``name`` (file ``models/cards/<name>.toml``); ScenarioError if there is none."""
    return _load(ModelCard, "cards", "model card", name)


def load_device_card(name: str) -> DeviceCard:
    """The device card ``name`` (file ``models/devices/<name>.toml``); ScenarioError if there is none."""
    return _load(DeviceCard, "devices", "device card", name)


def parse_pair(pair: str) -> tuple[ModelCard, ModelCard]:
    """``"draft/target"`` -> the two model cards, e.g. ``"llama-68m/llama-7b"``."""
    parts = str(pair).split("/")
    if len(parts) != 2 or not all(parts):
        raise ScenarioError(f"model pair {pair!r} must be 'draft/target', e.g. 'llama-68m/llama-7b'")
    return load_model_card(parts[0]), load_model_card(parts[1])
