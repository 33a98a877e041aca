"""Incremental exact makespans for the local search: a neighbour is its base plan with one window of batches
replaced, and only what the edit changes is recomputed.

A move (:func:`edits`) replaces batches ``m0:m1`` of the current plan by a few new batches (a shifted boundary, a
merge, a split, one batch's l) or, for "l of every batch +-1", all of them. For a move:

- only the new batches' stage tables are built (:class:`~specedge.policies.exact.ExactMakespan` caches every
  (j, i, l) batch it has seen), and only the new batches are memory-checked;
- the recursion starts at the move's first changed batch: before job (round 0, batch m0) the two machines' free
  times and the earlier batches' round-0 verify ends are the base plan's
  (:func:`~specedge.policies.exact_kernel.round0_prefix`), because the jobs before it are the same. Every later
  round includes the changed batches, so the rest is recomputed;
- the recursion runs compiled (numba), one candidate at a time over its jobs in round-robin order, the same
  per-job operations as :meth:`ExactMakespan._run` (``a = max(a, r) + t_d``, ``b = max(b, a + f) + t_v``);
- a candidate stops early once it provably cannot beat ``threshold`` (the best makespan seen in the call or
  the caller's bar): the MBS must still do every remaining verification after its current free time, and the
  SBS every remaining draft (pipelined: plus one fronthaul), so ``max(b + rest of V, a + rest of D + f)``
  bounds the makespan from below; after round 0 a pipelined move is also checked once against the switch bound
  (:func:`~specedge.policies.exact_kernel.switch_bound`: the MBS busy until round T - 1, then the SBS drafting
  every job from round T on), which sees the idle of SBS-bound last rounds. A stopped candidate gets +inf; it
  can never be the arg-min.

:class:`~specedge.policies.exact.ExactMakespan` keeps the stage tables as flat arrays (CSR rows, grown as new
batches appear) that the kernel reads directly; :class:`Tables` adds the base plan's round-major copy.
"""

from __future__ import annotations

import numpy as np
from specedge.latency import planning
from specedge.policies.exact import ExactMakespan
from specedge.policies.exact_kernel import gather, moves_makespans, round0_prefix


class Tables:
    """The local search's view of an :class:`ExactMakespan`'s stage tables (its flat CSR job tables: row u has
    jobs off[u] .. off[u] + nr[u]), with the base plan's round-major tables kept while the plan is unchanged."""

    def __init__(self, ev: ExactMakespan):
        self.ev = ev
        self.track_tail = ev.track_tail

    def row_ids(self, keys: list[tuple[int, int, int]]) -> np.ndarray:
        """Row of each (j, i, l) batch, building the batches not seen before."""
        ev = self.ev
        rows = ev._rows
        new = sorted(set(k for k in keys if k not in rows))
        if new:
            ev._add(new)
        return np.array([rows[k] for k in keys], dtype=np.int64)

    def plans(self, plans: list) -> np.ndarray:
        """Exact makespans of whole plans ((j, i, l), ...), none stopped early."""
        out = np.empty(len(plans))
        empty = np.zeros(0, dtype=np.int64)
        for r, plan in enumerate(plans):
            rows = self.row_ids(list(plan))
            m = np.array([rows.size])
            out[r] = self.moves(rows, m, m, empty, np.zeros(1, dtype=np.int64), empty, np.inf, shared_bar=False)[0]
        return out

    def _base(self, rows: np.ndarray):
        key = rows.tobytes()
        if getattr(self, "_base_key", None) != key:
            ev = self.ev
            bd, bv, bt = gather(rows, ev.td, ev.tv, ev.tail, ev.off, ev.nr, self.track_tail)
            chk = round0_prefix(rows, bd, bv, bt, ev.ready, ev.fronthaul_s, ev.mode == "sd-pipeline",
                                self.track_tail)
            row_d, row_v = bd.sum(axis=1), bv.sum(axis=1)  # per round, for the switch bound
            self._base_key, self._base_val = key, (bd, bv, bt) + chk + (row_d, row_v)
        return self._base_val

    def moves(self, rows: np.ndarray, m0: np.ndarray, m1: np.ndarray, new_rows: np.ndarray, new_count: np.ndarray,
              new_start: np.ndarray | None = None, threshold: float = np.inf, *, shared_bar: bool = True) -> np.ndarray:
        """Makespans of moves of the plan with batch ``rows``: batches m0[p]:m1[p] replaced by the next
        ``new_count[p]`` rows of ``new_rows``; +inf for a move stopped early because it cannot beat
        ``threshold`` or, with ``shared_bar``, the best move before it (see the module docstring)."""
        ev = self.ev
        if new_start is None:
            new_start = np.cumsum(new_count) - new_count
        ev.evaluations += int(m0.size)
        return moves_makespans(rows, *self._base(rows), m0, m1, new_start, new_count, new_rows, ev.td, ev.tv,
                               ev.tail, ev.off, ev.nr, ev.ready, ev.sum_d, ev.sum_v, ev.fronthaul_s,
                               ev.mode == "sd-pipeline", self.track_tail, float(threshold), bool(shared_bar))


