"""The node processes of a real *online* run: FCFS continuous batching on the draft node, as the online engine.

The nodes are :mod:`specedge.serve.nodes`'s (same pinning, models, ragged engine, warm-up, pipe timing, pass and
job records); what changes is who is in a batch. The draft node follows docs/online.md "The model":

- it holds ``num_slots`` batches (slots), visited round-robin, one stage job (one round of one slot) per visit;
- a visit of a slot with members first waits for that slot's last verification result (its round boundary:
  max(draft node free, verify end + pipe)), applies it (crop rejected drafts) and drops finished members;
- then requests whose upload has ended (arrived at the draft node) join, in arrival (upload-end) order, while the
  slot has fewer than ``max_batch_size`` members and the SBS memory rule W + kv (b + 1)(I_pad + O_pad) <= M holds,
  I_pad/O_pad the longest input/output since the slot last emptied;
- an empty slot nobody can join is skipped; when every slot is empty the node waits for the next arrival;
- the round: continuing members run l decode passes on the slot's cache; joiners run on a cache of their own, a
  prefill pass over their left-padded prompts and l - 1 decode passes (the two groups' passes add: no fused or
  chunked prefill); then the joiners' cache rows are appended to the slot's cache.

The verify node verifies the continuing members (one pass, x = pending + l) and the joiners (one pass over prompt
+ l drafts) of each job separately and appends the joiners' rows the same way. Records use ``batch`` = slot and
``round`` = the slot's job index n, so (node, batch, round) still names one stage job; ``round`` rows carry that
job index (a task's own round r is its r-th row).
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from specedge.serve.nodes import DraftNode, VerifyNode, _Batch, run_node
from specedge.serve.protocol import DraftJob, NodeConfig, Stop, VerifyResult


@dataclass(frozen=True)
class OnlineSpec:
    """The online engine's settings a real run follows (docs/online.md), FCFS at a fixed l."""

    speculation_length: int
    num_slots: int = 2
    max_batch_size: int = 32
    memory: tuple[float, float, float] = (0.0, 0.0, float("inf"))  # W bytes, KV bytes per token, M bytes


def fits(memory, n: int, pad: float, omax: float, inp: int, out: int) -> bool:
    """The paper's memory rule for a slot of n + 1 members padded to max(pad, I) + max(O_max, O) tokens."""
    weights, per_token, total = memory
    return weights + per_token * (n + 1) * (max(pad, inp) + max(omax, out)) <= total


def merge_caches(a, b):
    """The rows of ragged cache ``b`` appended to ``a`` (capacities padded to the larger; offsets kept)."""
    import torch
    from torch.nn import functional as F

    cap = max(a.capacity, b.capacity)

    def grow(t):
        return F.pad(t, (0, 0, 0, cap - t.shape[2])) if t.shape[2] < cap else t

    a.keys = [torch.cat([grow(x), grow(y)]) for x, y in zip(a.keys, b.keys)]
    a.values = [torch.cat([grow(x), grow(y)]) for x, y in zip(a.values, b.values)]
    a.offset = torch.cat([a.offset, b.offset])
    a.length = torch.cat([a.length, b.length])
    return a


def _append(batch: _Batch, other: _Batch) -> _Batch:
    """``other``'s members appended to ``batch`` (tasks, cache, per-member state)."""
    if batch is None:
        return other
    merge_caches(batch.cache, other.cache)
    batch.tasks = batch.tasks + other.tasks
    batch.pending = batch.pending + other.pending
    batch.generators = batch.generators + other.generators
    for name in ("base", "drafts", "committed"):
        mine, theirs = getattr(batch, name), getattr(other, name)
        if mine is not None and theirs is not None:
            setattr(batch, name, np.concatenate([mine, theirs]))
    return batch


def _relabel(passes: list, mark: int, round_: int) -> None:
    """Passes appended since ``mark`` belong to job ``round_`` of their slot (the shared helpers stamp 0/1)."""
    for p in passes[mark:]:
        p["round"] = round_


