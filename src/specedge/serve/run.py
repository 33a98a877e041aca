"""The coordinator of a real run: spawn the two nodes, emulate the uplink, collect what they measured.

The coordinator process plays the users and their uplink: once both nodes are loaded, pinned and warmed up it
fixes the run's origin t0 (``START_DELAY_S`` ahead, on the shared monotonic clock), and sends task k to the draft
node at t0 + upload_s[k], where upload_s is the replay's own upload time for the plan's bandwidth
(:func:`specedge.replay.prepare`). It runs on the draft node's core (the uplink ends at the SBS) and sleeps
between arrivals. Afterwards it assembles the ``run`` dataset (:mod:`specedge.serve.dataset`) and its provenance.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait

import numpy as np
import pandas as pd

from specedge.errors import InputError, SpecedgeError
from specedge.serve.protocol import NodeConfig, NodeRecords, Ready, Start, TaskArrival, WorkloadTask
from specedge.serve.quiet import during

#: Seconds between the start signal and the run's origin t0 (both nodes are idle and waiting by then).
START_DELAY_S = 0.2
#: Seconds the coordinator waits for the nodes to load and warm up.
READY_TIMEOUT_S = 300.0
#: Forward passes per shape family in each node's warm-up.
WARMUP_PASSES = 8


def cpu_times() -> dict[int, dict[str, float]]:
    """Per-core busy and steal seconds since boot from /proc/stat (empty where it cannot be read)."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for line in lines:
        name, *vals = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            v = [int(x) for x in vals[:8]]
            user, nice, system, idle, iowait, irq, softirq, steal = v + [0] * (8 - len(v))
            out[int(name[3:])] = {"busy_s": (user + nice + system + irq + softirq + steal) / tick,
                                  "steal_s": steal / tick}
    return out


def core_load(before: dict, after: dict, window_s: float, nodes: dict, cores) -> dict:
    """What else ran on the nodes' cores during the run: per node, its core's busy share of the window, its own
    share (the node process's CPU time), and the rest ("foreign": other processes, the coordinator, the
    hypervisor's steal)."""
    out = {}
    for role, core in zip(("draft", "verify"), cores):
        if core is None or core not in before or core not in after or window_s <= 0:
            continue
        busy = (after[core]["busy_s"] - before[core]["busy_s"]) / window_s
        own = nodes.get(role, {}).get("process_cpu_s", float("nan")) / window_s
        out[role] = {"core": core, "busy_share": round(busy, 4), "own_share": round(own, 4),
                     "foreign_share": round(busy - own, 4),
                     "steal_share": round((after[core]["steal_s"] - before[core]["steal_s"]) / window_s, 4)}
    return out


class ServeError(SpecedgeError):
    """A node failed or the run timed out (exit status 1)."""


@dataclass(frozen=True)
class ServeSetup:
    """Everything one real run needs. ``cores`` = (draft core, verify core); None leaves affinities alone."""

    scenario: object
    plan: object
    draft: object  # specedge.serve.workload.ModelSource
    target: object
    request_ids: tuple[str, ...]
    prompt_ids: tuple[np.ndarray, ...]
    temperature: float = 0.0
    seed: int = 0
    cores: tuple[int | None, int | None] = (0, 1)
    threads: int = 1
    warmup_passes: int = WARMUP_PASSES
    timeout_s: float = 1800.0
    prompt_source: str = ""


@dataclass(frozen=True)
class RealRun:
    """A finished run: per-record frames (task, job, pass, round) and provenance metadata."""

    parts: dict = field(repr=False)
    metadata: dict = field(repr=False)

    @property
    def tasks(self) -> pd.DataFrame:
        return self.parts["task"]

    @property
    def makespan_s(self) -> float:
        return float(self.parts["task"]["completion_s"].max())


def _check_cores(cores) -> None:
    allowed = os.sched_getaffinity(0)
    for c in cores:
        if c is not None and c not in allowed:
            raise InputError(f"core {c} is not available to this process (available: {sorted(allowed)})")