def _pair_moves(a: tuple, b: tuple) -> list[tuple]:
    """New batches replacing two neighbours: boundary shifts by 1, 2, 4, ... tasks, and the merge at either l."""
    (j0, x, l0), (_, i1, l1) = a, b
    out = []
    step = 1
    while step < max(x - j0, i1 - x):
        for y in (x - step, x + step):
            if j0 < y < i1:
                out.append(((j0, y, l0), (y, i1, l1)))
        step *= 2
    for l in {l0, l1}:
        out.append(((j0, i1, l),))
    return out


def _single_moves(c: tuple, l_lo: int, l_hi: int, per_batch_l: bool) -> list[tuple]:
    """New batches replacing one: splits at 1/4, 1/3, 1/2, 2/3, 3/4, and l +-1 (``per_batch_l``)."""
    j, i, l = c
    n = i - j
    out = [((j, y, l), (y, i, l)) for y in sorted({j + int(round(n * s)) for s in (0.25, 1 / 3, 0.5, 2 / 3, 0.75)})
           if j < y < i]
    if per_batch_l:
        out += [((j, i, l + dl),) for dl in (-1, 1) if l_lo <= l + dl <= l_hi]
    return out


def edits(cand: tuple, l_lo: int, l_hi: int, per_batch_l: bool) -> list[tuple[int, int, tuple]]:
    """The local search's moves as (m0, m1, new batches): batches cand[m0:m1] are replaced by the new ones.
    Shift a boundary by 1, 2, 4, ... tasks; merge two neighbours (at either's l); split a batch at 1/4, 1/3,
    1/2, 2/3 or 3/4; l of one batch +-1 (``per_batch_l``); l of every batch +-1."""
    return [(m0, m1, new) for m0, m1, new, _ in MoveLists(l_lo, l_hi, per_batch_l)(cand)]


class MoveLists:
    """:func:`edits` with keys, each neighbour pair's and each batch's moves built once and reused while the pair
    or batch stays in the plan: (m0, m1, new batches, key), key = (removed batches, added batches), or
    ("every l", +-1) for l of every batch +-1 (of a plan with more than one batch)."""

    def __init__(self, l_lo: int, l_hi: int, per_batch_l: bool):
        self.l_lo, self.l_hi, self.per_batch_l = l_lo, l_hi, per_batch_l
        self._pair: dict = {}
        self._single: dict = {}

    def __call__(self, cand: tuple) -> list[tuple]:
        out = []
        m_n = len(cand)
        for m in range(m_n - 1):
            pair = cand[m : m + 2]
            got = self._pair.get(pair)
            if got is None:
                got = self._pair[pair] = [(new, (pair, new)) for new in _pair_moves(*pair)]
            out += [(m, m + 2, new, key) for new, key in got]
        for m in range(m_n):
            one = cand[m : m + 1]
            got = self._single.get(one)
            if got is None:
                got = self._single[one] = [(new, (one, new)) for new in _single_moves(one[0], self.l_lo, self.l_hi,
                                                                                    self.per_batch_l)]
            out += [(m, m + 1, new, key) for new, key in got]
        for dl in (-1, 1):
            if all(self.l_lo <= c[2] + dl <= self.l_hi for c in cand):
                new = tuple((j, i, l + dl) for j, i, l in cand)
                out.append((0, m_n, new, ("every l", dl) if m_n > 1 else (cand, new)))
        return out


