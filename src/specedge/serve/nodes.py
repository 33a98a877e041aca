"""The two node processes of a real serving run: the draft node (SBS) and the verify node (MBS).

Each node pins itself to one core (``os.sched_setaffinity``) with one torch thread, loads its model
(:func:`specedge.record.lm.load_lm`), wraps it in the ragged serving engine (:mod:`specedge.serve.engine`), warms
up, times its speed probe (:mod:`specedge.serve.probe`; again after serving, sent with its records), and then
serves the plan's jobs in the round-robin order of docs/model.md section 5: (round 0, batch 0), (0, 1), ...,
(1, 0), ...; a batch whose members have all finished drops out.

Draft node, job (n, m): wait until the batch's inputs are there (round 0: its tasks' uploads, or all uploads under
``release = all-uploads``; later rounds: the verification result of (n - 1, m)); feed the tokens the draft's cache
lacks (round 0: the left-padded prompts, a ``prefill`` pass; later: the corrected/bonus token, plus the last draft
when all l were accepted) and draft l tokens (l - 1 more ``decode`` passes); send tokens and distributions. In
``sd-serial`` mode it also waits for the previous job's verification (no overlap).

Verify node, job (n, m): one ``verify`` pass over each member's uncached committed tokens plus its l drafts, then
standard speculative sampling (:func:`specedge.record.sampler.verify`), crop of the rejected drafts, and the
result back to the draft node. It stamps first-token and completion times (the instant the round's committed
tokens are known) and one ``round`` row per member.

Random numbers: at T > 0 each task has its own generators (:func:`specedge.record.recorder.request_generator`
seeded with (seed, "task-<k>/draft") and (seed, "task-<k>/verify")), so a task's text does not depend on how it
was batched; at T = 0 decoding is greedy and uses none.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

import numpy as np

from specedge.serve.engine import PAD_TOKEN_ID
from specedge.serve.protocol import (
    DraftJob,
    NodeConfig,
    NodeRecords,
    Ready,
    Start,
    Stop,
    TaskArrival,
    VerifyResult,
)

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


class DraftNode(_Node):
    role = "draft"

    def __init__(self, cfg, coord, peer) -> None:
        super().__init__(cfg, coord, peer)
        self.arrivals: dict[int, float] = {}
        self.tasks: dict[int, object] = {}
        self.results: dict[tuple[int, int], tuple[VerifyResult, float]] = {}

    def pump(self) -> None:
        """Receive one message from the uplink or the verify node (blocking) and file it."""
        for conn in wait([self.coord, self.peer]):
            msg = conn.recv()
            t = self.now()
            if isinstance(msg, TaskArrival):
                self.arrivals[msg.task.task] = t
                self.tasks[msg.task.task] = msg.task
            elif isinstance(msg, VerifyResult):
                self.results[(msg.batch, msg.round)] = (msg, t)
            else:
                raise RuntimeError(f"draft node: unexpected message {type(msg).__name__}")

    def wait_uploads(self, members) -> float:
        need = range(len(self.cfg.input_tokens)) if self.cfg.release == "all-uploads" else members
        while any(k not in self.arrivals for k in need):
            self.pump()
        return max(self.arrivals[k] for k in need)

    def wait_result(self, key) -> tuple[VerifyResult, float]:
        while key not in self.results:
            self.pump()
        return self.results[key]

    def draft(self, batch: _Batch, round_: int):
        """l draft tokens per member; returns tokens (B, l) int64 and q (B, l, V) float32 or None (T = 0)."""
        torch = self.torch
        from specedge.record.sampler import probabilities, sample

        temp = self.cfg.temperature
        first = round_ == 0
        l = batch.l
        base = batch.cache.length.numpy() + np.asarray([len(p) for p in batch.pending])
        tokens_in, counts = self.pad(batch.pending, first)
        b, x = tokens_in.shape
        logits = self.forward(batch, tokens_in, counts, "prefill" if first else "decode", round_)
        last = torch.full((b,), x - 1, dtype=torch.int64) if first else counts - 1
        step_logits = logits[torch.arange(b), last]
        ones = torch.ones(b, dtype=torch.int64)
        drafts = torch.empty((b, l), dtype=torch.int64)
        qs = [] if temp > 0 else None
        for j in range(l):
            if temp == 0:
                d = step_logits.argmax(dim=-1)
            else:
                q = probabilities(step_logits, temp)
                d = torch.stack([sample(q[i], g) for i, g in enumerate(batch.generators)])
                qs.append(q.to(torch.float32).numpy())
            drafts[:, j] = d
            if j < l - 1:
                step_logits = self.forward(batch, d[:, None], ones, "decode", round_)[:, 0]
        tokens = drafts.numpy()
        batch.base = base
        batch.drafts = tokens
        return tokens, (np.stack(qs, axis=1) if qs is not None else None)

    def apply(self, batch: _Batch, result: VerifyResult) -> None:
        if tuple(result.tasks) != tuple(batch.tasks):
            raise RuntimeError(f"draft node: result of batch {batch.index} for tasks {result.tasks}, "
                               f"expected {batch.tasks}")
        l = batch.l
        a = np.asarray(result.accepted, dtype=np.int64)
        batch.cache.crop((batch.base + np.minimum(a, l - 1)).tolist())
        batch.pending = [([int(batch.drafts[i, l - 1])] if a[i] == l else []) + [int(result.next_token[i])]
                         for i in range(len(a))]
        batch.keep(~np.asarray(result.finished, dtype=bool))

    def serve(self) -> None:
        cfg = self.cfg
        batches = [_Batch(m, list(members), cfg.speculation_length[m]) for m, members in enumerate(cfg.batches)]
        live = list(range(len(batches)))
        previous = None  # key of the last job sent (sd-serial waits for its verification)
        n = 0
        while live:
            still = []
            for m in live:
                batch = batches[m]
                if n == 0:
                    ready = self.wait_uploads(batch.tasks)
                    if cfg.mode == "sd-serial" and previous is not None:
                        ready = max(ready, self.wait_result(previous)[1])
                    start = self.now()
                    batch.cache = self.engine.new_cache(len(batch.tasks), self.capacity(batch.tasks))
                    batch.pending = [self.tasks[k].prompt_ids.tolist() for k in batch.tasks]
                    batch.generators = self.generators(batch.tasks)
                else:
                    result, ready = self.wait_result((m, n - 1))
                    if cfg.mode == "sd-serial" and previous is not None:
                        ready = max(ready, self.wait_result(previous)[1])
                    start = self.now()
                    self.apply(batch, result)  # crop rejected drafts, drop finished members
                    if not batch.tasks:
                        continue
                prompts = tuple(np.asarray(p, dtype=np.int64) for p in batch.pending) if n == 0 else None
                tokens, q = self.draft(batch, n)
                self.peer.send(DraftJob(m, n, tuple(batch.tasks), tokens, q, prompts, self.now()))
                end = self.now()
                self.jobs.append({"node": "draft", "batch": m, "round": n, "batch_size": len(batch.tasks),
                                  "speculation_length": batch.l, "ready_s": ready, "start_s": start, "end_s": end})
                previous = (m, n)
                still.append(m)
            live = still
            n += 1
        self.peer.send(Stop())

    def records(self) -> dict:
        return {**super().records(), "arrival": [{"task": k, "ready_s": t} for k, t in self.arrivals.items()]}


class VerifyNode(_Node):
    role = "verify"

    def __init__(self, cfg, coord, peer) -> None:
        super().__init__(cfg, coord, peer)
        self.rounds: list[dict] = []
        self.first_token: dict[int, float] = {}
        self.completion: dict[int, float] = {}
        self.num_rounds: dict[int, int] = {}

    def verify(self, batch: _Batch, job: DraftJob):
        torch = self.torch
        from specedge.record.sampler import probabilities, verify

        l = batch.l
        drafts = np.asarray(job.tokens, dtype=np.int64)
        first = job.round == 0
        batch.base = batch.cache.length.numpy() + np.asarray([len(p) for p in batch.pending])
        tokens_in, counts_t = self.pad([p + d.tolist() for p, d in zip(batch.pending, drafts)], first)
        logits = self.forward(batch, tokens_in, counts_t, "verify", job.round)
        x = int(tokens_in.shape[1])
        counts = counts_t.numpy()
        ends = np.full(len(counts), x) if first else counts
        index = torch.as_tensor(ends[:, None] - (l + 1) + np.arange(l + 1)[None, :])
        sel = logits[torch.arange(len(counts))[:, None], index]  # (B, l + 1, V)
        p = probabilities(sel, self.cfg.temperature)
        d = torch.as_tensor(drafts)
        if job.q is None:
            q = torch.zeros((len(counts), l, p.shape[-1]), dtype=p.dtype).scatter_(-1, d[..., None], 1.0)
            out = verify(d, q, p, None)  # greedy: the outcome uses no random number
            accepted, nxt = out.accepted.numpy(), out.next_token.numpy()
        else:
            q = torch.as_tensor(job.q).to(p.dtype)
            accepted = np.empty(len(counts), dtype=np.int64)
            nxt = np.empty(len(counts), dtype=np.int64)
            for i, g in enumerate(batch.generators):
                out = verify(d[i : i + 1], q[i : i + 1], p[i : i + 1], g)
                accepted[i], nxt[i] = int(out.accepted[0]), int(out.next_token[0])
        batch.cache.crop((batch.base + accepted).tolist())
        batch.pending = [[int(t)] for t in nxt]
        return accepted, nxt

    def serve(self) -> None:
        cfg = self.cfg
        batches: dict[int, _Batch] = {}
        while True:
            msg = self.peer.recv()
            ready = self.now()
            if isinstance(msg, Stop):
                return
            if not isinstance(msg, DraftJob):
                raise RuntimeError(f"verify node: unexpected message {type(msg).__name__}")
            m, n = msg.batch, msg.round
            if n == 0:
                batch = _Batch(m, list(msg.tasks), cfg.speculation_length[m])
                batch.cache = self.engine.new_cache(len(batch.tasks), self.capacity(batch.tasks))
                batch.pending = [np.asarray(p).tolist() for p in msg.prompts]
                batch.generators = self.generators(batch.tasks)
                batch.committed = np.zeros(len(batch.tasks), dtype=np.int64)
                batches[m] = batch
            batch = batches[m]
            if tuple(msg.tasks) != tuple(batch.tasks):
                raise RuntimeError(f"verify node: job ({m}, {n}) for tasks {msg.tasks}, expected {batch.tasks}")
            start = self.now()
            accepted, nxt = self.verify(batch, msg)
            outputs = np.asarray([cfg.output_tokens[k] for k in batch.tasks])
            tokens = np.minimum(accepted + 1, outputs - batch.committed)
            batch.committed = batch.committed + tokens
            finished = batch.committed >= outputs
            done = self.now()  # the round's committed tokens are known: first token / completion
            for i, k in enumerate(batch.tasks):
                self.rounds.append({"task": k, "batch": m, "round": n, "drafted": batch.l,
                                    "accepted": int(accepted[i]), "tokens": int(tokens[i]), "end_s": done})
                self.num_rounds[k] = n + 1
                if n == 0:
                    self.first_token[k] = done
                if finished[i]:
                    self.completion[k] = done
            self.peer.send(VerifyResult(m, n, tuple(batch.tasks), accepted, nxt, finished, self.now()))
            batch.keep(~finished)  # finished members leave the batch
            self.jobs.append({"node": "verify", "batch": m, "round": n, "batch_size": len(msg.tasks),
                              "speculation_length": batch.l, "ready_s": ready, "start_s": start,
                              "end_s": self.now()})

    def records(self) -> dict:
        tasks = [{"task": k, "first_token_s": self.first_token[k], "completion_s": self.completion.get(k),
                  "round": self.num_rounds[k]} for k in self.first_token]
        return {**super().records(), "round": self.rounds, "outcome": tasks}


def node_main(cfg: NodeConfig, coord: Connection, peer: Connection) -> None:
    """Entry point of a node process (spawned): set up, serve, report records (or the error) to the coordinator."""
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
