"""Derived acceptance statistics, computed on read.

Every function takes an ``acceptance`` frame (one row per round: ``drafted``, ``accepted``, ...) or an
``aggregate`` frame (a histogram: ``drafted``, ``accepted``, ``count``); aggregate rows are weighted by
``count``. The field uses the same words for different things, so each quantity says which it is:

- τ, mean tokens per round = 1 + mean(accepted) (Spec-Bench's "mean accepted tokens");
- m, draft acceptance ratio = Σ accepted / Σ drafted (vLLM's "draft acceptance rate");
- survival S(i) = P(accepted ≥ i), i = 0..max drafted (vLLM's "per-position acceptance"), S(0) = 1;
- conditional α_i = S(i) / S(i−1), i = 1..max drafted (the paper's α if positions were i.i.d.; NaN where
  S(i−1) = 0).

Rounds with different ``drafted`` are pooled: S(i) counts every round, including rounds that drafted fewer
than i tokens (which cannot reach i).

- α_tail, the acceptance replay extrapolates with beyond the recorded draft length: the last positions pooled
  until ``TAIL_MIN_ROUNDS`` rounds support it, Jeffreys posterior mean (< 1), Clopper–Pearson interval
  (:func:`tail`, equations in :mod:`specedge.latency.acceptance_tail`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from specedge.errors import InputError
from specedge.latency.acceptance_tail import TAIL_MIN_ROUNDS, TailEstimate, tail_alpha


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(drafted, accepted, weight) as numpy; weight = count for aggregate frames, 1 otherwise."""
    missing = [c for c in ("drafted", "accepted") if c not in frame.columns]
    if missing:
        raise InputError(f"acceptance statistics need columns drafted and accepted; missing {', '.join(missing)}")
    drafted = frame["drafted"].to_numpy(dtype=np.int64)
    accepted = frame["accepted"].to_numpy(dtype=np.int64)
    if "count" in frame.columns:
        weight = frame["count"].to_numpy(dtype=np.float64)
    else:
        weight = np.ones(accepted.size, dtype=np.float64)
    if weight.sum() <= 0:
        raise InputError("acceptance statistics need at least one round; the frame is empty")
    return drafted, accepted, weight


def is_aggregate(frame: pd.DataFrame) -> bool:
    return "count" in frame.columns


def rounds(frame: pd.DataFrame) -> int:
    """Number of verification rounds (Σ count for aggregates)."""
    return int(round(_arrays(frame)[2].sum()))


def tau(frame: pd.DataFrame) -> float:
    """τ = 1 + mean(accepted): mean tokens committed per round, bonus token included."""
    _, accepted, w = _arrays(frame)
    return 1.0 + float(np.dot(accepted, w) / w.sum())


def acceptance_ratio(frame: pd.DataFrame) -> float:
    """m = Σ accepted / Σ drafted: the fraction of drafted tokens that were accepted."""
    drafted, accepted, w = _arrays(frame)
    return float(np.dot(accepted, w) / np.dot(drafted, w))


def survival(frame: pd.DataFrame) -> np.ndarray:
    """S[i] = P(accepted ≥ i) for i = 0..max drafted; S[0] = 1 and S is non-increasing."""
    drafted, accepted, w = _arrays(frame)
    mass = np.bincount(accepted, weights=w, minlength=int(drafted.max()) + 1)
    tail = np.cumsum(mass[::-1])[::-1]
    s = tail / tail[0]
    s[0] = 1.0
    return np.minimum.accumulate(np.clip(s, 0.0, 1.0))


