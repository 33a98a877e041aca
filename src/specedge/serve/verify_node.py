"""The verify node (MBS) of a real serving run: :class:`VerifyNode`, on the shared machinery of
:mod:`specedge.serve.nodes` (pinning, model, warm-up, pipe timing, speed probe, timed passes, records).

Job (n, m), as the draft node sends it: one ``verify`` pass over each member's uncached committed tokens plus its
l drafts, then standard speculative sampling (:func:`specedge.record.sampler.verify`), crop of the rejected
drafts, and the result back to the draft node. It stamps first-token and completion times (the instant the
round's committed tokens are known) and one ``round`` row per member; finished members leave the batch.
"""

from __future__ import annotations

import numpy as np

from specedge.serve.nodes import _Batch, _Node
from specedge.serve.protocol import DraftJob, Stop, VerifyResult


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

    def next_job(self) -> tuple[DraftJob, float] | None:
        """The next draft job from the draft node and when it arrived (the run clock); None at the end (Stop)."""
        msg = self.peer.recv()
        ready = self.now()
        if isinstance(msg, Stop):
            return None
        if not isinstance(msg, DraftJob):
            raise RuntimeError(f"verify node: unexpected message {type(msg).__name__}")
        return msg, ready

    def new_batch(self, m: int, tasks, l: int, prompts) -> _Batch:
        """Batch ``m``'s state at its first job: a node-sized cache, the prompts pending, nothing committed."""
        batch = _Batch(m, list(tasks), l)
        batch.cache = self.engine.new_cache(len(batch.tasks), self.capacity(batch.tasks))
        batch.pending = [np.asarray(p).tolist() for p in prompts]
        batch.generators = self.generators(batch.tasks)
        batch.committed = np.zeros(len(batch.tasks), dtype=np.int64)
        return batch

    def serve(self) -> None:
        cfg = self.cfg
        batches: dict[int, _Batch] = {}
        while (job := self.next_job()) is not None:
            msg, ready = job
            m, n = msg.batch, msg.round
            if n == 0:
                batches[m] = self.new_batch(m, msg.tasks, cfg.speculation_length[m], msg.prompts)
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
