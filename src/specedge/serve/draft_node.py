"""The draft node (SBS) of a real serving run: :class:`DraftNode`, on the shared machinery of
:mod:`specedge.serve.nodes` (pinning, model, warm-up, pipe timing, speed probe, timed passes, records).

Job (n, m), in the round-robin order of docs/model.md section 5: wait until the batch's inputs are there (round 0:
its tasks' uploads, or all uploads under ``release = all-uploads``; later rounds: the verification result of
(n - 1, m)); feed the tokens the draft's cache lacks (round 0: the left-padded prompts, a ``prefill`` pass; later:
the corrected/bonus token, plus the last draft when all l were accepted) and draft l tokens (l - 1 more ``decode``
passes); send tokens and distributions (T > 0) to the verify node. In ``sd-serial`` mode it also waits for the
previous job's verification (no overlap). A batch whose members have all finished drops out.
"""

from __future__ import annotations

from multiprocessing.connection import wait

import numpy as np

from specedge.serve.nodes import _Batch, _Node
from specedge.serve.protocol import DraftJob, Stop, TaskArrival, VerifyResult


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
