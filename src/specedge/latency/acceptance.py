"""Acceptance sources: how many draft tokens a verification round accepts.

A round at speculation length l commits ``min(G, l) + 1`` tokens (accepted drafts plus the bonus or corrected
token), where G is the round's *potential* accepted count, the number of leading draft tokens the target would
accept if the draft were unbounded. Four sources:

- ``expected``: i.i.d. alpha in expectation, L(l, alpha) = (1 - alpha^(l+1)) / (1 - alpha) tokens every round,
  deterministic, as the paper plans [P];
- ``iid``: G ~ geometric, P(G >= i) = alpha^i, sampled;
- ``trace``: each task replays a recorded request's rounds (see :class:`TraceAcceptance`);
- ``aggregate``: rounds sampled from a recorded (drafted, accepted) histogram.

A recorded round with ``accepted < drafted`` saw a rejection at position accepted + 1, so G = accepted exactly and
replay at any l is exact. A round with ``accepted == drafted`` only says G >= drafted: replay at l <= drafted is
exact (truncation), at l > drafted the extra acceptances are *extrapolated* by an i.i.d. tail with the dataset's
conditional alpha at its last positions (``alpha_tail``), and such rounds are flagged (``cap`` < l). ``alpha_tail``
pools the last positions until :data:`~specedge.latency.acceptance_tail.TAIL_MIN_ROUNDS` rounds support it and is
strictly below 1 (:mod:`specedge.latency.acceptance_tail`).

Randomness is canonical so that every implementation replays the same numbers: per replication, a generator gives
first the trace assignment (trace sources), then uniforms in round-major order, K per round, only if the source
needs them (:meth:`needs_uniforms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from specedge.errors import TraceValidationError
from specedge.latency.acceptance_tail import TAIL_MIN_ROUNDS, TailEstimate, position_trials, tail_alpha

#: ``cap`` value of a round whose G is exact at any l (a rejection was observed, or G is sampled).
NO_CAP = 2**30
#: Largest G ever produced (alpha = 1 would be infinite).
G_MAX = 2**20


def expected_tokens_per_round(l, alpha) -> np.ndarray:
    """L(l, alpha) = (1 - alpha^(l+1)) / (1 - alpha), = l + 1 at alpha = 1 [P]; broadcasts."""
    l = np.asarray(l, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64)
    one = np.isclose(a, 1.0)
    safe = np.where(one, 0.5, a)
    return np.where(one, l + 1.0, (1.0 - safe ** (l + 1.0)) / (1.0 - safe))


def geometric_from_uniform(u: np.ndarray, alpha: float) -> np.ndarray:
    """G with P(G >= i) = alpha^i from uniforms in [0, 1): floor(log(1 - u) / log(alpha)), capped at G_MAX."""
    if alpha <= 0.0:
        return np.zeros(np.shape(u), dtype=np.int64)
    if alpha >= 1.0:
        return np.full(np.shape(u), G_MAX, dtype=np.int64)
    g = np.floor(np.log1p(-np.asarray(u)) / np.log(alpha))
    return np.minimum(g, G_MAX).astype(np.int64)


def fit_iid_alpha(tokens_per_round: float, l: float) -> float:
    """The alpha with L(l, alpha) = tokens_per_round (bisection); 0 if <= 1 token, 1 if >= l + 1."""
    if tokens_per_round <= 1.0:
        return 0.0
    if tokens_per_round >= l + 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if expected_tokens_per_round(l, mid) < tokens_per_round:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class AcceptanceStats:
    """What a policy may know about the acceptance source, with the field's words spelled out.

    - ``alpha``: the i.i.d. alpha (expected/iid), or for recorded data the alpha whose L(d, alpha) equals the
      recorded mean tokens per round at the most common drafted length d (a fitted summary, not a claim of
      independence);
    - ``tau``: mean tokens per round at the recorded lengths, 1 + mean(accepted) (None for expected/iid);
    - ``draft_acceptance_ratio``: m = sum accepted / sum drafted;
    - ``alpha_i``: conditional alpha_i = S(i) / S(i - 1), S(i) = P(accepted >= i | drafted >= i), i = 1..;
    - ``alpha_tail``: the alpha used to extrapolate beyond the recorded draft length, < 1 (see
      :mod:`specedge.latency.acceptance_tail`); ``tail`` holds its support (rounds, positions, interval);
    - ``per_unit_tau``: tau of each replay unit (request turn) of a trace, in unit order (see
      :meth:`TraceAcceptance.assign` for which unit a task gets).
    """

    kind: str
    name: str
    alpha: float
    tau: float | None = None
    draft_acceptance_ratio: float | None = None
    alpha_i: tuple[float, ...] = ()
    alpha_tail: float | None = None
    tail: TailEstimate | None = None
    min_drafted: int | None = None
    max_drafted: int | None = None
    num_units: int = 0
    num_rounds: int = 0
    per_unit_tau: np.ndarray | None = field(default=None, repr=False, compare=False)


def _survival_stats(drafted: np.ndarray, accepted: np.ndarray, counts: np.ndarray, tail_min_rounds: int):
    d_max = int(drafted.max())
    # at position i, rounds that could accept i (drafted >= i): how many accepted >= i - 1 and >= i
    n_prev, n_now = position_trials(drafted, accepted, counts)
    alpha_i = tuple(float(x) for x in np.divide(n_now, n_prev, out=np.full(d_max, np.nan), where=n_prev > 0))
    m = float((accepted * counts).sum() / (drafted * counts).sum())
    tail = tail_alpha(drafted, accepted, counts, min_rounds=tail_min_rounds)
    # most common drafted length, weighted by rounds
    values, inverse = np.unique(drafted, return_inverse=True)
    d_mode = int(values[np.argmax(np.bincount(inverse, weights=counts))])
    tau = 1.0 + float((accepted * counts).sum() / counts.sum())
    at_mode = drafted == d_mode
    tau_mode = 1.0 + float((accepted[at_mode] * counts[at_mode]).sum() / counts[at_mode].sum())
    return alpha_i, tail, m, tau, fit_iid_alpha(tau_mode, d_mode)


class ExpectedAcceptance:
    """i.i.d. alpha in expectation: every round commits L(l, alpha) tokens (fractional), deterministic [P]."""

    kind = "expected"

    def __init__(self, alpha: float):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.stats = AcceptanceStats(kind=self.kind, name=f"expected(alpha={alpha:g})", alpha=self.alpha)

    def needs_uniforms(self, max_l: int) -> bool:
        return False


class IIDAcceptance:
    """Sampled i.i.d. acceptance: G ~ geometric with P(G >= i) = alpha^i, from the canonical uniforms."""

    kind = "iid"

    def __init__(self, alpha: float):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.stats = AcceptanceStats(kind=self.kind, name=f"iid(alpha={alpha:g})", alpha=self.alpha)

    def needs_uniforms(self, max_l: int) -> bool:
        return True

    def assign(self, num_tasks: int, rng: np.random.Generator) -> None:
        return None

    def draw(self, n0: int, n1: int, uniforms: np.ndarray, assignment) -> tuple[np.ndarray, np.ndarray]:
        g = geometric_from_uniform(uniforms, self.alpha)
        return g, np.full(g.shape, NO_CAP, dtype=np.int64)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TraceValidationError(f"{source}: missing column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise TraceValidationError(f"{source}: no rows")


def _check_counts(drafted: np.ndarray, accepted: np.ndarray, source: str, index) -> None:
    bad = np.flatnonzero(drafted < 1)
    if bad.size:
        raise TraceValidationError(f"{source}: row {index[bad[0]]}: drafted={drafted[bad[0]]}, expected >= 1")
    bad = np.flatnonzero((accepted < 0) | (accepted > drafted))
    if bad.size:
        i = bad[0]
        raise TraceValidationError(
            f"{source}: row {index[i]}: accepted={accepted[i]} with drafted={drafted[i]}, expected "
            "0 <= accepted <= drafted"
        )


class TraceAcceptance:
    """Replays recorded per-round counts.

    The frame's rounds are grouped into *units*, one per (request_id, turn), ordered by request_id, turn, round
    and concatenated into one stream. Task k gets a start unit (:meth:`assign`: a seeded permutation of the units,
    repeated when there are more tasks than units) and replays the stream from there; if its unit's rounds run
    out before its output is complete it continues into the next units [A: concatenation]. ``tail_min_rounds``
    is how many rounds must support ``alpha_tail`` (:func:`~specedge.latency.acceptance_tail.tail_alpha`) [A].
    """

    kind = "trace"

    def __init__(self, frame: pd.DataFrame, *, name: str = "trace", tail_min_rounds: int = TAIL_MIN_ROUNDS):
        _require(frame, ("request_id", "round", "drafted", "accepted"), name)
        cols = ["request_id", "turn", "round"] if "turn" in frame.columns else ["request_id", "round"]
        ordered = frame.sort_values(cols, kind="stable")
        drafted = ordered["drafted"].to_numpy(np.int64)
        accepted = ordered["accepted"].to_numpy(np.int64)
        _check_counts(drafted, accepted, name, ordered.index.to_numpy())
        unit = ordered.groupby(cols[:-1], sort=False, observed=True).ngroup().to_numpy()
        starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
        self.name = name
        self.drafted = drafted
        self.accepted = accepted
        self.unit_starts = starts
        first = ordered.iloc[starts]
        self.unit_keys = tuple(zip(*(first[c].tolist() for c in cols[:-1])))
        counts = np.ones_like(drafted)
        alpha_i, tail, m, tau, alpha = _survival_stats(drafted, accepted, counts, tail_min_rounds)
        alpha_tail = tail.alpha
        unit_len = np.diff(np.r_[starts, drafted.size])
        per_unit_tau = 1.0 + np.add.reduceat(accepted, starts) / unit_len
        full = accepted == drafted
        self.alpha_tail = alpha_tail
        self.min_full_drafted = int(drafted[full].min()) if full.any() else NO_CAP
        self.stats = AcceptanceStats(
            kind=self.kind, name=name, alpha=alpha, tau=tau, draft_acceptance_ratio=m, alpha_i=alpha_i,
            alpha_tail=alpha_tail, tail=tail, min_drafted=int(drafted.min()), max_drafted=int(drafted.max()),
            num_units=int(starts.size), num_rounds=int(drafted.size), per_unit_tau=per_unit_tau,
        )

    def needs_uniforms(self, max_l: int) -> bool:
        """Uniforms are drawn only if some round may need extrapolation (l above a fully accepted round's draft)."""
        return max_l > self.min_full_drafted

    def assign(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Start unit of each task: a seeded permutation of the units, repeated to cover every task."""
        return np.resize(rng.permutation(self.unit_starts.size), num_tasks)

    def draw(self, n0: int, n1: int, uniforms, assignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = self.unit_starts[assignment]
        rows = (start[None, :] + np.arange(n0, n1)[:, None]) % self.drafted.size
        acc = self.accepted[rows]
        dr = self.drafted[rows]
        full = acc == dr
        cap = np.where(full, dr, NO_CAP)
        if uniforms is None:
            return acc, cap
        return np.where(full, dr + geometric_from_uniform(uniforms, self.alpha_tail), acc), cap


class AggregateAcceptance:
    """Samples rounds i.i.d. from a (drafted, accepted, count) histogram.

    One uniform per round picks a histogram bin; for a fully accepted bin the same uniform, rescaled within the
    bin, draws the extrapolated extra acceptances from ``alpha_tail`` (flagged when used).
    """

    kind = "aggregate"

    def __init__(self, frame: pd.DataFrame, *, name: str = "aggregate", tail_min_rounds: int = TAIL_MIN_ROUNDS):
        _require(frame, ("drafted", "accepted", "count"), name)
        grouped = frame.groupby(["drafted", "accepted"], sort=True)["count"].sum().reset_index()
        drafted = grouped["drafted"].to_numpy(np.int64)
        accepted = grouped["accepted"].to_numpy(np.int64)
        counts = grouped["count"].to_numpy(np.float64)
        _check_counts(drafted, accepted, name, grouped.index.to_numpy())
        if (counts < 0).any() or counts.sum() <= 0:
            raise TraceValidationError(f"{name}: counts must be >= 0 with a positive total")
        keep = counts > 0
        self.name = name
        self.drafted, self.accepted, self.counts = drafted[keep], accepted[keep], counts[keep]
        self.cdf = np.cumsum(self.counts)
        alpha_i, tail, m, tau, alpha = _survival_stats(self.drafted, self.accepted, self.counts, tail_min_rounds)
        alpha_tail = self.alpha_tail = tail.alpha
        self.stats = AcceptanceStats(
            kind=self.kind, name=name, alpha=alpha, tau=tau, draft_acceptance_ratio=m, alpha_i=alpha_i,
            alpha_tail=alpha_tail, tail=tail, min_drafted=int(self.drafted.min()),
            max_drafted=int(self.drafted.max()), num_units=0, num_rounds=int(self.counts.sum()),
        )

    def needs_uniforms(self, max_l: int) -> bool:
        return True

    def assign(self, num_tasks: int, rng: np.random.Generator) -> None:
        return None

    def draw(self, n0: int, n1: int, uniforms: np.ndarray, assignment) -> tuple[np.ndarray, np.ndarray]:
        total = self.cdf[-1]
        x = uniforms * total
        idx = np.minimum(np.searchsorted(self.cdf, x, side="right"), self.cdf.size - 1)
        acc = self.accepted[idx]
        dr = self.drafted[idx]
        full = acc == dr
        below = self.cdf[idx] - self.counts[idx]
        v = np.clip((x - below) / self.counts[idx], 0.0, np.nextafter(1.0, 0.0))
        g = np.where(full, dr + geometric_from_uniform(v, self.alpha_tail), acc)
        return g, np.where(full, dr, NO_CAP)


AcceptanceSource = ExpectedAcceptance | IIDAcceptance | TraceAcceptance | AggregateAcceptance


def source_from_frame(frame: pd.DataFrame, *, name: str = "frame", kind: str | None = None):
    """A trace or aggregate source from a DataFrame (kind inferred from its columns when not given)."""
    if kind is None:
        kind = "aggregate" if "count" in frame.columns and "round" not in frame.columns else "trace"
    if kind == "aggregate":
        return AggregateAcceptance(frame, name=name)
    if kind in ("trace", "acceptance"):
        return TraceAcceptance(frame, name=name)
    raise TraceValidationError(f"{name}: dataset kind {kind!r} cannot drive acceptance (need acceptance or aggregate)")
