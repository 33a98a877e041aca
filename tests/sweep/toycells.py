"""A cheap, deterministic cell function for testing the sweep engine apart from the serving model."""

from __future__ import annotations

import zlib

import numpy as np

from specedge.errors import ScenarioError

METRICS = ("value", "noise", "plan_wall_s")


def toy_cell(cell, store):
    """value = x * seed-dependent factor; raises ScenarioError when the override ``fail`` is true."""
    overrides = dict(cell.overrides)
    if overrides.get("fail"):
        raise ScenarioError(f"cell {cell.cell_id}: asked to fail")
    key = zlib.crc32(f"{cell.preset}|{cell.pair}|{cell.acceptance}|{cell.policy}".encode())
    rng = np.random.default_rng([key, cell.seed])
    x = float(overrides.get("x", 1.0))
    return {"value": x * (1.0 + cell.seed), "noise": float(rng.random()), "plan_wall_s": 0.0}
