"""Accepted-count histograms for the sources that carry only aggregates.

- :func:`counts_from_survival` turns per-position acceptance counts (vLLM's ``num_accepted_tokens_per_pos``:
  position i counts the drafts whose first i+1 tokens were all accepted, i.e. survival counts, not
  conditional rates) plus the number of drafts into an exact histogram.
- :func:`fit_iid_positions` is for sources with totals only (llama.cpp's summary, SGLang without its
  histogram). Totals cannot determine a histogram, so this one is *fitted* under a named assumption,
  :data:`IID_POSITIONS`, and every dataset built with it says so in its metadata (``histogram: fitted``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

#: Assumption behind :func:`fit_iid_positions`: every round drafts the same number of tokens γ and each
#: drafted position is accepted with the same probability α, independently, until the first rejection, so
#: P(accepted ≥ i) = α^i for i ≤ γ. α is chosen so that the mean accepted count per round matches the totals.
IID_POSITIONS = "iid-positions"


def counts_from_survival(num_drafts: int, per_pos: np.ndarray) -> np.ndarray:
    """Histogram over accepted = 0..γ from N drafts and survival counts p[i] = #(accepted > i), i < γ.

    count[0] = N − p[0], count[k] = p[k−1] − p[k], count[γ] = p[γ−1]. Raises ValueError (with the
    offending position) when the counts are not a survival sequence (p must be non-increasing, p[0] ≤ N).
    """
    p = np.asarray(per_pos, dtype=np.int64)
    upper = np.concatenate(([int(num_drafts)], p))
    lower = np.concatenate((p, [0]))
    counts = upper - lower
    bad = np.flatnonzero(counts < 0)
    if bad.size:
        k = int(bad[0])
        if k == 0:
            raise ValueError(f"position 0 counts {p[0]} accepted drafts but there are only {num_drafts} drafts")
        raise ValueError(f"position {k} counts {p[k]} but position {k - 1} counts {p[k - 1]}; per-position counts "
                         "must not increase (position i counts drafts whose first i+1 tokens were all accepted)")
    return counts


def aggregate_table(histograms: Mapping[int, np.ndarray]) -> pa.Table:
    """An aggregate-kind table from {drafted: counts over accepted = 0..}; zero-count bins are kept so that
    the histogram's support (0..drafted) is explicit."""
    drafted, accepted, count = [], [], []
    for d in sorted(histograms):
        c = np.asarray(histograms[d], dtype=np.int64)
        drafted.append(np.full(c.size, d, dtype=np.int64))
        accepted.append(np.arange(c.size, dtype=np.int64))
        count.append(c)
    return pa.table(
        {
            "drafted": pa.array(np.concatenate(drafted)),
            "accepted": pa.array(np.concatenate(accepted)),
            "count": pa.array(np.concatenate(count)),
        }
    )


def _mean_accepted(alpha: float, drafted: int) -> float:
    return float(np.sum(alpha ** np.arange(1, drafted + 1)))


def fit_iid_positions(rounds: int, accepted_total: int, drafted: int) -> tuple[np.ndarray, float]:
    """Counts over accepted = 0..drafted for ``rounds`` rounds, fitted under :data:`IID_POSITIONS`.

    α solves Σ_{i=1..γ} α^i = accepted_total / rounds (bisection; the left side increases with α). The
    expected counts are rounded by largest remainder to sum to ``rounds``, then single rounds are moved
    between neighbouring bins until Σ k·count equals ``accepted_total`` exactly. Returns (counts, α).
    """
    if rounds < 1:
        raise ValueError(f"{rounds} rounds; expected at least one")
    mean = accepted_total / rounds
    if not 0 <= mean <= drafted:
        raise ValueError(f"{accepted_total} accepted tokens over {rounds} rounds is {mean:.3f} per round; "
                         f"expected between 0 and drafted = {drafted}")
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _mean_accepted(mid, drafted) < mean:
            lo = mid
        else:
            hi = mid
    alpha = 0.5 * (lo + hi)
    s = alpha ** np.arange(drafted + 2, dtype=np.float64)
    pmf = s[:-1] - s[1:]
    pmf[-1] = s[drafted]
    expected = pmf * rounds
    counts = np.floor(expected).astype(np.int64)
    short = rounds - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(expected - counts), kind="stable")[:short]] += 1
    k = np.arange(drafted + 1)
    diff = accepted_total - int(np.dot(k, counts))
    while diff != 0:  # at most ~drafted moves: rounding moved Σk·count by less than drafted
        if diff > 0:
            src = np.flatnonzero(counts[:-1] > 0)
            j = int(src[np.argmax(expected[src + 1] - counts[src + 1])])
            counts[j] -= 1
            counts[j + 1] += 1
            diff -= 1
        else:
            src = np.flatnonzero(counts[1:] > 0) + 1
            j = int(src[np.argmax(expected[src - 1] - counts[src - 1])])
            counts[j] -= 1
            counts[j - 1] += 1
            diff += 1
    return counts, alpha