def _recv_all(conns: dict, procs: dict, kind, deadline: float) -> dict:
    """One message of type ``kind`` from each node; ServeError if a node reports an error, dies or times out."""
    got: dict = {}
    while len(got) < len(conns):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServeError(f"real run: timed out waiting for {kind.__name__} from "
                             f"{', '.join(r for r in conns if r not in got)} node")
        pending = {r: c for r, c in conns.items() if r not in got}
        ready = wait(list(pending.values()) + [procs[r].sentinel for r in pending], timeout=left)
        for role, conn in pending.items():
            if conn in ready or conn.poll():
                try:
                    msg = conn.recv()
                except EOFError:
                    raise ServeError(f"real run: the {role} node closed its pipe (exit code "
                                     f"{procs[role].exitcode})") from None
                if isinstance(msg, NodeRecords) and msg.error:
                    raise ServeError(f"real run: the {role} node failed:\n{msg.error}")
                if not isinstance(msg, kind):
                    raise ServeError(f"real run: expected {kind.__name__} from the {role} node, got "
                                     f"{type(msg).__name__}")
                got[role] = msg
            elif procs[role].sentinel in ready and not conn.poll():
                raise ServeError(f"real run: the {role} node exited (code {procs[role].exitcode}) before sending "
                                 f"{kind.__name__}")
    return got


@dataclass
class NodeSession:
    """What one drive of the two node processes returned and measured (:func:`drive_nodes`)."""

    ready: dict
    records: dict
    sent_s: np.ndarray
    load_before: tuple
    load_after: tuple
    wall_s: float
    cores: tuple
    window_s: float
    stat_before: dict
    stat_after: dict
    coord_cpu_s: float

    def usage_metadata(self) -> dict:
        """The run's ``cpu_usage`` (per-core load over the run window), ``foreign_work`` during it and each node's
        ``speed_probe`` before and after serving (:func:`speed_probe_metadata`)."""
        usage = {role: r.records.get("usage", {}) for role, r in self.records.items()}
        # foreign work during the run (specedge.serve.quiet): the coordinator runs on the draft core, so it is ours
        own = {"draft": usage.get("draft", {}).get("process_cpu_s", 0.0) + self.coord_cpu_s,
               "verify": usage.get("verify", {}).get("process_cpu_s", 0.0)}
        return {
            "cpu_usage": {"window_s": round(self.window_s, 4), "nodes": usage,
                          "cores": core_load(self.stat_before, self.stat_after, self.window_s, usage, self.cores),
                          "source": "/proc/stat per-core jiffies over the run window, node process CPU time"},
            "foreign_work": {"during": during(self.stat_before, self.stat_after, self.window_s, own,
                                              dict(zip(("draft", "verify"), self.cores)))},
            "speed_probe": speed_probe_metadata(self.ready, self.records),
        }


def speed_probe_metadata(ready: dict, records: dict) -> dict:
    """Per node role, its speed probe (:func:`specedge.serve.probe.speed_probe`) ``before`` serving (sent in
    ``Ready``) and ``after`` (sent with its records; absent if the node could not probe again)."""
    out = {}
    for role in ("draft", "verify"):
        entry = {}
        if role in ready and ready[role].probe:
            entry["before"] = ready[role].probe
        after = records[role].records.get("probe_after") if role in records else None
        if after:
            entry["after"] = after
        out[role] = entry
    return out


