"""A real online run: requests arrive over time, their uploads share the uplink, the draft node batches them.

The coordinator plays the users as in :mod:`specedge.serve.run`, with a workload instead of a plan: request k
arrives at ``workload.arrival_s[k]`` (Poisson/Gamma from :func:`specedge.online.workload.synthetic`, or a recorded
trace), its upload over the shared uplink ends at the online engine's own upload end for the run's uplink rule
(:func:`specedge.online.uplink.upload_end_s`, equal share by default: the uplink is emulated, so the model's rule
is the emulation), and it is sent to the draft node at t0 + that end. The nodes
(:mod:`specedge.serve.online_nodes`) do FCFS continuous batching themselves. The run is a ``run`` dataset
(:mod:`specedge.serve.dataset`) whose metadata has ``online``: the workload (arrival times, distances), the policy,
l and the engine settings; task rows carry ``upload_s`` (upload end), ``ready_s`` (arrival at the draft node),
``start_s`` (start of the job it joined), ``first_token_s``, ``completion_s`` and ``round`` (rounds taken).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from specedge.errors import InputError
from specedge.serve.protocol import NodeConfig, WorkloadTask
from specedge.serve.run import WARMUP_PASSES, RealRun, ServeError, _check_cores, drive_nodes

#: The online policies a real run implements (the admission rule is the draft node's code).
SERVED_ONLINE_POLICIES = ("fcfs",)


@dataclass(frozen=True)
class OnlineServeSetup:
    """Everything one real online run needs (``scenario`` for the pair, uplink and memory parameters)."""

    scenario: object
    workload: object  # specedge.online.workload.Workload, arrival order
    speculation_length: int
    draft: object
    target: object
    request_ids: tuple[str, ...]
    prompt_ids: tuple[np.ndarray, ...]
    num_slots: int = 2
    max_batch_size: int = 32
    uplink_rule: str = "equal-share"
    policy: str = "fcfs"
    arrivals: dict = dataclasses.field(default_factory=dict)  # how the workload was made (provenance)
    temperature: float = 0.0
    seed: int = 0
    cores: tuple[int | None, int | None] = (0, 1)
    threads: int = 1
    warmup_passes: int = WARMUP_PASSES
    timeout_s: float = 1800.0
    prompt_source: str = ""


def upload_ends(sc, workload, rule: str) -> np.ndarray:
    """Each request's upload end under ``rule``, exactly as the online engine computes it."""
    from specedge.latency import network
    from specedge.online.uplink import upload_end_s

    payload = workload.input_tokens * sc.params.bits_per_token
    eta = network.spectral_efficiency(workload.distance_m, sc.params)
    return upload_end_s(rule, workload.arrival_s, payload, eta, sc.bandwidth_hz)


def memory_rule(sc) -> tuple[float, float, float]:
    """(W, KV bytes per token, M) of the SBS memory rule, as the online engine reads them."""
    from specedge.online.engine import _memory

    return tuple(float(x) for x in _memory(sc))


def _configs(setup: OnlineServeSetup):
    from specedge.serve.online_nodes import OnlineSpec

    w, sc = setup.workload, setup.scenario
    n = w.num_requests
    warm = tuple(int(k) for k in np.argsort(-w.input_tokens, kind="stable")[: min(setup.max_batch_size, n)])
    common = dict(threads=setup.threads, batches=(warm,), speculation_length=(int(setup.speculation_length),),
                  mode="sd-pipeline", release="batch-uploads",
                  input_tokens=tuple(int(v) for v in w.input_tokens),
                  output_tokens=tuple(int(v) for v in w.output_tokens), temperature=float(setup.temperature),
                  seed=int(setup.seed), warmup_passes=int(setup.warmup_passes))
    configs = {"draft": NodeConfig(role="draft", model_path=setup.draft.path, model_name=sc.draft.name,
                                   loader=setup.draft.loader, core=setup.cores[0], **common),
               "verify": NodeConfig(role="verify", model_path=setup.target.path, model_name=sc.target.name,
                                    loader=setup.target.loader, core=setup.cores[1], **common)}
    spec = OnlineSpec(int(setup.speculation_length), int(setup.num_slots), int(setup.max_batch_size),
                      memory_rule(sc))
    return configs, spec


def serve_online(setup: OnlineServeSetup, *, progress=None) -> RealRun:
    """Serve the workload for real on two pinned node processes and return what they measured."""
    import multiprocessing as mp

    from specedge.serve.online_nodes import online_node_main

    w = setup.workload
    n = w.num_requests
    if setup.policy not in SERVED_ONLINE_POLICIES:
        raise InputError(f"online policy {setup.policy!r} cannot be served for real; expected one of "
                         f"{', '.join(SERVED_ONLINE_POLICIES)}")
    if setup.speculation_length < 1:
        raise InputError(f"--speculation-length must be >= 1 (the real run serves SD), got {setup.speculation_length}")
    if len(setup.prompt_ids) != n or any(len(p) != k for p, k in zip(setup.prompt_ids, w.input_tokens)):
        raise InputError("real online run: one prompt per request, of the request's input_tokens length, is needed")
    _check_cores(setup.cores)
    upload = upload_ends(setup.scenario, w, setup.uplink_rule)
    say = progress or (lambda _msg: None)
    ctx = mp.get_context("spawn")
    configs, spec = _configs(setup)
    session = drive_nodes(
        ctx, {role: (online_node_main, (cfg, spec)) for role, cfg in configs.items()}, setup.cores, upload,
        lambda k: WorkloadTask(k, setup.request_ids[k], np.asarray(setup.prompt_ids[k], dtype=np.int64),
                               int(w.output_tokens[k])),
        timeout_s=setup.timeout_s, say=say,
        serving=f"serving {n} requests ({w.name}), FCFS continuous batching, l = {setup.speculation_length}",
        name="specedge-online-{role}-node")
    parts = _assemble(setup, upload, session.records)
    metadata = _metadata(setup, session.ready, parts, session.load_before, session.load_after, session.wall_s)
    metadata.update(session.usage_metadata())
    return RealRun(parts=parts, metadata=metadata)


