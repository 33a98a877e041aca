"""Exact makespans of many candidate plans at once, for optimizers (local search, the oracle).

A candidate is a contiguous partition of a fixed task order with one speculation length per batch, written as a
sequence of (j, i, l): tasks ``order[j:i]`` in one batch at speculation length l. Its makespan is what the replay
(:func:`specedge.evaluate`) gives under deterministic acceptance: every round commits L(l) tokens (the
``expected`` source; finished members leave the batch, the padded context follows the longest live member, the
fronthaul delay and downlink are paid as in replay). Round stage times come from
:mod:`specedge.latency.rounds`; the recursion is :mod:`specedge.latency.pipeline`'s, run for a whole
(candidates x batches) grid per round-robin cycle: within one cycle the two-machine recursion is a running
maximum (``a_j = max(a_{j-1}, r_j) + td_j`` = cumsum + cummax), and absent jobs (batches already finished, or
padding) are made no-ops with r = -inf and zero times. Tests check it against the replay plan by plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from specedge.latency import network, rounds
from specedge.latency.acceptance import expected_tokens_per_round
from specedge.policies.exact_kernel import live_cells

_EPS = 1e-9  # the replay's tolerance on "output complete"
_GRID_CELLS = 1 << 21  # (segments x rounds) cells of stage-time grids built at once


class ExactMakespan:
    """Exact makespan of contiguous-batch plans over ``order`` (see the module docstring).

    ``tokens_per_round``: L(l) per round (default the expected L(l, alpha) of the scenario's alpha, which makes
    the result the replay's makespan when the scenario's source is ``expected``). ``outputs``: planning output
    length per task (default the tasks' ``output_tokens``).
    """

    def __init__(self, sc, order, bandwidth_hz, mode: str = "sd-pipeline",
                 tokens_per_round: Callable[[int], float] | None = None, outputs=None):
        self.sc = sc
        self.mode = mode
        self.order = np.asarray(order, dtype=np.int64)
        t = sc.tasks
        self.inputs = t["input_tokens"].to_numpy()[self.order].astype(np.float64)
        out = t["output_tokens"].to_numpy() if outputs is None else np.asarray(outputs, dtype=np.float64)
        self.outputs = np.asarray(out, dtype=np.float64)[self.order]
        upload = network.upload_times_s(t["payload_bits"].to_numpy(), t["spectral_efficiency"].to_numpy(),
                                        np.asarray(bandwidth_hz, dtype=np.float64))[self.order]
        self.upload = upload
        self.all_uploads = sc.params.release == "all-uploads"
        self.t_up = float(upload.max())
        self.fronthaul_s = 0.0 if mode == "ad" else float(sc.params.fronthaul_delay_s)
        self.downlink_s = float(sc.params.downlink_s_per_token)
        alpha = sc.acceptance.alpha if sc.acceptance.kind == "expected" else sc.alpha
        self._tokens = tokens_per_round or (lambda l: float(expected_tokens_per_round(l, alpha)))
        self._rows: dict[tuple[int, int, int], int] = {}
        self.track_tail = self.downlink_s != 0.0
        self.n_rows = 0  # batches built: row u has jobs off[u] .. off[u] + nr[u] of the flat job tables
        self.n_jobs = 0
        self._grow(1 << 10, 1 << 16)
        self._per_l: dict[int, tuple] = {}
        self.evaluations = 0

    # ------------------------------------------------------------------ per-batch round times
    def _grow(self, rows: int, jobs: int) -> None:
        """Row tables (rounds ``nr``, ready time, summed draft and verify time, job offset ``off``) of at least
        ``rows`` rows and flat job tables (``td``, ``tv``, downlink ``tail``) of at least ``jobs`` jobs, grown by
        doubling with the used part copied (no tails without a downlink)."""
        for name, dtype, size, used in (("nr", np.int64, rows, self.n_rows), ("ready", np.float64, rows, self.n_rows),
                                        ("sum_d", np.float64, rows, self.n_rows),
                                        ("sum_v", np.float64, rows, self.n_rows),
                                        ("off", np.int64, rows + 1, self.n_rows + 1),
                                        ("td", np.float64, jobs, self.n_jobs), ("tv", np.float64, jobs, self.n_jobs),
                                        ("tail", np.float64, jobs if self.track_tail else 1, self.n_jobs)):
            old = getattr(self, name, None)
            if old is not None and old.size >= size:
                continue
            buf = np.zeros(max(size, 2 * old.size) if old is not None else size, dtype=dtype)
            if old is not None and buf.size > 1:
                buf[:used] = old[:used]
            setattr(self, name, buf)

    def jobs_of(self, u: int) -> slice:
        """Row u's jobs in the flat job tables."""
        return slice(int(self.off[u]), int(self.off[u] + self.nr[u]))

    def _round_grid(self, l: int):
        """Per l: tokens committed before each round, and the number of rounds of every task."""
        if l in self._per_l:
            return self._per_l[l]
        if self.mode == "ad":
            per_round = 1.0
        else:
            per_round = self._tokens(l)
        o_max = float(self.outputs.max())
        n = int(np.ceil(o_max / per_round)) + 2
        cum = np.cumsum(np.full(n, per_round))
        task_rounds = np.searchsorted(cum, self.outputs - _EPS, side="left") + 1
        r_max = int(task_rounds.max())
        before = np.r_[0.0, cum[: r_max - 1]]
        self._per_l[l] = (before, task_rounds)
        return self._per_l[l]

    def _add(self, keys: list[tuple[int, int, int]]) -> None:
        by_l: dict[int, list] = {}
        for key in keys:
            by_l.setdefault(key[2], []).append(key)
        for l, group in by_l.items():
            before, task_rounds = self._round_grid(l)
            r_max = before.size
            # segments in chunks of about _GRID_CELLS (segment x round) cells, so memory stays bounded
            step = max(1, _GRID_CELLS // r_max)
            for c0 in range(0, len(group), step):
                self._add_chunk(l, group[c0 : c0 + step], before, task_rounds)

    def _add_chunk(self, l: int, group: list, before: np.ndarray, task_rounds: np.ndarray) -> None:
        """Stage tables of new batches (j, i, l), appended to the flat job tables: only each batch's own rounds
        (:func:`~specedge.policies.exact_kernel.live_cells`), timed in one call (compiled for affine predictors,
        :func:`specedge.latency.rounds.sd_jobs_s`)."""
        js = np.array([g[0] for g in group], dtype=np.int64)
        is_ = np.array([g[1] for g in group], dtype=np.int64)
        nr_seg, _, ready_seg, b, ctx, imax, first, tail = live_cells(
            js, is_, task_rounds, self.inputs, self.upload, before, self.all_uploads, self.t_up, self.outputs,
            self.downlink_s, self.track_tail)
        if self.mode == "ad":
            tv = rounds.ad_round_s(self.sc.verify_compute, b, ctx, imax, first)
            td = np.zeros_like(tv)
        else:
            td, tv = rounds.sd_jobs_s(self.sc.draft_compute, self.sc.verify_compute, b, ctx, imax,
                                      np.full(b.size, l), first)
        u0, u1 = self.n_rows, self.n_rows + len(group)
        j0, j1 = self.n_jobs, self.n_jobs + b.size
        self._grow(u1, j1)
        for name, flat in (("td", td), ("tv", tv)) + ((("tail", tail),) if self.track_tail else ()):
            getattr(self, name)[j0:j1] = flat
        starts = np.cumsum(nr_seg) - nr_seg
        self.sum_d[u0:u1] = np.add.reduceat(self.td[j0:j1], starts)
        self.sum_v[u0:u1] = np.add.reduceat(self.tv[j0:j1], starts)
        self.off[u0 + 1 : u1 + 1] = j0 + np.cumsum(nr_seg)
        self.nr[u0:u1] = nr_seg
        self.ready[u0:u1] = ready_seg
        self._rows.update(zip(((j, i, l) for j, i, _ in group), range(u0, u1)))
        self.n_rows, self.n_jobs = u1, j1

    def _stage_grid(self, l: int, group: list, before: np.ndarray, task_rounds: np.ndarray,
                    rounds_limit: int | None = None):
        """(td, tv) (segments x rounds, zero where a batch has finished), rounds and ready time of each segment,
        and the downlink tails (None without a downlink); only the first ``rounds_limit`` rounds if given. Used by
        :meth:`early_lower_bound` (the search's tables are built by :meth:`_add_chunk`)."""
        before = before if rounds_limit is None else before[:rounds_limit]
        r_max = before.size
        js = np.array([g[0] for g in group], dtype=np.int64)
        is_ = np.array([g[1] for g in group], dtype=np.int64)
        sizes = is_ - js
        seg = np.repeat(np.arange(js.size), sizes)
        starts = np.cumsum(sizes) - sizes
        members = np.arange(int(sizes.sum())) - np.repeat(starts, sizes) + np.repeat(js, sizes)
        tr = task_rounds[members]
        # live members per round: a histogram of the members' round counts, summed from the right
        hist = np.bincount(seg * (r_max + 1) + np.minimum(tr, r_max),
                           minlength=js.size * (r_max + 1)).reshape(js.size, r_max + 1)
        b = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]  # b[s, r] = members with more than r rounds
        imax = np.maximum.reduceat(self.inputs[members], starts)
        nr_seg = np.maximum.reduceat(tr, starts)
        ready_seg = (np.full(js.size, self.t_up) if self.all_uploads
                     else np.maximum.reduceat(self.upload[members], starts))
        ctx = imax[:, None] + before[None, :]
        first = np.zeros(r_max, dtype=bool)
        first[0] = True
        present = b > 0
        if self.mode == "ad":
            tv = rounds.ad_round_s(self.sc.verify_compute, b, ctx, imax[:, None], first[None, :])
            td = np.zeros_like(tv)
        else:
            td = rounds.sd_draft_s(self.sc.draft_compute, b, ctx, imax[:, None], l, first[None, :])
            tv = rounds.sd_verify_s(self.sc.verify_compute, b, ctx, imax[:, None], l, first[None, :])
        td = np.where(present, td, 0.0)
        tv = np.where(present, tv, 0.0)
        tail_all = None
        if self.downlink_s != 0.0 and rounds_limit is None:
            # completion of task k = verify end of its last round + downlink of that round's tokens
            tail_all = np.full((js.size, r_max), -np.inf)
            np.maximum.at(tail_all, (seg, tr - 1), self.downlink_s * (self.outputs[members] - before[tr - 1]))
        return td, tv, nr_seg, ready_seg, tail_all

    # ------------------------------------------------------------------ the batched recursion
    def makespans(self, plans: Sequence[Sequence[tuple[int, int, int]]]) -> np.ndarray:
        """Makespan of each candidate plan (seconds)."""
        plans = [list(p) for p in plans]
        if not plans:
            return np.zeros(0)
        new = sorted({(int(j), int(i), int(l)) for p in plans for (j, i, l) in p} - set(self._rows))
        if new:
            self._add(new)
        pad = self.n_rows
        self.evaluations += len(plans)
        # plans are padded to the most batches of their group: plans with up to 64 batches go together, larger
        # ones by the power of two above their batch count, so that one plan with K batches does not make every
        # other plan cost O(K) per round (each group is one pass over the rounds)
        sizes = np.array([len(p) for p in plans])
        group = np.maximum(np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64), 6)
        out = np.empty(len(plans))
        single = sizes == 1
        for q in np.flatnonzero(single).tolist():
            out[q] = self._single(self._rows[tuple(int(x) for x in plans[q][0])])
        for g in np.unique(group[~single]).tolist():
            members = np.flatnonzero((group == g) & ~single)
            m_max = int(sizes[members].max())
            idx = np.full((members.size, m_max), pad, dtype=np.int64)
            for r, q in enumerate(members.tolist()):
                idx[r, : sizes[q]] = [self._rows[(int(j), int(i), int(l))] for j, i, l in plans[q]]
            out[members] = self._run(idx)
        return out

    def _single(self, u: int) -> float:
        """A plan of one batch in closed form: each round starts when the previous one's verification is back,
        so verify end of round n = ready + sum_{m<=n} (t_d + t_v) + (2n + 1) f, in every mode (f = 0 in AD)."""
        jobs = self.jobs_of(u)
        n = np.arange(self.nr[u], dtype=np.float64)
        f = self.fronthaul_s
        ends = float(self.ready[u]) + np.cumsum(self.td[jobs] + self.tv[jobs]) + (2.0 * n + 1.0) * f
        if self.track_tail:
            return float(np.max(ends + self.tail[jobs]))
        return float(ends[-1])

    def early_lower_bound(self, plan: Sequence[tuple[int, int, int]], rounds_limit: int = 32) -> float:
        """A cheaper, weaker lower bound than :meth:`lower_bounds`: the same sums over the first
        ``rounds_limit`` rounds of each batch only (stage times are >= 0, so dropping later rounds keeps it a
        bound); nothing is cached. O(batches x rounds_limit)."""
        by_l: dict[int, list] = {}
        for j, i, l in plan:
            by_l.setdefault(int(l), []).append((int(j), int(i), int(l)))
        d = v = 0.0
        ready = np.inf
        jobs = 0
        for l, group in by_l.items():
            before, task_rounds = self._round_grid(l)
            td, tv, nr_seg, ready_seg, _ = self._stage_grid(l, group, before, task_rounds, rounds_limit)
            d, v = d + float(td.sum()), v + float(tv.sum())
            ready = min(ready, float(ready_seg.min()))
            jobs += int(np.minimum(nr_seg, before[:rounds_limit].size).sum())
        if self.mode == "sd-pipeline":
            return ready + max(d, v)
        return ready + d + v + self.fronthaul_s * jobs

    def lower_bounds(self, plans: Sequence[Sequence[tuple[int, int, int]]]) -> np.ndarray:
        """A lower bound on each plan's makespan without the recursion: no batch starts before the earliest ready
        time, and one machine does all of a stage's jobs one after another, so the makespan is at least
        min ready + max(sum of draft times, sum of verify times) (pipelined; serial and AD: min ready + the sum
        of all job times, fronthaul included). Costs the plan's stage tables, O(batches x rounds), not the
        O(rounds) Python-level recursion."""
        plans = [list(p) for p in plans]
        new = sorted({(int(j), int(i), int(l)) for p in plans for (j, i, l) in p} - set(self._rows))
        if new:
            self._add(new)
        out = np.empty(len(plans))
        for r, p in enumerate(plans):
            rows = [self._rows[(int(j), int(i), int(l))] for j, i, l in p]
            d = sum(float(self.td[self.jobs_of(u)].sum()) for u in rows)
            v = sum(float(self.tv[self.jobs_of(u)].sum()) for u in rows)
            ready = min(float(self.ready[u]) for u in rows)
            if self.mode == "sd-pipeline":
                out[r] = ready + max(d, v)
            else:
                out[r] = ready + d + v + self.fronthaul_s * sum(int(self.nr[u]) for u in rows)
        return out

    def _run(self, idx: np.ndarray) -> np.ndarray:
        """The recursion for all candidates: ``idx`` (candidates, batches) rows of the segment tables."""
        used, inverse = np.unique(idx, return_inverse=True)  # only the rows these candidates use
        idx = inverse.reshape(idx.shape)
        pad = self.n_rows
        nr = np.array([self.nr[u] if u < pad else 0 for u in used.tolist()], dtype=np.int64)
        r_max = int(nr.max())
        s = nr.size
        td = np.zeros((r_max, s))
        tv = np.zeros((r_max, s))
        tail = np.full((r_max, s), -np.inf)
        for k, u in enumerate(used.tolist()):
            if u < pad:
                jobs = self.jobs_of(u)
                n = jobs.stop - jobs.start
                td[:n, k] = self.td[jobs]
                tv[:n, k] = self.tv[jobs]
                if self.track_tail:
                    tail[:n, k] = self.tail[jobs]
        ready_rows = np.array([self.ready[u] if u < pad else 0.0 for u in used.tolist()])
        # (batches, candidates) layout; candidates sorted by their number of rounds so that round n only
        # touches the first `active` columns
        plan_rounds = nr[idx].max(axis=1)
        perm = np.argsort(-plan_rounds, kind="stable")
        idx = np.ascontiguousarray(idx[perm].T)
        plan_rounds = plan_rounds[perm]
        ready = ready_rows[idx]
        rounds_of = nr[idx]
        f = self.fronthaul_s
        m_n, p = idx.shape
        a = np.zeros(p)  # SBS free time
        b = np.zeros(p)  # MBS free time
        last_b = ready.copy()  # verify end of each batch's previous round; its ready time before round 0
        b_rows = np.empty((m_n, p))
        tmp = np.empty(p)
        makespan = np.full(p, -np.inf)
        track_tail = self.track_tail
        pipelined = self.mode == "sd-pipeline"
        active_at = np.searchsorted(-plan_rounds, -np.arange(r_max), side="left")  # plans with rounds > n
        # Row by row (batches in round-robin order), vectorised over candidates. An absent job (its batch has
        # finished, or padding) has r = -inf and zero times, so it leaves both machines' free times unchanged
        # (for the pipeline this uses b >= a + f, true after the first job, which every candidate has).
        for n in range(r_max):
            q = int(active_at[n]) if n else p
            if q == 0:
                break
            ix = idx[:, :q]
            present = rounds_of[:, :q] > n
            t_d = td[n][ix]
            t_v = tv[n][ix]
            r = np.where(present, last_b[:, :q] + (f if n else 0.0), -np.inf)
            av, bv, tq, rows = a[:q], b[:q], tmp[:q], b_rows[:, :q]
            if m_n * (4.0 + 0.006 * q) > 10.0 * (2.0 + 0.005 * q * m_n):
                _scan_cycle(pipelined, present, r, t_d, t_v, f, av, bv, rows)
            elif pipelined:
                for m in range(m_n):
                    np.maximum(av, r[m], out=av)
                    av += t_d[m]
                    if f:
                        np.add(av, f, out=tq)
                        np.maximum(bv, tq, out=bv)
                    else:
                        np.maximum(bv, av, out=bv)
                    bv += t_v[m]
                    rows[m] = bv
            else:  # sd-serial (cost td + f + tv) and ad (td = 0, f = 0)
                cost = np.where(present, t_d + t_v + f, 0.0)
                for m in range(m_n):
                    np.maximum(bv, r[m], out=bv)
                    bv += cost[m]
                    rows[m] = bv
            last_b[:, :q] = np.where(present, rows, last_b[:, :q])
            if track_tail:
                makespan[:q] = np.maximum(makespan[:q], np.max(np.where(present, rows + tail[n][ix], -np.inf),
                                                               axis=0))
        out = np.empty(p)
        out[perm] = makespan if track_tail else b
        return out


