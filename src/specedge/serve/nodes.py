"""The machinery the two node processes of a real serving run share, and the entry point that starts one.

The roles are their own modules: :class:`~specedge.serve.draft_node.DraftNode` (the draft node, SBS) in
:mod:`specedge.serve.draft_node` and :class:`~specedge.serve.verify_node.VerifyNode` (the verify node, MBS) in
:mod:`specedge.serve.verify_node`; both names are also importable from here (loaded on first use, so this module
imports neither and the import graph stays acyclic). This module holds :func:`pin`, the run clock, ``_Batch`` (a
batch's live members and KV cache), the ``_Node`` base class, :func:`node_main` (a static node process's entry
point) and :func:`run_node` (shared with the online nodes, :mod:`specedge.serve.online_nodes`).

Each node pins itself to one core (``os.sched_setaffinity``) with one torch thread, loads its model
(:func:`specedge.record.lm.load_lm`), wraps it in the ragged serving engine (:mod:`specedge.serve.engine`), warms
up, times its speed probe (:mod:`specedge.serve.probe`; again after serving, sent with its records), and then
serves the plan's jobs in the round-robin order of docs/model.md section 5: (round 0, batch 0), (0, 1), ...,
(1, 0), ...; a batch whose members have all finished drops out.

Random numbers: at T > 0 each task has its own generators (:func:`specedge.record.recorder.request_generator`
seeded with (seed, "task-<k>/draft") and (seed, "task-<k>/verify")), so a task's text does not depend on how it
was batched; at T = 0 decoding is greedy and uses none.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import numpy as np

from specedge.serve.engine import PAD_TOKEN_ID
from specedge.serve.protocol import DraftJob, NodeConfig, NodeRecords, Ready, Start, VerifyResult

#: Extra cache slots allocated per sequence beyond input + output + 2 l (the engine grows the cache if needed).
CACHE_SLACK_SLOTS = 8
#: Round trips of a job-sized message between the two nodes before the run, to measure the pipe's delay
#: (recorded in the run's metadata; ``specedge fidelity --fronthaul measured`` replays with half the median).
PING_ROUNDS = 200


def pin(core: int | None, threads: int) -> tuple[int, ...]:
    """Pin this process to ``core`` (None: leave the affinity) and torch to ``threads``; returns the affinity."""
    import torch

    if core is not None:
        os.sched_setaffinity(0, {int(core)})
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process (only possible before any parallel work)
        pass
    return tuple(sorted(os.sched_getaffinity(0)))


class _Clock:
    def __init__(self) -> None:
        self.t0 = None

    def __call__(self) -> float:
        return time.monotonic() - self.t0


@dataclass
class _Batch:
    """One batch's live members on a node, their KV cache and what the cache still lacks."""

    index: int
    tasks: list
    l: int
    cache: object = None
    pending: list = field(default_factory=list)  # per member: committed token ids not in the cache yet
    generators: list = field(default_factory=list)
    base: np.ndarray | None = None  # per member: cache length once its pending tokens are in (set by a job)
    drafts: np.ndarray | None = None  # draft node: the last job's tokens (B, l)
    committed: np.ndarray | None = None  # verify node: tokens committed so far per member

    def keep(self, live: np.ndarray) -> None:
        rows = np.flatnonzero(live)
        if rows.size == len(self.tasks):
            return
        self.cache.select(rows.tolist())
        self.tasks = [self.tasks[i] for i in rows]
        self.pending = [self.pending[i] for i in rows]
        self.generators = [self.generators[i] for i in rows]
        for name in ("base", "drafts", "committed"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[rows])