def _assemble(setup: OnlineServeSetup, upload: np.ndarray, records: dict) -> dict[str, pd.DataFrame]:
    w = setup.workload
    n = w.num_requests
    d, v = records["draft"].records, records["verify"].records
    idx = np.arange(n)
    arrival = pd.DataFrame(d["arrival"]).set_index("task")["ready_s"].reindex(idx)
    joined = pd.DataFrame(d["joined"], columns=["task", "batch", "round", "start_s"]).set_index("task").reindex(idx)
    outcome = pd.DataFrame(v["outcome"]).set_index("task").reindex(idx)
    if outcome["completion_s"].isna().any() or joined["start_s"].isna().any():
        raise ServeError(f"real online run: {int(outcome['completion_s'].notna().sum())} of {n} requests completed")
    tasks = pd.DataFrame({
        "task": idx, "request_id": list(setup.request_ids), "batch": joined["batch"].to_numpy(np.int64),
        "speculation_length": int(setup.speculation_length), "input_tokens": w.input_tokens,
        "output_tokens": w.output_tokens, "upload_s": upload, "ready_s": arrival.to_numpy(),
        "start_s": joined["start_s"].to_numpy(), "first_token_s": outcome["first_token_s"].to_numpy(),
        "completion_s": outcome["completion_s"].to_numpy(), "round": outcome["round"].to_numpy(np.int64),
    })
    return {"task": tasks, "job": pd.DataFrame(d["job"] + v["job"]), "pass": pd.DataFrame(d["pass"] + v["pass"]),
            "round": pd.DataFrame(v["round"])}


def _metadata(setup: OnlineServeSetup, ready: dict, parts: dict, load_before, load_after, wall_s: float) -> dict:
    from specedge.record.recorder import SAMPLER_DESCRIPTION, cpu_model, environment

    sc, w = setup.scenario, setup.workload
    rounds = parts["round"]
    draft, target = ready["draft"].model, ready["verify"].model
    verify_jobs = parts["job"][parts["job"]["node"] == "verify"]
    return {
        "source": "recorded", "kind": "run", "pair": sc.pair,
        "draft_model": draft.get("name"), "target_model": target.get("name"),
        "draft_weights_sha256": draft.get("weights_sha256"), "target_weights_sha256": target.get("weights_sha256"),
        "draft": draft, "target": target, "mode": "sd-pipeline",
        "online": {
            "policy": setup.policy, "speculation_length": int(setup.speculation_length),
            "config": {"num_slots": int(setup.num_slots), "max_batch_size": int(setup.max_batch_size),
                       "uplink_rule": setup.uplink_rule, "mode": "sd-pipeline"},
            "workload": {**setup.arrivals, "name": w.name, "requests": int(w.num_requests)},
            "arrival_s": [float(x) for x in w.arrival_s],
            "memory_rule": list(memory_rule(sc)),
            "mean_verify_batch_size": float(verify_jobs["batch_size"].mean()),
        },
        "scenario": {"preset": sc.preset, "overrides": dict(sc.spec.get("overrides", {})), "seed": sc.seed,
                     "num_tasks": int(w.num_requests), "release": sc.params.release,
                     "params": dataclasses.asdict(sc.params), "distance_m": [float(x) for x in w.distance_m]},
        "temperature": float(setup.temperature), "sampler": SAMPLER_DESCRIPTION[setup.temperature == 0],
        "seed": int(setup.seed), "prompt_source": setup.prompt_source,
        "nodes": {role: {"pid": r.pid, "core": r.core, "affinity": list(r.affinity), "torch_threads": r.torch_threads,
                         "warmup_s": round(r.warmup_s, 4)} for role, r in ready.items()},
        "transport": "multiprocessing.Pipe (spawn context), pickled numpy arrays; coordinator on the draft core",
        "pipe": ready["draft"].pipe,
        "clock": "time.monotonic (CLOCK_MONOTONIC, shared by all processes); times are seconds since t0",
        "engine": {"draft": draft.get("engine"), "verify": target.get("engine")},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_model": cpu_model(), **environment(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_wall_s": round(wall_s, 3), "makespan_s": float(parts["task"]["completion_s"].max()),
        "rounds": int(len(rounds)), "tau_mean_tokens_per_round": float(1.0 + rounds["accepted"].mean()),
        "licence": "generated from held-out CPython stdlib prompts (PSF licence)", "note": "",
    }


def is_online(meta: dict) -> bool:
    """Whether a ``run`` dataset's metadata is an online run's (no plan; compared by the online simulator)."""
    return bool((meta or {}).get("online"))
