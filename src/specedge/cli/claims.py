"""``specedge claims``: the paper's numeric claims audited under a preset (docs/model.md section 8).

Examples::

    specedge claims --json                      # one object per claim: paper, specedge, basis, depends_on, LOO
    specedge claims --preset paper-compute-bound
    specedge claims --calibrate --json          # the joint least-squares fit: parameters, bounds, residuals
    specedge claims --sensitivity-csv sens.csv  # every [A] parameter x0.5 and x2, per claim

The joint calibration and its leave-one-out refits take minutes on one core the first time (each evaluation
replays every claim); results are cached on disk keyed by the source code (``SPECEDGE_CACHE``, see
:mod:`specedge.claims.cache`), and ``--workers`` spreads the refits over processes.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from specedge.cli import app


def _num(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


@app.command("claims")
def claims_cmd(
    preset: str = typer.Option("paper", "--preset", help="Scenario preset (e.g. paper, paper-compute-bound)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the claims' task sets."),
    calibrate: bool = typer.Option(False, "--calibrate",
                                   help="Print the joint calibration (parameters, bounds, residual per claim)."),
    loo: bool = typer.Option(False, "--loo", help="With --calibrate: add the leave-one-claim-out table."),
    qualitative: bool = typer.Option(False, "--qualitative",
                                     help="Print the figure-sweep statements (pass/fail with numbers) instead."),
    sensitivity_csv: Optional[Path] = typer.Option(None, "--sensitivity-csv",
                                                   help="Also write the sensitivity table to this CSV file."),
    workers: int = typer.Option(min(os.cpu_count() or 1, 8), "--workers", help="Processes for the LOO refits."),
    max_nfev: int = typer.Option(40, "--max-nfev", help="scipy's max_nfev per fit (Jacobian columns not counted)."),
    max_evaluations: Optional[int] = typer.Option(
        None, "--max-evaluations", help="Cap on every evaluation of a fit, Jacobian included (rougher, faster)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Audit the paper's claims: fitted or predicted, sensitivities, joint calibration, leave-one-out."""
    from specedge.claims.audit import audit, calibration
    from specedge.claims.evaluate import calibration_record
    from specedge.claims.sensitivity import sensitivities
    from specedge.errors import InputError

    if workers < 1 or max_nfev < 1 or (max_evaluations is not None and max_evaluations < 1):
        raise InputError("--workers, --max-nfev and --max-evaluations must be >= 1")
    calibration_record(preset)  # validates the preset (unknown name / bad [calibrated] table: exit 2)
    if qualitative:
        from specedge.claims.qualitative import qualitative_claims

        table = qualitative_claims(preset, seed=seed)
        if as_json:
            sys.stdout.write(json.dumps(table.to_dict(orient="records"), indent=2) + "\n")
        else:
            for r in table.itertuples(index=False):
                sys.stdout.write(f"[{'pass' if r.passed else 'FAIL'}] {r.statement}: {r.numbers}\n")
        return
    if calibrate:
        data, hit = calibration(preset, seed=seed, max_nfev=max_nfev, workers=workers, loo=loo,
                                max_evaluations=max_evaluations)
        out = {"preset": preset, "parameters": data["parameters"], "bounds": data["bounds"],
               "bounds_why": data["bounds_why"],
               "residuals": [{"claim": r["claim"], "residual": r["residual"]} for r in data["residuals"]],
               "evaluations": data["evaluations"], "status": data["status"], "cached": hit,
               "basis": "fitted: every claim below was a target of this fit"}
        if loo:
            out["loo"] = [{"claim": r["claim"], "paper": r["paper"], "loo_prediction": r["loo_prediction"]}
                          for r in data["loo"]]
        if as_json:
            sys.stdout.write(json.dumps(out, indent=2) + "\n")
        else:
            cost = "cached" if hit else f"{data['evaluations']} evaluations"
            sys.stdout.write(f"joint calibration under preset {preset!r} ({data['status']}; {cost})\n")
            for name, value in data["parameters"].items():
                lo, hi = data["bounds"][name]
                sys.stdout.write(f"  {name} = {value:.4g}  (bounds {lo:g} .. {hi:g})\n")
            for r in out["residuals"]:
                sys.stdout.write(f"  residual {r['residual']:+7.2f} pp  {r['claim']}\n")
        return
    sens = sensitivities(preset, seed=seed, directions=False)
    if sensitivity_csv is not None:
        sens.to_csv(sensitivity_csv, index=False)
    calib, _ = calibration(preset, seed=seed, max_nfev=max_nfev, workers=workers, loo=True,
                           max_evaluations=max_evaluations)
    table = audit(preset, seed=seed, sensitivity=sens, calib=calib)
    rows = [{"claim": r.claim, "paper": r.paper, "specedge": r.specedge, "basis": r.basis, "tuned": list(r.tuned),
             "depends_on": list(r.depends_on), "joint_fit": r.joint_fit, "loo_prediction": _num(r.loo_prediction),
             "preset": r.preset} for r in table.itertuples(index=False)]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    for r in rows:
        label = r["basis"] + (f" (tuned: {', '.join(r['tuned'])})" if r["tuned"] else "")
        sys.stdout.write(f"{r['claim']}: paper {r['paper']:+.1f}%, specedge {r['specedge']:+.1f}% [{label}]; "
                         f"leave-one-out {r['loo_prediction']:+.1f}%; depends on "
                         f"{', '.join(r['depends_on']) or 'nothing above 1 point'}\n")