def drive_nodes(ctx, targets: dict, cores, upload_s: np.ndarray, task_of: Callable[[int], WorkloadTask], *,
                timeout_s: float, say: Callable[[str], None], serving: str, name: str) -> NodeSession:
    """Spawn the draft and verify node processes, wait until both are warm, start them at one t0, send task k to
    the draft node at t0 + ``upload_s[k]`` and collect both nodes' records; the processes are reaped whatever
    happens. ``targets``: role -> (node entry point, its arguments before the coordinator and peer pipe ends);
    ``name``: the process name, with ``{role}``. Static and online real runs both serve through this."""
    coord_end, node_end, procs, conns = {}, {}, {}, {}
    peer_draft, peer_verify = ctx.Pipe(duplex=True)
    peers = {"draft": peer_draft, "verify": peer_verify}
    old_affinity = os.sched_getaffinity(0)
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        for role in ("draft", "verify"):
            target, args = targets[role]
            coord_end[role], node_end[role] = ctx.Pipe(duplex=True)
            procs[role] = ctx.Process(target=target, args=(*args, node_end[role], peers[role]),
                                      name=name.format(role=role), daemon=True)
            procs[role].start()
            node_end[role].close()
            conns[role] = coord_end[role]
        peer_draft.close()
        peer_verify.close()
        say("loading and warming up both nodes")
        ready: dict[str, Ready] = _recv_all(conns, procs, Ready, time.monotonic() + READY_TIMEOUT_S)
        if cores[0] is not None:
            os.sched_setaffinity(0, {cores[0]})
        t0 = time.monotonic() + START_DELAY_S
        stat_before, stat_t, coord_cpu = cpu_times(), time.monotonic(), time.process_time()
        for conn in conns.values():
            conn.send(Start(t0))
        say(serving)
        sent_s = np.empty(len(upload_s))
        for task in np.argsort(upload_s, kind="stable"):
            delay = t0 + upload_s[task] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent_s[task] = time.monotonic() - t0
            conns["draft"].send(TaskArrival(task_of(int(task)), float(upload_s[task])))
        records: dict[str, NodeRecords] = _recv_all(conns, procs, NodeRecords, time.monotonic() + timeout_s)
        stat_after, window_s = cpu_times(), time.monotonic() - stat_t
        coord_cpu = time.process_time() - coord_cpu
    finally:
        os.sched_setaffinity(0, old_affinity)
        for proc in procs.values():
            if proc.pid is None:  # never started
                continue
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
        for conn in conns.values():
            conn.close()
    wall_s = time.monotonic() - started
    return NodeSession(ready=ready, records=records, sent_s=sent_s, load_before=load_before,
                       load_after=os.getloadavg(), wall_s=wall_s, cores=tuple(cores), window_s=window_s,
                       stat_before=stat_before, stat_after=stat_after, coord_cpu_s=coord_cpu)


def _configs(setup: ServeSetup) -> dict[str, NodeConfig]:
    sc, plan = setup.scenario, setup.plan
    common = dict(
        threads=setup.threads, batches=tuple(tuple(b) for b in plan.batches),
        speculation_length=tuple(plan.speculation_length), mode=plan.mode, release=sc.params.release,
        input_tokens=tuple(int(v) for v in sc.tasks["input_tokens"]),
        output_tokens=tuple(int(v) for v in sc.tasks["output_tokens"]), temperature=float(setup.temperature),
        seed=int(setup.seed), warmup_passes=int(setup.warmup_passes),
    )
    return {
        "draft": NodeConfig(role="draft", model_path=setup.draft.path, model_name=sc.draft.name,
                            loader=setup.draft.loader, core=setup.cores[0], **common),
        "verify": NodeConfig(role="verify", model_path=setup.target.path, model_name=sc.target.name,
                             loader=setup.target.loader, core=setup.cores[1], **common),
    }


def serve_real(setup: ServeSetup, *, progress: Callable[[str], None] | None = None) -> RealRun:
    """Run the plan for real on two pinned node processes and return what they measured."""
    import multiprocessing as mp

    from specedge.replay import prepare
    from specedge.serve.nodes import node_main

    sc, plan = setup.scenario, setup.plan
    prep = prepare(sc, plan)
    k = sc.num_tasks
    if len(setup.prompt_ids) != k or any(len(p) != n for p, n in zip(setup.prompt_ids, sc.tasks["input_tokens"])):
        raise InputError("real run: one prompt per task, of the task's input_tokens length, is needed")
    _check_cores(setup.cores)
    say = progress or (lambda _msg: None)
    ctx = mp.get_context("spawn")
    upload = np.asarray(prep.upload_s, dtype=np.float64)
    output = sc.tasks["output_tokens"].to_numpy()
    session = drive_nodes(
        ctx, {role: (node_main, (cfg,)) for role, cfg in _configs(setup).items()}, setup.cores, upload,
        lambda task: WorkloadTask(int(task), setup.request_ids[task],
                                  np.asarray(setup.prompt_ids[task], dtype=np.int64), int(output[task])),
        timeout_s=setup.timeout_s, say=say, serving=f"serving {k} tasks in {len(plan.batches)} batches",
        name="specedge-{role}-node")
    ready, records, sent_s = session.ready, session.records, session.sent_s
    parts = _assemble(setup, prep, records, sent_s)
    metadata = _metadata(setup, ready, parts, session.load_before, session.load_after, session.wall_s)
    return RealRun(parts=parts, metadata={**metadata, **session.usage_metadata()})


