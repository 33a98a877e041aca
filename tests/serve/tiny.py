"""Tiny randomly initialised byte-GPT pairs with model cards, and one real run of them, shared by the serve and
fidelity tests (the run is made once per test session: spawning two torch processes costs seconds)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from specedge.cli import main

#: Why the tests that serve for real are skipped without torch (no module here imports torch at import time).
TORCH_REASON = "needs torch: the record extra (pip install torch==2.13.0 && pip install -e '.[record]')"

DRAFT, TARGET = "tiny-serve-draft", "tiny-serve-target"
PAIR = f"{DRAFT}/{TARGET}"
#: Scenario overrides of the tests: short prompts and outputs.
SETS = ["input_tokens_min=8", "input_tokens_max=16", "output_tokens_min=8", "output_tokens_max=20"]
RUN_ID = "run-tiny"
NUM_TASKS = 3


def _model(seed: int, noise: float):
    """A random byte-GPT with sharp, context-dependent next-byte distributions; the draft is the target + noise."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    from specedge.record.bytegpt import ByteGPT, ByteGPTConfig

    torch.manual_seed(seed)
    model = ByteGPT(ByteGPTConfig(d_model=32, n_layer=2, n_head=2))
    with torch.no_grad():
        model.embed.weight.mul_(20.0)
        for name, weight in model.named_parameters():
            if name.startswith("blocks") and weight.dim() == 2:
                weight.mul_(10.0)
        torch.manual_seed(seed + 1)
        for weight in model.parameters():
            weight.add_(noise * weight.std() * torch.randn_like(weight))
    return model


def write_models(root: Path) -> Path:
    """Checkpoints under root/checkpoints/<name>/ and cards under root/cards/ (put root on $SPECEDGE_MODELS)."""
    pytest.importorskip("torch", reason=TORCH_REASON)
    from specedge.record.bytegpt import save_bytegpt

    (root / "cards").mkdir(parents=True, exist_ok=True)
    for name, noise in ((TARGET, 0.0), (DRAFT, 0.3)):
        model = _model(0, noise)
        save_bytegpt(model, root / "checkpoints" / name)
        cfg = model.cfg
        (root / "cards" / f"{name}.toml").write_text(
            f'name = "{name}"\ndisplay_name = "{name}"\nnum_layers = {cfg.n_layer}\nhidden_size = {cfg.d_model}\n'
            f"ffn_size = {cfg.mlp_ratio * cfg.d_model}\nnum_attention_heads = {cfg.n_head}\n"
            f"num_kv_heads = {cfg.n_head}\nvocab_size = 256\nnum_params = {model.num_parameters()}\n"
            'bytes_per_param = 4\nsource = "tests: random initialisation"\n')
    return root


def cores_arg() -> str:
    cores = sorted(os.sched_getaffinity(0))
    return f"{cores[0]},{cores[1]}" if len(cores) >= 2 else "none"


def plan_file(path: Path) -> Path:
    """Two batches (tasks 0 and 1 together, task 2 alone) with l = 3 and 2."""
    path.write_text(json.dumps({"batches": [[0, 1], [2]], "speculation_length": [3, 2],
                                "bandwidth_hz": [2e5] * NUM_TASKS, "mode": "sd-pipeline"}))
    return path


def served(tmp_path_factory) -> dict:
    """Serve the tiny pair once (CLI, with --measure-compute) and return the paths; cached for the session on the
    session-wide ``tmp_path_factory`` (this module may be imported under two names by the two test folders)."""
    cached = getattr(tmp_path_factory, "_specedge_tiny_run", None)
    if cached is not None:
        return cached
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    root = write_models(tmp_path_factory.mktemp("tiny-models"))
    existing = [p for p in os.environ.get("SPECEDGE_MODELS", "").split(os.pathsep) if p]
    os.environ["SPECEDGE_MODELS"] = os.pathsep.join([str(root)] + existing)
    store = root / "store"
    plan = plan_file(root / "plan.json")
    args = ["serve-real", "--pair", PAIR, "--plan", str(plan), "--tasks", str(NUM_TASKS), "--seed", "0",
            "--checkpoints", str(root / "checkpoints"), "--store", str(store), "--dataset", RUN_ID,
            "--measure-compute", "--compute-repeats", "2", "--cores", cores_arg(), "--allow-noisy",
            "--quiet-sample-s", "0.5"]
    for s in SETS:
        args += ["--set", s]
    code = main(args)
    torch.set_num_threads(1)
    assert code == 0
    cached = {"root": root, "store": store, "plan": plan, "args": args}
    tmp_path_factory._specedge_tiny_run = cached
    return cached


def measure_tiny_pair(tmp_path: Path, grid, grid_mode: str):
    """Measure both tiny models' compute traces with :func:`specedge.serve.measure.measure_pair` on their node
    cores over ``grid``, timed ``grid_mode``; returns (store, {"draft": id, "verify": id})."""
    from specedge.scenario import Scenario
    from specedge.serve.measure import measure_pair
    from specedge.serve.workload import ModelSource
    from specedge.traces.store import open_store

    root = write_models(tmp_path / "models")
    old = os.environ.get("SPECEDGE_MODELS")
    os.environ["SPECEDGE_MODELS"] = os.pathsep.join(p for p in (str(root), old) if p)
    try:
        sc = Scenario.from_preset("paper", pair=PAIR, tasks=2, seed=0)
        st = open_store(tmp_path / "store")
        cores = tuple(int(c) for c in cores_arg().split(",")) if cores_arg() != "none" else (None, None)
        src = {n: ModelSource(n, "path", str(root / "checkpoints" / n)) for n in (DRAFT, TARGET)}
        return st, measure_pair(sc, None, src[DRAFT], src[TARGET], store=st, cores=cores, grid=grid, stamp="t",
                                grid_mode=grid_mode)
    finally:
        if old is None:
            os.environ.pop("SPECEDGE_MODELS", None)
        else:
            os.environ["SPECEDGE_MODELS"] = old
