"""Joint calibration of named [A] parameters to the paper's numeric claims, and leave-one-claim-out predictions.

The fit [A, ours]: with claims i in a set C, the paper's numbers y_i [P] and specedge's v_i(theta)
(:func:`specedge.claims.evaluate.claim_values`, percent change of latency), solve

    min_theta  sum_{i in C} (v_i(theta) - y_i)^2      subject to  lo_p <= theta_p <= hi_p

with :func:`scipy.optimize.least_squares` (trust-region reflective) over the unit box u, theta_p = lo_p
(hi_p / lo_p)^(u_p), so every parameter stays positive and a step is a relative change. The claim values are
piecewise smooth (the optimizer's discrete choices of l and batches jump), so the Jacobian is a forward difference
with a step of :data:`DIFF_STEP` in u (a 4-8% change), large enough to see through small jumps, and the local fit
starts from the best of :data:`N_START` quasi-random points plus the box's middle (the landscape has local
minima). The starting points are fixed (a seeded Sobol sample) and chosen by the fitted claims' cost alone, so a
leave-one-out fit cannot inherit the left-out claim from its start.

Leave one claim out: for each claim j, fit on C \\ {j} and predict v_j(theta_{-j}). A claim the others predict
well is explained by the model; one only the fit itself reaches is *fitted*, not predicted. A parameter the other
claims do not constrain stays near its start (the prediction then says so: it is the neutral value's).

:data:`FIT_PARAMETERS` names the parameters with their bounds and why; the bounds are physical ranges, not
tuned to the claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from specedge.claims.evaluate import NUMERIC_CLAIMS, claim_values

#: Finite-difference step of the Jacobian in the unit box u (theta = lo (hi/lo)^u): a 4-8% change of a parameter
#: for the bounds below.
DIFF_STEP = 0.01
#: Quasi-random starting points (a scrambled Sobol sample, seed 0, plus the box's middle) evaluated before the
#: local fit, which starts from the best of them.
N_START = 8
#: Default cap on residual evaluations per fit (each costs one replay of every claim, ~0.5 s on an idle core).
MAX_NFEV = 40


@dataclass(frozen=True)
class Bound:
    lo: float
    hi: float
    why: str


#: The named set of [A] parameters the joint calibration fits, with documented bounds.
FIT_PARAMETERS: dict[str, Bound] = {
    "bits_per_token": Bound(1e3, 2e6, "uplink payload per prompt token: from a compressed embedding (1 kbit) to "
                                      "three times the paper preset's 594 kbit"),
    "sbs_layer_overhead_s": Bound(1e-6, 3e-3, "per-layer fixed cost of an SBS pass: 1 us (fused kernels) to 3 ms "
                                              "(an eager framework on a small GPU)"),
    "mbs_layer_overhead_s": Bound(1e-6, 3e-3, "per-layer fixed cost of an MBS pass, same range"),
    "sbs_compute_efficiency": Bound(0.02, 1.0, "achieved fraction of the SBS's peak FLOP/s: 2% to 100%"),
    "mbs_compute_efficiency": Bound(0.02, 1.0, "achieved fraction of the MBS's peak FLOP/s: 2% to 100%"),
    "memory_efficiency": Bound(0.1, 1.0, "achieved fraction of peak memory bandwidth (the weight read per pass)"),
}


@dataclass(frozen=True)
class Fit:
    """One least-squares fit: the parameters, the claims it used, each claim's residual (specedge - paper, pp)."""

    parameters: dict[str, float]
    claims: tuple[str, ...]
    residuals: dict[str, float]
    cost: float
    evaluations: int
    status: str
    start: dict[str, float] = field(default_factory=dict)


def neutral_start(names: Sequence[str], bounds: Mapping[str, Bound] = FIT_PARAMETERS) -> dict[str, float]:
    """The geometric middle of each parameter's bounds."""
    return {n: float(np.sqrt(bounds[n].lo * bounds[n].hi)) for n in names}


class _OutOfBudget(Exception):
    pass