def sparse_max(x: np.ndarray) -> np.ndarray:
    """t[p, j] = max(x[j : j + 2^p]) (rows padded with the last value beyond the end)."""
    rows = [np.asarray(x)]
    while (1 << len(rows)) <= x.size:
        prev, half = rows[-1], 1 << (len(rows) - 1)
        rows.append(np.maximum(prev, np.concatenate([prev[half:], np.repeat(prev[-1:], half)])))
    return np.vstack(rows)


def range_max(table: np.ndarray, j: np.ndarray, i: np.ndarray) -> np.ndarray:
    """max(x[j:i]) for each (j, i) with j < i, from ``table = sparse_max(x)`` (two overlapping power-of-two
    ranges)."""
    p = np.floor(np.log2(i - j)).astype(np.int64)
    return np.maximum(table[p, j], table[p, i - (1 << p)])


class SurrogateSums:
    """Total drafting and verification time of a batch under the planning assumption (closed form,
    :func:`specedge.latency.planning.batch_stage_times_s`), cached per (j, i, l): the wide search's prediction
    of a move is the change of max(sum D, sum V) (pipelined; else sum D + sum V) it makes."""

    def __init__(self, ev: ExactMakespan):
        self.ev = ev
        self.cache: dict = {}

    def _fill(self, keys) -> None:
        new = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if not new:
            return
        ev = self.ev
        j = np.array([k[0] for k in new])
        i = np.array([k[1] for k in new])
        l = np.array([k[2] for k in new], dtype=np.float64)
        if not hasattr(self, "_out_max"):
            self._out_max = sparse_max(ev.outputs)
        omax = range_max(self._out_max, j, i)
        d, v, _ = planning.batch_stage_times_s(ev.sc, i - j, ev.inputs[i - 1], omax, l,
                                               mode="ad" if ev.mode == "ad" else "sd")
        self.cache.update(zip(new, zip(d.tolist(), v.tolist())))

    def bound_change(self, cand: tuple, moves: list) -> np.ndarray:
        if not moves:
            return np.zeros(0)
        self._fill([k for k in cand] + [k for _, _, new in moves for k in new])
        c = self.cache
        cum = np.vstack([np.zeros(2), np.cumsum(np.array([c[k] for k in cand]), axis=0)])
        tot = cum[-1]
        m0 = np.array([m[0] for m in moves])
        m1 = np.array([m[1] for m in moves])
        counts = np.array([len(m[2]) for m in moves])
        added = np.add.reduceat(np.array([c[k] for _, _, new in moves for k in new]), np.cumsum(counts) - counts,
                                axis=0)
        dv = tot - (cum[m1] - cum[m0]) + added
        if self.ev.mode == "sd-pipeline":
            return dv.max(axis=1) - tot.max()
        return dv.sum(axis=1) - tot.sum()