def conditional_alpha(frame: pd.DataFrame) -> np.ndarray:
    """α_i = S(i) / S(i−1) for i = 1..max drafted (NaN where S(i−1) = 0)."""
    s = survival(frame)
    prev, cur = s[:-1], s[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(prev > 0, cur / np.where(prev > 0, prev, 1.0), np.nan)
    return np.clip(alpha, 0.0, 1.0)


def tail(frame: pd.DataFrame, min_rounds: int = TAIL_MIN_ROUNDS) -> TailEstimate:
    """α_tail with its support (rounds, positions, 95% interval); see :mod:`specedge.latency.acceptance_tail`."""
    drafted, accepted, w = _arrays(frame)
    return tail_alpha(drafted, accepted, w, min_rounds=min_rounds)


def histogram(frame: pd.DataFrame) -> pd.DataFrame:
    """Rounds per (drafted, accepted): columns drafted, accepted, count (int64), sorted."""
    drafted, accepted, w = _arrays(frame)
    span = int(accepted.max()) + 1
    key = drafted * span + accepted
    uniq, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=w)
    return pd.DataFrame(
        {
            "drafted": (uniq // span).astype(np.int16),
            "accepted": (uniq % span).astype(np.int16),
            "count": np.rint(counts).astype(np.int64),
        }
    )


def per_request(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per request: request_id, turns, rounds, tau, acceptance_ratio, drafted_mean, prompt_tokens,
    wall_ms (sum; NaN unless every round has it) and category (when the frame has one)."""
    if is_aggregate(frame) or "request_id" not in frame.columns:
        raise InputError("per-request statistics need an acceptance frame (with request_id); "
                         "aggregate datasets hold only a histogram")
    _arrays(frame)
    g = frame.groupby("request_id", sort=True, observed=True)
    out = pd.DataFrame(
        {
            "turns": g["turn"].nunique() if "turn" in frame.columns else 1,
            "rounds": g.size(),
            "tau": 1.0 + g["accepted"].mean(),
            "acceptance_ratio": g["accepted"].sum() / g["drafted"].sum(),
            "drafted_mean": g["drafted"].mean(),
        }
    )
    if "prompt_tokens" in frame.columns:
        out["prompt_tokens"] = g["prompt_tokens"].first()
    if "wall_ms" in frame.columns:
        out["wall_ms"] = g["wall_ms"].sum(min_count=1).where(g["wall_ms"].count() == g.size())
    if "category" in frame.columns:
        out["category"] = g["category"].first()
    return out.reset_index()


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def summary(frame: pd.DataFrame) -> dict[str, Any]:
    """The JSON-ready summary that ``specedge traces show --json`` prints.

    Keys: rounds, requests (None for aggregates), tau, acceptance_ratio, max_drafted, survival (list, index
    i = S(i)), alpha (list, index i−1 = α_i, None where undefined), alpha_tail (number, < 1) and
    alpha_tail_rounds (int: distinct rounds behind it) with alpha_tail_trials, alpha_tail_positions ([first,
    last]), alpha_tail_ci (95% Clopper–Pearson), alpha_tail_min_rounds, alpha_tail_supported, histogram (list of
    {drafted, accepted, count}), by_category ({category: {rounds, tau, acceptance_ratio}}; empty without
    categories).
    """
    drafted, _, _ = _arrays(frame)
    hist = histogram(frame)
    out: dict[str, Any] = {
        "rounds": rounds(frame),
        "requests": None if is_aggregate(frame) or "request_id" not in frame.columns
        else int(frame["request_id"].nunique()),
        "tau": tau(frame),
        "acceptance_ratio": acceptance_ratio(frame),
        "max_drafted": int(drafted.max()),
        "survival": [float(x) for x in survival(frame)],
        "alpha": [_clean(float(x)) for x in conditional_alpha(frame)],
        **tail(frame).to_dict(),
        "histogram": [
            {"drafted": int(d), "accepted": int(a), "count": int(c)}
            for d, a, c in zip(hist["drafted"], hist["accepted"], hist["count"])
        ],
        "by_category": {},
    }
    if "category" in frame.columns and frame["category"].notna().any():
        for cat, sub in frame[frame["category"].notna()].groupby("category", sort=True, observed=True):
            out["by_category"][str(cat)] = {
                "rounds": rounds(sub),
                "tau": tau(sub),
                "acceptance_ratio": acceptance_ratio(sub),
            }
    return out