@dataclass
class _Slot:
    batch: _Batch | None = None
    jobs: int = 0  # jobs run so far (the next one's index)
    pad: float = 0.0
    omax: float = 0.0


class OnlineDraftNode(DraftNode):
    def __init__(self, cfg: NodeConfig, spec: OnlineSpec, coord, peer) -> None:
        super().__init__(cfg, coord, peer)
        self.spec = spec
        self.joined: dict[int, tuple[int, int, float]] = {}  # task -> (slot, job, start of that job)

    def drain(self) -> None:
        """File every message already waiting (non-blocking), so admission sees every arrival up to now."""
        while self.coord.poll() or self.peer.poll():
            self.pump()

    def admit(self, slot: _Slot, n: int, queue: list, head: int) -> list:
        cfg, spec = self.cfg, self.spec
        pad, omax = (slot.pad, slot.omax) if n > 0 else (0.0, 0.0)
        joiners = []
        while head + len(joiners) < len(queue) and n + len(joiners) < spec.max_batch_size:
            k = queue[head + len(joiners)]
            if not fits(spec.memory, n + len(joiners), pad, omax, cfg.input_tokens[k], cfg.output_tokens[k]):
                break
            pad, omax = max(pad, cfg.input_tokens[k]), max(omax, cfg.output_tokens[k])
            joiners.append(k)
        slot.pad, slot.omax = pad, omax
        return joiners

    def serve(self) -> None:
        cfg, spec = self.cfg, self.spec
        total = len(cfg.input_tokens)
        slots = [_Slot() for _ in range(spec.num_slots)]
        head = completed = skips = cursor = 0
        while completed < total:
            m = cursor
            slot = slots[m]
            cursor = (m + 1) % spec.num_slots
            ready = 0.0
            if slot.batch is not None:  # members in flight: the slot's round boundary is its last verification
                result, ready = self.wait_result((m, slot.jobs - 1))
                before = len(slot.batch.tasks)
                self.apply(slot.batch, result)  # crop rejected drafts, drop finished members
                completed += before - len(slot.batch.tasks)
                if not slot.batch.tasks:
                    slot.batch = None
            self.drain()
            queue = list(self.arrivals)  # arrival (upload-end) order
            n = len(slot.batch.tasks) if slot.batch is not None else 0
            joiners = self.admit(slot, n, queue, head)
            if n == 0 and not joiners:
                if completed >= total:
                    break
                skips += 1
                if skips >= spec.num_slots:  # every slot empty and nobody uploaded: wait for the next arrival
                    while len(self.arrivals) <= head:
                        self.pump()
                    skips = 0
                continue
            skips = 0
            head += len(joiners)
            start = self.now()
            if joiners:
                ready = max(ready, max(self.arrivals[k] for k in joiners))
            tokens, q = self.round(m, slot, joiners, start)
            prompts = tuple(self.tasks[k].prompt_ids for k in joiners)
            self.peer.send(DraftJob(m, slot.jobs, tuple(slot.batch.tasks), tokens, q, prompts, self.now()))
            end = self.now()
            self.jobs.append({"node": "draft", "batch": m, "round": slot.jobs, "batch_size": len(slot.batch.tasks),
                              "speculation_length": spec.speculation_length, "ready_s": ready, "start_s": start,
                              "end_s": end})
            slot.jobs += 1
        self.peer.send(Stop())

    def round(self, m: int, slot: _Slot, joiners: list, start: float):
        """Draft l tokens for the slot's continuing members and its joiners; joiners' rows end up appended."""
        l = self.spec.speculation_length
        parts = []
        if slot.batch is not None:
            mark = len(self.passes)
            parts.append(self.draft(slot.batch, 1))  # a later round: the pending tokens + l - 1 decode passes
            _relabel(self.passes, mark, slot.jobs)
        if joiners:
            new = _Batch(m, list(joiners), l)
            new.cache = self.engine.new_cache(len(joiners), self.capacity(joiners))
            new.pending = [self.tasks[k].prompt_ids.tolist() for k in joiners]
            new.generators = self.generators(joiners)
            mark = len(self.passes)
            parts.append(self.draft(new, 0))  # the first round: a prefill + l - 1 decode passes
            _relabel(self.passes, mark, slot.jobs)
            for k in joiners:
                self.joined[k] = (m, slot.jobs, start)
            slot.batch = _append(slot.batch, new)
        tokens = np.concatenate([p[0] for p in parts])
        q = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        return tokens, q

    def records(self) -> dict:
        out = super().records()
        out["joined"] = [{"task": k, "batch": m, "round": n, "start_s": t} for k, (m, n, t) in self.joined.items()]
        return out


