"""The tail acceptance α_tail: what a recorded trace says about draft positions beyond its draft length.

A round that accepted every drafted token only tells G ≥ drafted; replay at a longer l extrapolates the extra
acceptances with an i.i.d. tail P(extra ≥ j) = α_tail^j [A: geometric tail]. α_tail is estimated from the last
draft positions, and those are reached by few rounds (a draft with α ≈ 0.3 reaches position 8 in 0.3^7 ≈ 0.02%
of its rounds), so an estimate from the last positions alone can rest on a handful of rounds and read 1.00.

Per position i (1-based) the *trials* are the rounds that put position i to the test and the *successes* those
that accepted it [P: chain rule of the acceptance process]:

    n_i = #{rounds: drafted ≥ i and accepted ≥ i − 1},    s_i = #{rounds: drafted ≥ i and accepted ≥ i}

(weighted by ``count`` for histograms). A round tried at position i was also tried at every j < i, so the
*distinct* rounds behind the pooled positions p..d_max are exactly n_p.

Estimator (:func:`tail_alpha`):

1. **Pool until supported.** p* = the largest p with n_p ≥ ``min_rounds`` (:data:`TAIL_MIN_ROUNDS`, 200 [A]);
   the estimate pools positions p*..d_max: s = Σ_{i ≥ p*} s_i, n = Σ_{i ≥ p*} n_i [A: one α over the pooled
   positions]. When even n_1 (every round) is below ``min_rounds``, p* = 1 and the estimate is the
   all-position one, flagged ``supported = False``.
2. **Never certain.** The point estimate is the posterior mean under the Jeffreys prior Beta(½, ½) [A],
   α_tail = (s + ½) / (n + 1), which lies strictly inside (0, 1) for every finite n (at n = 0 it is ½); it
   differs from s / n by at most 1 / (2(n + 1)).
3. **Interval.** The two-sided Clopper–Pearson interval at ``confidence`` (0.95 [A]):
   [B⁻¹(a/2; s, n − s + 1), B⁻¹(1 − a/2; s + 1, n − s)], a = 1 − confidence, with the bound 0 (s = 0) or
   1 (s = n) at the edges. It treats the n trials as independent Bernoulli draws [A]; rounds of one request are
   correlated in real traces (clumped acceptance), so the interval is optimistic there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Distinct rounds that must support α_tail before it may rest on the last positions alone [A].
TAIL_MIN_ROUNDS = 200
#: Confidence level of the reported Clopper–Pearson interval [A].
TAIL_CONFIDENCE = 0.95
#: Pseudo-counts of the Jeffreys prior Beta(½, ½) added to successes and failures [A].
JEFFREYS_PSEUDO_COUNT = 0.5


@dataclass(frozen=True)
class TailEstimate:
    """α_tail with its support: ``rounds`` distinct rounds (n_{p*}) and ``trials`` position trials (Σ n_i) over
    positions ``first_position``..``last_position``; ``successes`` = Σ s_i; ``ci_low``/``ci_high`` the
    Clopper–Pearson interval; ``supported`` = rounds ≥ ``min_rounds``."""

    alpha: float
    rounds: int
    trials: float
    successes: float
    first_position: int
    last_position: int
    ci_low: float
    ci_high: float
    min_rounds: int
    supported: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "alpha_tail": self.alpha,
            "alpha_tail_rounds": self.rounds,
            "alpha_tail_trials": self.trials,
            "alpha_tail_positions": [self.first_position, self.last_position],
            "alpha_tail_ci": [self.ci_low, self.ci_high],
            "alpha_tail_min_rounds": self.min_rounds,
            "alpha_tail_supported": self.supported,
        }


def position_trials(drafted, accepted, weight=None) -> tuple[np.ndarray, np.ndarray]:
    """(n_i, s_i) for i = 1..max drafted: trials and successes at each draft position (see the module doc)."""
    drafted = np.asarray(drafted, dtype=np.int64)
    accepted = np.asarray(accepted, dtype=np.int64)
    w = np.ones(drafted.size) if weight is None else np.asarray(weight, dtype=np.float64)
    d_max = int(drafted.max())
    # A round with drafted = d and accepted = a is tried at positions 1..min(d, a + 1) and succeeds at 1..a.
    tried = np.minimum(drafted, accepted + 1)
    n_at = np.bincount(tried, weights=w, minlength=d_max + 2)  # rounds whose last tried position is exactly i
    s_at = np.bincount(accepted, weights=w, minlength=d_max + 2)
    n = np.cumsum(n_at[::-1])[::-1][1: d_max + 1]  # n_i = #{tried >= i}
    s = np.cumsum(s_at[::-1])[::-1][1: d_max + 1]  # s_i = #{accepted >= i}
    return n, s


def clopper_pearson(successes: float, trials: float, confidence: float = TAIL_CONFIDENCE) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    a = 1.0 - confidence
    low = 0.0 if successes <= 0 else float(sps.beta.ppf(a / 2, successes, trials - successes + 1))
    high = 1.0 if successes >= trials else float(sps.beta.ppf(1 - a / 2, successes + 1, trials - successes))
    return low, high


def tail_alpha(drafted, accepted, weight=None, *, min_rounds: int = TAIL_MIN_ROUNDS,
               confidence: float = TAIL_CONFIDENCE) -> TailEstimate:
    """α_tail pooled from the last positions until ``min_rounds`` distinct rounds support it (module doc)."""
    if min_rounds < 1:
        raise ValueError(f"min_rounds must be >= 1, got {min_rounds}")
    n, s = position_trials(drafted, accepted, weight)
    d_max = n.size
    reached = np.flatnonzero(n >= min_rounds)
    first = int(reached[-1]) if reached.size else 0  # 0-based index of p*
    trials, successes = float(n[first:].sum()), float(s[first:].sum())
    alpha = (successes + JEFFREYS_PSEUDO_COUNT) / (trials + 2 * JEFFREYS_PSEUDO_COUNT)
    low, high = clopper_pearson(successes, trials, confidence)
    rounds = int(round(float(n[first])))
    return TailEstimate(alpha=float(alpha), rounds=rounds, trials=trials, successes=successes,
                        first_position=first + 1, last_position=d_max, ci_low=low, ci_high=high,
                        min_rounds=int(min_rounds), supported=bool(rounds >= min_rounds))