def _scan_cycle(pipelined, present, r, t_d, t_v, f, a, b, rows) -> None:
    """One round-robin cycle for all candidates at once (many batches, few candidates): the recursion
    ``a_m = max(a_{m-1}, r_m) + td_m`` is ``cumsum + running max``; updates ``a``, ``b`` and ``rows`` in place."""
    if pipelined:
        cum_d = np.cumsum(t_d, axis=0)
        a_all = cum_d + np.maximum(a, np.maximum.accumulate(r - cum_d + t_d, axis=0))
        start = np.where(present, a_all + f, -np.inf)
        cum_v = np.cumsum(t_v, axis=0)
        rows[...] = cum_v + np.maximum(b, np.maximum.accumulate(start - cum_v + t_v, axis=0))
        a[...] = a_all[-1]
    else:
        cost = np.where(present, t_d + t_v + f, 0.0)
        cum = np.cumsum(cost, axis=0)
        rows[...] = cum + np.maximum(b, np.maximum.accumulate(r - cum + cost, axis=0))
    b[...] = rows[-1]


def plan_keys(bounds, ls) -> list[tuple[int, int, int]]:
    """[(j, i, l), ...] from bounds and one l (int) or one l per batch."""
    if np.ndim(ls) == 0:
        ls = [int(ls)] * len(bounds)
    return [(int(j), int(i), int(l)) for (j, i), l in zip(bounds, ls)]