class OnlineVerifyNode(VerifyNode):
    def __init__(self, cfg: NodeConfig, spec: OnlineSpec, coord, peer) -> None:
        super().__init__(cfg, coord, peer)
        self.spec = spec

    def serve(self) -> None:
        cfg = self.cfg
        l = self.spec.speculation_length
        slots: dict[int, _Batch] = {}
        while (job := self.next_job()) is not None:
            msg, ready = job
            m, n = msg.batch, msg.round
            nj = len(msg.prompts or ())
            nc = len(msg.tasks) - nj
            batch = slots.get(m)
            have = tuple(batch.tasks) if batch is not None else ()
            if have != tuple(msg.tasks[:nc]):
                raise RuntimeError(f"verify node: job ({m}, {n}) continues tasks {msg.tasks[:nc]}, slot has {have}")
            start = self.now()
            acc, nxt = [], []
            q = msg.q
            if nc:
                mark = len(self.passes)
                a, x = self.verify(batch, DraftJob(m, 1, msg.tasks[:nc], msg.tokens[:nc],
                                                   None if q is None else q[:nc], None, msg.sent_s))
                _relabel(self.passes, mark, n)
                acc.append(a)
                nxt.append(x)
            if nj:
                new = self.new_batch(m, msg.tasks[nc:], l, msg.prompts)
                mark = len(self.passes)
                a, x = self.verify(new, DraftJob(m, 0, msg.tasks[nc:], msg.tokens[nc:],
                                                 None if q is None else q[nc:], msg.prompts, msg.sent_s))
                _relabel(self.passes, mark, n)
                acc.append(a)
                nxt.append(x)
                batch = _append(batch, new)
            slots[m] = batch
            accepted, nxt = np.concatenate(acc), np.concatenate(nxt)
            outputs = np.asarray([cfg.output_tokens[k] for k in batch.tasks])
            tokens = np.minimum(accepted + 1, outputs - batch.committed)
            batch.committed = batch.committed + tokens
            finished = batch.committed >= outputs
            done = self.now()
            for i, k in enumerate(batch.tasks):
                self.rounds.append({"task": k, "batch": m, "round": n, "drafted": l, "accepted": int(accepted[i]),
                                    "tokens": int(tokens[i]), "end_s": done})
                if k not in self.first_token:
                    self.first_token[k] = done
                self.num_rounds[k] = self.num_rounds.get(k, 0) + 1
                if finished[i]:
                    self.completion[k] = done
            self.peer.send(VerifyResult(m, n, tuple(batch.tasks), accepted, nxt, finished, self.now()))
            batch.keep(~finished)
            if not batch.tasks:
                slots.pop(m)
            self.jobs.append({"node": "verify", "batch": m, "round": n, "batch_size": len(msg.tasks),
                              "speculation_length": l, "ready_s": ready, "start_s": start, "end_s": self.now()})


def online_node_main(cfg: NodeConfig, spec: OnlineSpec, coord: Connection, peer: Connection) -> None:
    """Entry point of an online node process (spawned); as :func:`specedge.serve.nodes.node_main`."""
    run_node((OnlineDraftNode if cfg.role == "draft" else OnlineVerifyNode)(cfg, spec, coord, peer), cfg.role,
             coord, peer)