class MoveIndex:
    """The local search's moves as arrays: every distinct move key (as in :class:`MoveLists`) gets an integer id
    once, with its new batches (``new[id]``; for "l of every batch +-1" those of the plan last listed), whether
    they fit the SBS memory (``ok``, checked once, at first sight) and its makespan change when last timed
    (``change``, NaN until timed). :meth:`__call__` lists a plan's moves in :class:`MoveLists` order as
    (m0, m1, ids) arrays, each pair's and batch's ids built once and reused while it stays in the plan."""

    def __init__(self, l_lo: int, l_hi: int, per_batch_l: bool, fits):
        self.l_lo, self.l_hi, self.per_batch_l, self.fits = l_lo, l_hi, per_batch_l, fits
        self._group: dict = {}  # removed batches -> ids of their moves
        self._id: dict = {}  # key -> id
        self._layouts: dict = {}
        self.new: list = []
        self.ok = np.zeros(1024, dtype=bool)
        self.change = np.full(1024, np.nan)

    def _ids(self, keys: list, news: list) -> np.ndarray:
        """Ids of keys, new ones registered and memory-checked together."""
        out, fresh = [], []
        for key, new in zip(keys, news):
            q = self._id.get(key)
            if q is None:
                q = self._id[key] = len(self.new)
                self.new.append(new)
                fresh.append(q)
            out.append(q)
        if fresh:
            n = len(self.new)
            if n > self.ok.size:
                self.ok = np.concatenate([self.ok, np.zeros(n + self.ok.size, dtype=bool)])
                self.change = np.concatenate([self.change, np.full(n + self.change.size, np.nan)])
            fits = self.fits
            if hasattr(fits, "many"):  # every pair checked in one call, then read from its cache
                fits.many([(j, i) for q in fresh for j, i, _ in self.new[q]])
                cache = fits.cache
                self.ok[fresh] = [all(cache[(j, i)] for j, i, _ in self.new[q]) for q in fresh]
            else:
                self.ok[fresh] = [all(fits(j, i) for j, i, _ in self.new[q]) for q in fresh]
        return np.array(out, dtype=np.int64)

    def _build(self, removed: list) -> None:
        """The moves of unseen pairs and batches, registered (and memory-checked) together."""
        keys, news, sizes = [], [], []
        for one in dict.fromkeys(removed):
            got = _pair_moves(*one) if len(one) == 2 else _single_moves(one[0], self.l_lo, self.l_hi, self.per_batch_l)
            keys += [(one, new) for new in got]
            news += got
            sizes.append(len(got))
        ids = self._ids(keys, news)
        for one, part in zip(dict.fromkeys(removed), np.split(ids, np.cumsum(sizes)[:-1])):
            self._group[one] = part

    def __call__(self, cand: tuple):
        m_n = len(cand)
        removed = [cand[m : m + 2] for m in range(m_n - 1)] + [cand[m : m + 1] for m in range(m_n)]
        group = self._group
        groups = [group.get(one) for one in removed]
        if any(g is None for g in groups):
            self._build([one for one, g in zip(removed, groups) if g is None])
            groups = [group[one] for one in removed]
        sizes = np.fromiter((g.size for g in groups), dtype=np.int64, count=len(groups))
        at, width = self._layout(m_n)
        m0 = np.repeat(at, sizes)
        m1 = m0 + np.repeat(width, sizes)
        ids = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        every = []
        for dl in (-1, 1):
            if all(self.l_lo <= c[2] + dl <= self.l_hi for c in cand):
                new = tuple((j, i, l + dl) for j, i, l in cand)
                q = self._ids([("every l", dl) if m_n > 1 else (cand, new)], [new])
                self.new[int(q[0])] = new
                every.append(int(q[0]))
        if every:
            m0 = np.concatenate([m0, np.zeros(len(every), dtype=np.int64)])
            m1 = np.concatenate([m1, np.full(len(every), m_n, dtype=np.int64)])
            ids = np.concatenate([ids, np.array(every, dtype=np.int64)])
        return m0, m1, ids

    def _layout(self, m_n: int):
        """First batch and width of the pairs' then the single batches' move groups of a plan of m_n batches."""
        got = self._layouts.get(m_n)
        if got is None:
            got = self._layouts[m_n] = (np.concatenate([np.arange(m_n - 1), np.arange(m_n)]),
                                        np.concatenate([np.full(m_n - 1, 2), np.ones(m_n, dtype=np.int64)]))
        return got
