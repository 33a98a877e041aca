"""How much each claim moves when one [A] parameter moves: the one-at-a-time sensitivity table.

For every numeric [A] parameter p of :class:`~specedge.latency.params.ScenarioParams` (tag "A") and factor
f in {0.5, 2}:

    S_i(p, f) = v_i(theta_preset with p -> f p) - v_i(theta_preset)     (percentage points)

with v_i the claim values of :func:`specedge.claims.evaluate.claim_values`. Conventions [A]:

- a parameter in dB acts on the linear quantity: x0.5 is -3.01 dB, x2 is +3.01 dB;
- an efficiency (a fraction <= 1) is capped at 1; the row records the factor actually applied;
- a parameter whose value is 0 is skipped (x0.5 and x2 leave it 0);
- a boolean or string switch [A] (``release``, ``affine_weight_read``, ``kv_cache_uses_gqa``) is flipped once
  (factor ``"switch"``).

``depends_on`` of a claim are the parameters that move it by at least :data:`DEPENDS_THRESHOLD_PP` under some
perturbation.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from specedge.claims.evaluate import claim_values

#: A claim depends on a parameter when some perturbation moves it by at least this much (percentage points) [A].
DEPENDS_THRESHOLD_PP = 1.0
FACTORS = (0.5, 2.0)
#: The other value of each [A] switch.
SWITCHES = {"release": {"all-uploads": "batch-uploads", "batch-uploads": "all-uploads"},
            "affine_weight_read": {True: False, False: True},
            "kv_cache_uses_gqa": {True: False, False: True}}
_DB_STEP = 10.0 * np.log10(2.0)


def assumed_parameters() -> list[str]:
    """The numeric [A] parameters (fields tagged "A" with a float value; trace names and switches excluded)."""
    from specedge.latency.params import ScenarioParams

    return [f.name for f in fields(ScenarioParams) if f.metadata["tag"] == "A" and f.type == "float"]


def perturbed(params, name: str, factor) -> tuple[object, float | str]:
    """(new value, factor applied) of parameter ``name`` under ``factor`` (see the module docstring)."""
    from specedge.latency.params import ScenarioParams

    value = getattr(params, name)
    if factor == "switch":
        return SWITCHES[name][value], "switch"
    unit = next(f.metadata["unit"] for f in fields(ScenarioParams) if f.name == name)
    if unit == "dB":
        return value + (_DB_STEP if factor > 1 else -_DB_STEP), float(factor)
    new = value * factor
    if name.endswith("_efficiency") and new > 1.0:
        new = 1.0
    return new, (new / value if value else float(factor))


def _evaluate(job) -> dict:
    preset, seed, directions, name, new = job
    return claim_values(preset, {name: new}, seed=seed, directions=directions).to_dict()


def sensitivities(preset: str = "paper", *, seed: int = 0, parameters=None, directions: bool = True,
                  mapper=map, cache: bool = True) -> pd.DataFrame:
    """One row per (claim, parameter, factor): ``base_value``, ``value``, ``change_pp``, ``applied_factor``,
    ``new_value`` (the parameter's perturbed value), ``preset``.

    A parameter whose preset value is 0 is skipped (a multiplicative change leaves it 0). ``mapper``: ``map`` or
    an executor's ``map`` (the perturbations are independent). With ``cache`` (and every parameter) the table is
    kept in the disk cache of :mod:`specedge.claims.cache`, keyed by the source code.
    """
    if cache and parameters is None:
        from specedge.claims.cache import cached

        args = {"preset": str(preset), "seed": int(seed), "directions": bool(directions), "factors": FACTORS}
        data, _ = cached("sensitivity", args, lambda: {"rows": sensitivities(
            preset, seed=seed, directions=directions, mapper=mapper, cache=False).to_dict(orient="records")})
        return pd.DataFrame(data["rows"])
    from specedge.scenario import Scenario

    params = Scenario.from_preset(preset, tasks=1).params
    names = list(parameters) if parameters is not None else assumed_parameters()
    jobs = [(n, f) for n in names if getattr(params, n) != 0 for f in FACTORS] + (
        [(n, "switch") for n in SWITCHES] if parameters is None else [])
    base = claim_values(preset, seed=seed, directions=directions)
    moved = [perturbed(params, name, factor) for name, factor in jobs]
    results = list(mapper(_evaluate, [(preset, seed, directions, name, new)
                                      for (name, _), (new, _) in zip(jobs, moved)]))
    rows = []
    for (name, factor), (new, applied), vals in zip(jobs, moved, results):
        for claim, v in vals.items():
            rows.append({"preset": preset, "claim": claim, "parameter": name,
                         "factor": factor if factor == "switch" else f"x{factor:g}",
                         "applied_factor": applied, "new_value": new, "base_value": base[claim], "value": v,
                         "change_pp": v - base[claim]})
    return pd.DataFrame(rows)


def depends_on(table: pd.DataFrame, threshold_pp: float = DEPENDS_THRESHOLD_PP) -> dict[str, list[str]]:
    """claim -> parameters that move it by >= ``threshold_pp`` (largest effect first)."""
    effect = table.assign(size=table["change_pp"].abs()).groupby(["claim", "parameter"], sort=False)["size"].max()
    out: dict[str, list[str]] = {}
    for claim in table["claim"].unique():
        part = effect.loc[claim]
        out[claim] = part[part >= threshold_pp].sort_values(ascending=False).index.tolist()
    return out