def fit(model: Callable[[dict], pd.Series], targets: Mapping[str, float], names: Sequence[str], *,
        bounds: Mapping[str, Bound] = FIT_PARAMETERS, start: Mapping[str, float] | None = None,
        max_nfev: int = MAX_NFEV, max_evaluations: int | None = None) -> Fit:
    """Fit parameters ``names`` so that ``model(params)[claim]`` matches ``targets[claim]`` for every target.

    ``model`` maps a parameter dict to a Series of claim values (it may return more claims than targeted).
    ``max_evaluations`` caps every call of ``model`` (Jacobian columns included); when it is reached the best
    point evaluated so far is returned with status "stopped at the evaluation budget".
    """
    from scipy.optimize import least_squares

    names = list(names)
    claims = tuple(targets)
    y = np.array([targets[c] for c in claims], dtype=np.float64)
    lo = np.log([bounds[n].lo for n in names])
    span = np.log([bounds[n].hi for n in names]) - lo

    def theta(u):  # u in [0, 1]^n -> parameters, log-uniform in the box
        return {n: float(v) for n, v in zip(names, np.exp(lo + span * np.asarray(u)))}

    calls = [0]
    best: list = [np.inf, None, None]

    def residual(u):
        if max_evaluations is not None and calls[0] >= max_evaluations:
            raise _OutOfBudget
        calls[0] += 1
        r = model(theta(u)).loc[list(claims)].to_numpy(np.float64) - y
        if float(r @ r) < best[0]:
            best[:] = [float(r @ r), np.array(u, dtype=np.float64), r]
        return r

    if start is not None:
        candidates = [np.clip((np.log([start[n] for n in names]) - lo) / span, 0.0, 1.0)]
    else:
        from scipy.stats import qmc

        candidates = [np.full(len(names), 0.5)] + list(qmc.Sobol(len(names), scramble=True, seed=0).random(N_START))
    status = ""
    try:
        for u in candidates:
            residual(u)
        x0 = np.clip(best[1], 1e-9, 1 - 1e-9)
        sol = least_squares(residual, x0, bounds=(0.0, 1.0), method="trf", diff_step=DIFF_STEP, x_scale=1.0,
                            max_nfev=max_nfev, xtol=1e-4, ftol=1e-6)
        status = str(sol.message)
    except _OutOfBudget:
        status = f"stopped at the evaluation budget ({max_evaluations}); the best point evaluated is reported"
    # the best point evaluated (least_squares' own answer is one of them)
    u, res = best[1], best[2]
    return Fit(parameters=theta(u), claims=claims, residuals=dict(zip(claims, res.tolist())),
               cost=float(0.5 * np.sum(res**2)), evaluations=calls[0], status=status,
               start=theta(np.clip(best[1] if status.startswith("stopped") else x0, 0, 1)))


def leave_one_out(model: Callable[[dict], pd.Series], targets: Mapping[str, float], names: Sequence[str], *,
                  bounds: Mapping[str, Bound] = FIT_PARAMETERS, max_nfev: int = MAX_NFEV,
                  claims: Sequence[str] | None = None, mapper=map, max_evaluations: int | None = None) -> pd.DataFrame:
    """For each claim j (default: every target), fit on the others and predict j.

    Returns one row per left-out claim: ``claim``, ``paper``, ``loo_prediction``, ``loo_error_pp`` and the
    fitted parameters (``param:<name>``). ``mapper``: ``map`` or an executor's ``map`` (each fit is independent).
    """
    order = list(claims or targets)
    jobs = [(model, {c: v for c, v in targets.items() if c != j}, list(names), dict(bounds), max_nfev,
             max_evaluations, j) for j in order]
    rows = []
    for j, f, pred in mapper(_loo_one, jobs):
        rows.append({"claim": j, "paper": float(targets[j]), "loo_prediction": pred,
                     "loo_error_pp": pred - float(targets[j]), "evaluations": f.evaluations,
                     **{f"param:{n}": v for n, v in f.parameters.items()}})
    return pd.DataFrame(rows)


def _loo_one(job):
    model, others, names, bounds, max_nfev, max_evaluations, left_out = job
    f = fit(model, others, names, bounds=bounds, max_nfev=max_nfev, max_evaluations=max_evaluations)
    return left_out, f, float(model(f.parameters)[left_out])


@dataclass(frozen=True)
class ClaimModel:
    """The claim values of a preset as a function of some parameters (picklable, for process pools)."""

    preset: str = "paper"
    seed: int = 0
    fixed: tuple = ()

    def __call__(self, params: Mapping[str, float]) -> pd.Series:
        # round to 6 significant digits so that the memo in claim_values is hit by repeated points
        over = {**dict(self.fixed), **{k: float(f"{v:.6g}") for k, v in params.items()}}
        return claim_values(self.preset, over, seed=self.seed)


def calibrate(preset: str = "paper", *, names: Sequence[str] = tuple(FIT_PARAMETERS), seed: int = 0,
              max_nfev: int = MAX_NFEV, loo: bool = True, mapper=map,
              max_evaluations: int | None = None) -> tuple[Fit, pd.DataFrame | None]:
    """Joint fit of ``names`` to every numeric claim under ``preset``; with ``loo`` the leave-one-out table too."""
    model = ClaimModel(preset, seed)
    targets = dict(NUMERIC_CLAIMS)
    full = fit(model, targets, names, max_nfev=max_nfev, max_evaluations=max_evaluations)
    table = (leave_one_out(model, targets, names, max_nfev=max_nfev, mapper=mapper, max_evaluations=max_evaluations)
             if loo else None)
    return full, table