def _assemble(setup: ServeSetup, prep, records: dict, sent_s: np.ndarray) -> dict[str, pd.DataFrame]:
    sc, plan = setup.scenario, setup.plan
    d, v = records["draft"].records, records["verify"].records
    arrival = pd.DataFrame(d["arrival"]).set_index("task")["ready_s"]
    outcome = pd.DataFrame(v["outcome"]).set_index("task")
    k = sc.num_tasks
    if len(outcome) != k or outcome["completion_s"].isna().any():
        raise ServeError(f"real run: {int(outcome['completion_s'].notna().sum())} of {k} tasks completed")
    idx = np.arange(k)
    tasks = pd.DataFrame({
        "task": idx,
        "request_id": list(setup.request_ids),
        "batch": prep.batch_of[np.argsort(prep.order)],
        "speculation_length": np.asarray(plan.speculation_length)[prep.batch_of[np.argsort(prep.order)]],
        "input_tokens": sc.tasks["input_tokens"].to_numpy(),
        "output_tokens": sc.tasks["output_tokens"].to_numpy(),
        "upload_s": np.asarray(prep.upload_s, dtype=np.float64),
        "ready_s": arrival.reindex(idx).to_numpy(),
        "first_token_s": outcome["first_token_s"].reindex(idx).to_numpy(),
        "completion_s": outcome["completion_s"].reindex(idx).to_numpy(),
        "round": outcome["round"].reindex(idx).to_numpy(),
    })
    jobs = pd.DataFrame(d["job"] + v["job"])
    passes = pd.DataFrame(d["pass"] + v["pass"])
    rounds = pd.DataFrame(v["round"])
    return {"task": tasks, "job": jobs, "pass": passes, "round": rounds}


def _metadata(setup: ServeSetup, ready: dict, parts: dict, load_before, load_after, wall_s: float) -> dict:
    from specedge.record.recorder import SAMPLER_DESCRIPTION, cpu_model, environment
    from specedge.serve.workload import plan_sha256

    sc, plan = setup.scenario, setup.plan
    rounds = parts["round"]
    env = environment()
    draft, target = ready["draft"].model, ready["verify"].model
    overrides = {k: v for k, v in sc.spec.get("overrides", {}).items()}
    return {
        "source": "recorded",
        "kind": "run",
        "pair": sc.pair,
        "draft_model": draft.get("name"),
        "target_model": target.get("name"),
        "draft_weights_sha256": draft.get("weights_sha256"),
        "target_weights_sha256": target.get("weights_sha256"),
        "draft": draft,
        "target": target,
        "plan": plan.to_dict(),
        "plan_sha256": plan_sha256(plan),
        "mode": plan.mode,
        "scenario": {"preset": sc.preset, "overrides": overrides, "seed": sc.seed, "num_tasks": sc.num_tasks,
                     "release": sc.params.release, "params": dataclasses.asdict(sc.params),
                     "distance_m": [float(x) for x in sc.tasks["distance_m"]]},
        "temperature": float(setup.temperature),
        "sampler": SAMPLER_DESCRIPTION[setup.temperature == 0],
        "seed": int(setup.seed),
        "prompt_source": setup.prompt_source,
        "nodes": {role: {"pid": r.pid, "core": r.core, "affinity": list(r.affinity), "torch_threads": r.torch_threads,
                         "warmup_s": round(r.warmup_s, 4)} for role, r in ready.items()},
        "transport": "multiprocessing.Pipe (spawn context), pickled numpy arrays; coordinator on the draft core",
        "pipe": ready["draft"].pipe,
        "clock": "time.monotonic (CLOCK_MONOTONIC, shared by all processes); times are seconds since t0",
        "engine": {"draft": draft.get("engine"), "verify": target.get("engine")},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_model": cpu_model(),
        **env,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_wall_s": round(wall_s, 3),
        "makespan_s": float(parts["task"]["completion_s"].max()),
        "rounds": int(len(rounds)),
        "tau_mean_tokens_per_round": float(1.0 + rounds["accepted"].mean()),
        "licence": "generated from held-out CPython stdlib prompts (PSF licence)",
        "note": "",
    }


def write_run(run: RealRun, dataset_id: str, *, store=None, extra: dict | None = None, replace: bool = False):
    """Write the run as a ``run`` dataset (validated) through the trace store; returns its DatasetInfo."""
    from specedge.serve.dataset import KIND, run_table
    from specedge.traces.store import open_store

    st = store if hasattr(store, "write") else open_store(store)
    table = run_table(run.parts, dataset_id)
    return st.write(table, dataset_id, kind=KIND, metadata={**run.metadata, **(extra or {}), "dataset": dataset_id},
                    replace=replace)
