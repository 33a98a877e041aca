"""The paper's numeric claims as a function of the scenario parameters: one vector of specedge's numbers.

A *claim* is one row of :func:`specedge.experiments.paper_comparisons` with a number: the paper's percent change
of the latency under the conditions the row names (docs/model.md section 7). :func:`claim_values` recomputes all
of them for a preset with some parameters replaced, which is what sensitivities (:mod:`.sensitivity`) and the
joint calibration (:mod:`.calibrate`) need:

    v(theta) = (v_1(theta), ..., v_n(theta)),   v_i = 100 (T_policy / T_baseline - 1)   [P: the paper's metric]

where theta are the overridden parameters and T the replayed makespans. Results are memoised per (preset, seed,
overrides) in the process, so a sensitivity table and a calibration that meet the same point pay once.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

#: The numeric claims in the order of :func:`specedge.experiments.paper_comparisons`, with the paper's number [P].
NUMERIC_CLAIMS: dict[str, float] = {
    "optimal vs uniform bandwidth (llama-68m/llama-7b)": -44.9,
    "optimal vs uniform bandwidth (tinyllama-1.1b/llama-7b)": -29.3,
    "optimal vs uniform bandwidth (tinyllama-1.1b/llama-13b)": -25.2,
    "DP vs max batching": -21.4,
    "DP vs heuristic batching (max input 1792)": -19.6,
    "DP vs heuristic batching (max output 1024)": -20.5,
    "pipeline vs no pipeline (max input 512)": -31.6,
    "pipeline vs no pipeline (max output 1792)": -30.7,
}
#: The direction claims (SD vs AD per pair) enter sensitivities through their change at this alpha only.
DIRECTION_ALPHA = 0.9


def _freeze(overrides: Mapping | None) -> tuple:
    return tuple(sorted((overrides or {}).items()))


@lru_cache(maxsize=4096)
def _values(preset: str, seed: int, frozen: tuple, directions: bool) -> tuple[tuple[str, float], ...]:
    from specedge import experiments as ex

    over = dict(frozen)
    parts = [ex.bandwidth_gains(preset=preset, seed=seed, overrides=over),
             ex.batching_gains(preset=preset, seed=seed, overrides=over),
             ex.pipeline_gains(preset=preset, seed=seed, overrides=over)]
    if directions:
        parts.append(ex.sd_vs_ad(preset=preset, seed=seed, alphas=(DIRECTION_ALPHA,), overrides=over))
    frame = pd.concat(parts, ignore_index=True)
    return tuple(zip(frame["claim"].tolist(), frame["specedge_value"].astype(float).tolist()))


def claim_values(preset: str = "paper", overrides: Mapping | None = None, *, seed: int = 0,
                 directions: bool = False) -> pd.Series:
    """specedge's number for every numeric claim (and, with ``directions``, the SD-vs-AD change at alpha 0.9).

    ``overrides``: scenario parameters replacing the preset's (e.g. ``{"bits_per_token": 3e5}``).
    """
    pairs = _values(str(preset), int(seed), _freeze(overrides), bool(directions))
    return pd.Series(dict(pairs), name="specedge_value", dtype=np.float64)


def paper_values() -> pd.Series:
    """The paper's number for every numeric claim [P]."""
    return pd.Series(NUMERIC_CLAIMS, name="paper_value", dtype=np.float64)


def calibration_record(preset: str) -> dict[str, list[str]]:
    """parameter -> the claims its value in ``preset`` was solved to match (the preset's ``[calibrated]`` table).

    Raises ScenarioError naming the preset file when a listed claim is not one of :data:`NUMERIC_CLAIMS` or a
    listed parameter is not one the preset sets.
    """
    from specedge.errors import ScenarioError
    from specedge.scenario import load_preset

    table = load_preset(preset)
    record = table.get("calibrated", {})
    for param, claims in record.items():
        if param not in table["params"]:
            raise ScenarioError(f"preset {preset!r} [calibrated]: {param!r} is not one of its parameters")
        if not isinstance(claims, list) or any(c not in NUMERIC_CLAIMS for c in claims):
            raise ScenarioError(f"preset {preset!r} [calibrated] {param}: expected a list of claims among "
                                f"{', '.join(NUMERIC_CLAIMS)}; got {claims!r}")
    return {p: list(c) for p, c in record.items()}


def basis(preset: str) -> dict[str, tuple[str, list[str]]]:
    """claim -> ("fitted" | "predicted", the preset's parameters solved on it) under ``preset``."""
    record = calibration_record(preset)
    out = {}
    for claim in NUMERIC_CLAIMS:
        tuned = sorted(p for p, claims in record.items() if claim in claims)
        out[claim] = ("fitted" if tuned else "predicted", tuned)
    return out
