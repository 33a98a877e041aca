"""The rank's own noise floor: how well the measurement itself orders a pair's plans.

Rank fidelity (:meth:`specedge.fidelity.repeats.FidelityStudy.rank`) compares each plan's predicted makespan with
its measured one (median over its quiet repeats). On a loaded machine one plan's makespan can vary between repeats
by more than the gap between two plans, so the measurement cannot order every pair; a rank benchmark must say so
rather than blame (or credit) the predictor. Two numbers do:

``repeat_tau`` — the measurement's rank agreement with itself. Each plan's repeats (at least two) are ordered by
creation time; for every pair of repeat indices (r, r'), r < r', Kendall's τ-b (:func:`scipy.stats.kendalltau`)
between the plans' makespans in repeat r and in repeat r', over the plans with at least r' + 1 repeats (at least
:data:`MIN_PLANS_FOR_REPEAT_TAU` of them); ``repeat_tau`` is the median over those (r, r') (``repeat_taus`` lists
them, undefined τ — a constant repeat — left out). It is the ceiling a perfect predictor could expect against a
single repeat. None when no plan pair has two repeats.

``kendall_tau_resolved`` — τ over the plan pairs the measurement resolves (:data:`RESOLVED_RULE`): for each resolved
pair, +1 when the predicted order matches the measured one, −1 when it is reversed, 0 when the two predictions are
equal (a tie in prediction counts as neither concordant nor discordant), summed and divided by the number of
resolved pairs. None when no pair is resolved.

``tau_ceiling_median`` and ``p_tau_at_least_target`` — the rank target's ceiling on this measurement
(:func:`tau_ceiling`). The issue asks for Kendall τ ≥ :data:`RANK_TARGET_TAU` between predicted and measured
(median over repeats) makespans; when plans lie closer together than their run-to-run noise, even a perfect
predictor — one that knows each plan's true expected makespan — misses that by chance, because the measured medians
it is scored against are themselves noisy. A bootstrap estimates by how much: [A] each plan's median over all its
repeats stands in for its true makespan; each of :data:`CEILING_RESAMPLES` resamples draws, for every plan, as many
repeats as it has, with replacement, from its own repeats, takes their median, and scores the true values against
those resampled medians with τ-b. ``tau_ceiling_median`` is the median τ over the resamples (undefined τ — all
resampled medians tied — left out), ``p_tau_at_least_target`` the share of resamples whose τ reaches the target,
``ceiling_plans`` the plans used and ``ceiling_resamples`` the resamples drawn. A plan measured once has no spread
to resample and is left out (it would look perfectly repeatable); fewer than :data:`MIN_PLANS_FOR_CEILING` plans
with at least :data:`MIN_REPEATS_TO_RESOLVE` repeats give None. The ceiling is a property of the measurement (its
plans' spacing against their noise, and its repeats), not of any predictor: a predictor's τ below it is not
evidence against the predictor, and a low ceiling says the measurement, not the model, limits the rank target.

``best_choice`` — what choosing the plan replay ranks first costs, as measured (``regret``), how far the measured
best lies from its runner-up (``best_gap``), and whether the repeats resolve either pair (:func:`best_choice`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Repeats a plan needs before its measured range can resolve anything (one run has no range).
MIN_REPEATS_TO_RESOLVE = 2
#: Plans a repeat pair (r, r') needs for its τ (fewer orders too few pairs to mean anything).
MIN_PLANS_FOR_REPEAT_TAU = 3
#: [A] The rule that says the measurement orders two plans.
RESOLVED_RULE = ("two plans are resolved when the ranges [min, max] of their repeats' measured makespans do not "
                 "overlap (strictly: ranges that touch overlap); each plan needs at least "
                 f"{MIN_REPEATS_TO_RESOLVE} repeats, so a plan measured once resolves nothing")
#: The issue's rank target: Kendall τ between predicted and measured makespans over at least six plans.
RANK_TARGET_TAU = 0.9
#: [A] Bootstrap resamples for the rank target's ceiling (the share's standard error is at most 0.5/√2000 ≈ 0.011).
CEILING_RESAMPLES = 2000
#: Seed of the ceiling's bootstrap, so one store always reports one ceiling.
CEILING_SEED = 0
#: Plans (each with at least MIN_REPEATS_TO_RESOLVE repeats) the ceiling needs (fewer order too few pairs).
MIN_PLANS_FOR_CEILING = 3


def ordered_repeats(repeats: Sequence[Sequence[tuple]]) -> list[np.ndarray]:
    """Each plan's makespans ordered by creation time (``repeats``: per plan, (created, makespan) pairs; created is
    anything :class:`pandas.Timestamp` reads; equal times keep their given order)."""
    out = []
    for runs in repeats:
        runs = sorted(runs, key=lambda cm: pd.Timestamp(cm[0]))
        out.append(np.array([float(m) for _, m in runs], dtype=np.float64))
    return out


def repeat_taus(spans: Sequence[np.ndarray]) -> tuple[list[float], list[tuple[int, int]]]:
    """τ-b between repeat r and repeat r' over the plans with at least r' + 1 repeats, for every r < r' with at
    least :data:`MIN_PLANS_FOR_REPEAT_TAU` such plans; with the (r, r') of each τ."""
    from scipy.stats import kendalltau

    spans = [s for s in spans if len(s) >= 2]
    most = max((len(s) for s in spans), default=0)
    taus, pairs = [], []
    for r in range(most):
        for r2 in range(r + 1, most):
            have = [s for s in spans if len(s) > r2]
            if len(have) < MIN_PLANS_FOR_REPEAT_TAU:
                continue
            tau = float(kendalltau([s[r] for s in have], [s[r2] for s in have]).statistic)
            if np.isfinite(tau):
                taus.append(tau)
                pairs.append((r, r2))
    return taus, pairs


def resolved_pairs(spans: Sequence[np.ndarray]) -> list[tuple[int, int, int]]:
    """The plan pairs (i, j), i < j, the measurement resolves (:data:`RESOLVED_RULE`), each with the measured
    order: −1 when plan i is the faster, +1 when plan j is."""
    out = []
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            a, b = spans[i], spans[j]
            if len(a) < MIN_REPEATS_TO_RESOLVE or len(b) < MIN_REPEATS_TO_RESOLVE:
                continue
            if a.max() < b.min():
                out.append((i, j, -1))
            elif b.max() < a.min():
                out.append((i, j, 1))
    return out


def tau_b_rows(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Kendall's τ-b between ``x`` (n values) and each row of ``ys`` (r × n), as :func:`scipy.stats.kendalltau`
    computes it: over all pairs i < j, (concordant − discordant) / √(pairs untied in x · pairs untied in the row);
    NaN where either has every pair tied."""
    i, j = np.triu_indices(len(x), k=1)
    sx = np.sign(x[i] - x[j])                    # (pairs,)
    sy = np.sign(ys[:, i] - ys[:, j])            # (r, pairs)
    num = (sy * sx).sum(axis=1)                  # concordant − discordant (a tie on either side counts 0)
    den = np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy, axis=1).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def tau_ceiling(spans: Sequence[np.ndarray], *, resamples: int = CEILING_RESAMPLES, seed: int = CEILING_SEED,
                target: float = RANK_TARGET_TAU) -> dict | None:
    """What a perfect predictor would score against this measurement (module docstring): per plan with at least
    :data:`MIN_REPEATS_TO_RESOLVE` repeats, its full-sample median makespan is the truth; each resample redraws
    every such plan's repeats with replacement (as many as it has) and τ-b compares the truths with the resampled
    medians. None when fewer than :data:`MIN_PLANS_FOR_CEILING` plans qualify."""
    used = [np.asarray(s, dtype=np.float64) for s in spans if len(s) >= MIN_REPEATS_TO_RESOLVE]
    if len(used) < MIN_PLANS_FOR_CEILING:
        return None
    rng = np.random.default_rng(seed)
    truth = np.array([np.median(s) for s in used])
    medians = np.empty((resamples, len(used)))
    for k, s in enumerate(used):
        draw = rng.integers(0, len(s), size=(resamples, len(s)))  # n_k repeats with replacement, per resample
        medians[:, k] = np.median(s[draw], axis=1)
    taus = tau_b_rows(truth, medians)
    defined = taus[np.isfinite(taus)]
    return {"tau_ceiling_median": float(np.median(defined)) if len(defined) else None,
            # NaN (undefined τ) is a miss; 1e-12 lets a τ that equals the target in exact arithmetic (9/10) count
            "p_tau_at_least_target": float(np.mean(taus >= target - 1e-12)),
            "ceiling_plans": len(used), "ceiling_resamples": int(resamples)}


#: The keys :func:`tau_ceiling` adds to :func:`rank_noise` (each None when it cannot be computed).
CEILING_KEYS = ("tau_ceiling_median", "p_tau_at_least_target", "ceiling_plans", "ceiling_resamples")


def rank_noise(repeats: Sequence[Sequence[tuple]], predicted: Sequence[float]) -> dict:
    """The rank's noise floor of one pair's plans (module docstring): ``repeats`` per plan (created, measured
    makespan) of its quiet repeats in the session, ``predicted`` per plan its predicted makespan."""
    if len(repeats) != len(predicted):
        raise ValueError("one list of repeats per predicted makespan")
    spans = ordered_repeats(repeats)
    taus, tau_pairs = repeat_taus(spans)
    resolved = resolved_pairs(spans)
    pred = np.asarray(predicted, dtype=np.float64)
    concordant = discordant = 0
    for i, j, measured in resolved:
        said = int(np.sign(pred[i] - pred[j]))
        if said == measured:
            concordant += 1
        elif said == -measured:
            discordant += 1  # said == 0 (a tie in prediction): neither
    n = len(spans)
    ceiling = tau_ceiling(spans) or dict.fromkeys(CEILING_KEYS)
    return {"repeat_tau": float(np.median(taus)) if taus else None, "repeat_taus": taus,
            "repeat_tau_pairs": [list(p) for p in tau_pairs],
            "resolved_pairs": len(resolved), "unresolved_pairs": n * (n - 1) // 2 - len(resolved),
            "concordant_resolved": concordant, "discordant_resolved": discordant,
            "kendall_tau_resolved": (concordant - discordant) / len(resolved) if resolved else None, **ceiling}


#: The keys :func:`best_choice` adds to a rank entry (each None when it cannot be computed, see there).
BEST_CHOICE_KEYS = ("predicted_best", "measured_best", "regret", "best_gap", "best_resolved", "regret_resolved")


def best_choice(repeats: Sequence[Sequence[tuple]], predicted: Sequence[float], measured: Sequence[float],
                labels: Sequence[str]) -> dict:
    """What choosing a plan by the prediction costs, and whether the measurement can tell: per plan ``repeats`` its
    quiet repeats' (created, measured makespan) as :func:`rank_noise` takes them, ``predicted`` its predicted
    makespan, ``measured`` its measured makespan (the median over its repeats the rank entry reports, which also
    decides ``same_best``) and ``labels`` its name. Best = smallest makespan, the first plan on a tie (as
    :func:`numpy.argmin`).

    - ``predicted_best`` / ``measured_best``: the label of the plan replay ranks first / the plan measured fastest.
    - ``regret`` = measured[predicted best] / measured[measured best] − 1: how much slower, as measured, the plan
      chosen by the prediction is than the best one (0.0 when the two are the same plan).
    - ``best_gap`` = (measured runner-up − measured best) / measured best: how close the measured best's nearest
      rival lies (None with fewer than two plans); when the prediction chose the runner-up, regret = best_gap.
    - ``best_resolved``: whether the measured best and runner-up are a pair the repeats resolve
      (:data:`RESOLVED_RULE`); False: the measurement itself cannot say which of the two is faster. None with fewer
      than two plans, or when either has fewer than :data:`MIN_REPEATS_TO_RESOLVE` repeats (cannot judge).
    - ``regret_resolved``: whether the pair (predicted best, measured best) is resolved; False: the measurement
      cannot say the prediction chose wrong. None when the prediction chose the measured best, or either plan has
      fewer than :data:`MIN_REPEATS_TO_RESOLVE` repeats.

    All None for no plans."""
    n = len(labels)
    if not (len(repeats) == len(predicted) == len(measured) == n):
        raise ValueError("one list of repeats, predicted and measured makespan per label")
    if n == 0:
        return dict.fromkeys(BEST_CHOICE_KEYS)
    meas = np.asarray(measured, dtype=np.float64)
    order = np.argsort(meas, kind="stable")  # its first is np.argmin's: the first plan on a tie
    chosen, best = int(np.argmin(np.asarray(predicted, dtype=np.float64))), int(order[0])
    spans = ordered_repeats(repeats)
    resolved = {(i, j) for i, j, _ in resolved_pairs(spans)}

    def judged(i: int, j: int) -> bool | None:
        if min(len(spans[i]), len(spans[j])) < MIN_REPEATS_TO_RESOLVE:
            return None
        return (min(i, j), max(i, j)) in resolved

    runner_up = int(order[1]) if n >= 2 else None
    return {"predicted_best": labels[chosen], "measured_best": labels[best],
            "regret": 0.0 if chosen == best else float(meas[chosen] / meas[best] - 1.0),
            "best_gap": None if runner_up is None else float((meas[runner_up] - meas[best]) / meas[best]),
            "best_resolved": None if runner_up is None else judged(best, runner_up),
            "regret_resolved": None if chosen == best else judged(chosen, best)}
