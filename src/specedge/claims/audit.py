"""The audit of the paper's claims under one preset: fitted or predicted, what each depends on, leave-one-out.

:func:`audit` returns one row per numeric claim:

- ``paper`` [P] and ``specedge`` (the preset's number, percent change of latency);
- ``basis``: ``fitted`` when the preset's ``[calibrated]`` table says a parameter was solved to match the claim,
  else ``predicted``; ``tuned`` names those parameters;
- ``depends_on``: the parameters whose x0.5 or x2 moves the claim by >= 1 point (:mod:`.sensitivity`);
- ``loo_prediction``: the claim predicted by the joint calibration fitted to the *other* claims
  (:mod:`.calibrate`; the fitted parameters are :data:`~specedge.claims.calibrate.FIT_PARAMETERS`, every other
  parameter is the preset's).

The joint calibration and its leave-one-out refits are cached on disk (:mod:`.cache`).
"""

from __future__ import annotations

import pandas as pd

from specedge.claims import calibrate as cal
from specedge.claims.cache import cached
from specedge.claims.evaluate import NUMERIC_CLAIMS, basis, claim_values
from specedge.claims.sensitivity import depends_on, sensitivities


def _mapper(workers: int):
    if workers <= 1:
        return map, None
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers)
    return pool.map, pool


def calibration(preset: str = "paper", *, seed: int = 0, max_nfev: int = cal.MAX_NFEV, workers: int = 1,
                loo: bool = True, max_evaluations: int | None = None, cache_only: bool = False
                ) -> tuple[dict | None, bool]:
    """The joint fit and (with ``loo``) the leave-one-out table of ``preset``, as a JSON-able dict; (dict, cache hit).

    Keys: ``preset``, ``parameters``, ``bounds`` ({name: [lo, hi]}), ``bounds_why``, ``residuals``
    ([{claim, residual}]), ``evaluations``, ``status``, ``start``, ``loo`` ([{claim, paper, loo_prediction,
    loo_error_pp, ...}]) when asked. ``max_evaluations`` caps each fit's evaluations (a cheaper, rougher fit,
    cached under its own key). A cached full fit with leave-one-out serves a request without it.
    ``cache_only``: return (None, False) instead of computing on a miss.
    """
    names = list(cal.FIT_PARAMETERS)

    def compute() -> dict:
        mapper, pool = _mapper(workers)
        try:
            full, table = cal.calibrate(preset, names=names, seed=seed, max_nfev=max_nfev, loo=loo, mapper=mapper,
                                        max_evaluations=max_evaluations)
        finally:
            if pool is not None:
                pool.shutdown()
        out = {"preset": preset, "parameters": full.parameters, "max_evaluations": max_evaluations,
               "bounds": {n: [cal.FIT_PARAMETERS[n].lo, cal.FIT_PARAMETERS[n].hi] for n in names},
               "bounds_why": {n: cal.FIT_PARAMETERS[n].why for n in names},
               "residuals": [{"claim": c, "residual": r} for c, r in full.residuals.items()],
               "evaluations": full.evaluations, "status": full.status, "start": full.start}
        if table is not None:
            out["loo"] = table.to_dict(orient="records")
        return out

    def args(with_loo: bool) -> dict:
        return {"preset": preset, "seed": seed, "max_nfev": max_nfev, "names": names, "loo": with_loo,
                "diff_step": cal.DIFF_STEP, "max_evaluations": max_evaluations}

    if not loo:
        found, hit = cached("calibration", args(True), None)
        if hit:
            return found, True
    if cache_only:
        return cached("calibration", args(loo), None)
    return cached("calibration", args(loo), compute)


def audit(preset: str = "paper", *, seed: int = 0, sensitivity: pd.DataFrame | None = None,
          calib: dict | None = None, workers: int = 1) -> pd.DataFrame:
    """One row per numeric claim (see the module docstring)."""
    values = claim_values(preset, seed=seed)
    sens = sensitivity if sensitivity is not None else sensitivities(preset, seed=seed, directions=False)
    deps = depends_on(sens)
    calib = calib if calib is not None else calibration(preset, seed=seed, workers=workers)[0]
    loo = {r["claim"]: r["loo_prediction"] for r in calib.get("loo", [])}
    fitted_res = {r["claim"]: r["residual"] for r in calib["residuals"]}
    rows = []
    for claim, paper in NUMERIC_CLAIMS.items():
        b, tuned = basis(preset)[claim]
        rows.append({"claim": claim, "paper": paper, "specedge": float(values[claim]), "basis": b, "tuned": tuned,
                     "depends_on": deps.get(claim, []), "joint_fit": paper + fitted_res[claim],
                     "loo_prediction": float(loo[claim]) if claim in loo else float("nan"), "preset": preset})
    return pd.DataFrame(rows)