class _Node:
    role = ""

    def __init__(self, cfg: NodeConfig, coord: Connection, peer: Connection) -> None:
        self.cfg = cfg
        self.coord = coord
        self.peer = peer
        self.now = _Clock()
        self.passes: list[dict] = []
        self.jobs: list[dict] = []

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        import torch

        from specedge.serve.engine import ragged_engine
        from specedge.serve.workload import ModelSource, load_model

        self.torch = torch
        affinity = pin(self.cfg.core, self.cfg.threads)
        self.lm = load_model(ModelSource(self.cfg.model_name, self.cfg.loader, self.cfg.model_path))
        self.engine = ragged_engine(self.lm)
        torch.set_grad_enabled(False)  # serving never needs autograd
        started = time.monotonic()
        self.warmup()
        warmup_s = time.monotonic() - started
        pipe = self.ping()
        probe = self.probe()  # right after the ping, so both nodes probe at about the same time
        from specedge.serve.engine import engine_name

        model = {**self.lm.describe(), "engine": engine_name(self.engine)}
        self.coord.send(Ready(self.role, os.getpid(), self.cfg.core, affinity, torch.get_num_threads(), model,
                              warmup_s, pipe, probe))
        msg = self.coord.recv()
        if not isinstance(msg, Start):
            raise RuntimeError(f"{self.role} node: expected Start, got {type(msg).__name__}")
        self.now.t0 = msg.t0

    def ping(self) -> dict:
        """Exchange PING_ROUNDS job/result-sized messages with the other node; the draft node times them."""
        b = max(len(m) for m in self.cfg.batches)
        l = max(self.cfg.speculation_length)
        q = (np.zeros((b, l, self.lm.vocab_size), dtype=np.float32) if self.cfg.temperature > 0 else None)
        job = DraftJob(-1, -1, tuple(range(b)), np.zeros((b, l), dtype=np.int64), q, None, 0.0)
        res = VerifyResult(-1, -1, tuple(range(b)), np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64),
                           np.zeros(b, dtype=bool), 0.0)
        rtt = []
        for _ in range(PING_ROUNDS):
            if self.role == "draft":
                t = time.monotonic()
                self.peer.send(job)
                self.peer.recv()
                rtt.append(time.monotonic() - t)
            else:
                self.peer.recv()
                self.peer.send(res)
        if not rtt:
            return {}
        rtt = np.asarray(rtt)
        sent = "sent" if q is not None else "not sent"
        return {"rounds": PING_ROUNDS, "rtt_median_s": float(np.median(rtt)),
                "rtt_p90_s": float(np.percentile(rtt, 90)), "one_way_median_s": float(np.median(rtt) / 2),
                "message": f"DraftJob (b={b}, l={l}, q {sent}) there, VerifyResult back"}

    def probe(self) -> dict:
        """The node's speed probe (:func:`specedge.serve.probe.speed_probe` of its role's fixed pass)."""
        from specedge.serve.probe import speed_probe

        return speed_probe(self.engine, self.lm.vocab_size, self.role, torch=self.torch)

    def capacity(self, members) -> int:
        inputs = max(self.cfg.input_tokens[i] for i in members)
        outputs = max(self.cfg.output_tokens[i] for i in members)
        return inputs + outputs + 2 * max(self.cfg.speculation_length) + CACHE_SLACK_SLOTS

    def warmup(self) -> None:
        """Run every pass shape family the plan will use a few times on a scratch cache (not timed)."""
        torch = self.torch
        gen = torch.Generator().manual_seed(0)
        for m, members in enumerate(self.cfg.batches):
            b = len(members)
            l = self.cfg.speculation_length[m]
            i_max = max(self.cfg.input_tokens[i] for i in members)
            for _ in range(max(1, self.cfg.warmup_passes // 4)):
                cache = self.engine.new_cache(b, self.capacity(members))
                x = i_max if self.role == "draft" else i_max + l
                self.engine.forward(torch.randint(0, self.lm.vocab_size, (b, x), generator=gen),
                                    torch.full((b,), x, dtype=torch.int64), cache)
                for _ in range(self.cfg.warmup_passes):
                    x = 1 if self.role == "draft" else l + 1
                    self.engine.forward(torch.randint(0, self.lm.vocab_size, (b, x), generator=gen),
                                        torch.full((b,), x, dtype=torch.int64), cache)

    def generators(self, tasks) -> list:
        if self.cfg.temperature == 0:
            return [None] * len(tasks)
        from specedge.record.recorder import request_generator

        return [request_generator(self.cfg.seed, f"task-{k}/{self.role}") for k in tasks]

    # ------------------------------------------------------------------ passes
    def pad(self, rows: list, first: bool):
        """Token lists as a (B, x) tensor (left-padded in a first pass, right-padded after) and their counts."""
        torch = self.torch
        counts = [len(r) for r in rows]
        x = max(counts)
        tokens = torch.full((len(rows), x), PAD_TOKEN_ID, dtype=torch.int64)
        for i, r in enumerate(rows):
            if first:
                tokens[i, x - len(r):] = torch.as_tensor(r, dtype=torch.int64)
            else:
                tokens[i, : len(r)] = torch.as_tensor(r, dtype=torch.int64)
        return tokens, torch.as_tensor(counts, dtype=torch.int64)

    def forward(self, batch: _Batch, tokens, counts, phase: str, round_: int):
        """One timed ragged pass of ``tokens`` (B, x) with ``counts`` real tokens per row; returns the logits."""
        context = batch.cache.extent()
        cpu = time.thread_time()
        start = self.now()
        logits = self.engine.forward(tokens, counts, batch.cache)
        end = self.now()
        cpu = time.thread_time() - cpu
        self.passes.append({"node": self.role, "phase": phase, "batch": batch.index, "round": round_,
                            "batch_size": int(tokens.shape[0]), "new_tokens": int(tokens.shape[1]),
                            "context_tokens": context, "start_s": start, "end_s": end, "cpu_s": cpu})
        return logits

    def records(self) -> dict:
        return {"pass": self.passes, "job": self.jobs}


def __getattr__(name: str):
    """``DraftNode`` and ``VerifyNode`` from their modules, imported on first use (they import this module)."""
    if name == "DraftNode":
        from specedge.serve.draft_node import DraftNode

        return DraftNode
    if name == "VerifyNode":
        from specedge.serve.verify_node import VerifyNode

        return VerifyNode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def node_main(cfg: NodeConfig, coord: Connection, peer: Connection) -> None:
    """Entry point of a node process (spawned): set up, serve, report records (or the error) to the coordinator."""
    from specedge.serve.draft_node import DraftNode
    from specedge.serve.verify_node import VerifyNode

    run_node((DraftNode if cfg.role == "draft" else VerifyNode)(cfg, coord, peer), cfg.role, coord, peer)


def run_node(node, role: str, coord: Connection, peer: Connection) -> None:
    """Set ``node`` up, serve, and send its records with its CPU and wall time (or the error) to the coordinator;
    both pipe ends are closed whatever happens. Static and online node processes share it."""
    try:
        node.setup()
        cpu = time.process_time()
        wall = time.monotonic()
        node.serve()
        records = node.records()
        served_s = time.monotonic() - wall
        probe_cpu = time.process_time()
        try:  # the speed probe again, after serving (a failed probe costs the run nothing but this entry)
            records["probe_after"] = node.probe()
        except Exception:  # noqa: BLE001 - recorded; the run's own records stand
            records["probe_after_error"] = traceback.format_exc(limit=2)
        probe_cpu = time.process_time() - probe_cpu
        # process_cpu_s covers serving and the after-probe: both fall in the coordinator's run window
        records["usage"] = {"process_cpu_s": time.process_time() - cpu, "wall_s": served_s,
                            "serve_start_s": wall - node.now.t0, "probe_cpu_s": probe_cpu}
        coord.send(NodeRecords(role, records))
    except BaseException:  # noqa: BLE001 - reported to the coordinator, which stops the run cleanly
        try:
            coord.send(NodeRecords(role, {}, error=traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        coord.close()
        peer.close()
