"""User association: which SBS serves each user, in a common plane of cells.

Users are placed per cell as in the single-cell model [P/A]: uniform in the annulus [d_min, R_c] around their
home SBS c (position p_c), at x = p_c + r (cos phi, sin phi). Each user k then joins a cell a(k) by a rule:

- ``nearest``: a(k) = argmin_c ||x_k - p_c|| (strongest path gain; the textbook max-RSRP rule);
- ``load-aware``: users in index order join the cell that would give them the largest equal share of its band,
  a(k) = argmax_c eta_kc B_c / (n_c + 1), with eta_kc the spectral efficiency at distance d_kc and n_c the users
  already in c [A: a greedy form of the rate/load trade-off of user-association work such as UARA
  (arXiv 2511.01695); not its algorithm]. A cell is only eligible within ``max_distance_factor`` x its radius.

Functions are vectorised over users x cells; the greedy loop is over users only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge.errors import ScenarioError
from specedge.latency import network

_SEED_USERS = 0x3C11  # stream id of the user-placement generator
RULES = ("nearest", "load-aware")


def place_users(topology, params, seed: int) -> pd.DataFrame:
    """Every cell's users around its SBS: columns ``home_cell``, ``x_m``, ``y_m`` (one row per user)."""
    rng = np.random.default_rng([_SEED_USERS, int(seed)])
    counts = np.array([c.num_users for c in topology.cells], dtype=np.int64)
    home = np.repeat(np.arange(topology.num_cells), counts)
    radius = np.array([c.cell_radius_m for c in topology.cells])[home]
    r = np.sqrt(rng.uniform(params.min_distance_m ** 2, radius ** 2))
    phi = rng.uniform(0.0, 2.0 * np.pi, home.size)
    centre = topology.positions_m[home] if home.size else np.zeros((0, 2))
    return pd.DataFrame({"home_cell": home, "x_m": centre[:, 0] + r * np.cos(phi),
                         "y_m": centre[:, 1] + r * np.sin(phi)})


def distances_m(users: pd.DataFrame, topology) -> np.ndarray:
    """(K, N) distances from every user to every SBS."""
    xy = users[["x_m", "y_m"]].to_numpy(np.float64)
    return np.hypot(*(xy[:, None, :] - topology.positions_m[None, :, :]).transpose(2, 0, 1))


def associate(users: pd.DataFrame, topology, params, rule: str = "nearest", *,
              max_distance_factor: float = 2.0) -> np.ndarray:
    """The serving cell of every user (an int array) under ``rule`` (see the module docstring)."""
    if rule not in RULES:
        raise ScenarioError(f"association rule {rule!r}; expected one of {', '.join(RULES)}")
    d = np.maximum(distances_m(users, topology), params.min_distance_m)
    if rule == "nearest":
        return np.argmin(d, axis=1).astype(np.int64)
    eta = network.spectral_efficiency(d, params)
    band = np.array([c.uplink_bandwidth_hz for c in topology.cells])
    radius = np.array([c.cell_radius_m for c in topology.cells])
    eligible = d <= max_distance_factor * radius[None, :]
    eligible[np.arange(len(d)), np.argmin(d, axis=1)] = True  # the nearest cell is always allowed
    share = np.where(eligible, eta * band[None, :], -np.inf)
    load = np.zeros(topology.num_cells)
    out = np.empty(len(d), dtype=np.int64)
    for k in range(len(d)):
        c = int(np.argmax(share[k] / (load + 1.0)))
        out[k] = c
        load[c] += 1.0
    return out


def associate_workloads(topology, workloads, params, rule: str = "nearest", *, seed: int = 0,
                        max_distance_factor: float = 2.0) -> tuple:
    """Requests of per-cell workloads (each drawn around its home SBS at ``distance_m``) re-associated by ``rule``.

    Each request gets a uniform angle around its home SBS [A: the workloads carry only the distance], joins
    ``associate(...)``'s cell (requests taken in arrival order for the load-aware rule: load counts requests
    [A]) and its ``distance_m`` becomes the distance to that cell's SBS. Returns one workload per cell, arrivals
    sorted (a cell may end up with none: it is then given no requests).
    """
    from specedge.online.workload import Workload

    if rule == "home":
        return tuple(workloads)
    rng = np.random.default_rng([_SEED_USERS, 1, int(seed)])
    home = np.concatenate([np.full(w.num_requests, c, dtype=np.int64) for c, w in enumerate(workloads)])
    arrival = np.concatenate([w.arrival_s for w in workloads])
    order = np.argsort(arrival, kind="stable")
    dist = np.concatenate([w.distance_m for w in workloads])
    phi = rng.uniform(0.0, 2.0 * np.pi, home.size)
    xy = topology.positions_m[home] + dist[:, None] * np.c_[np.cos(phi), np.sin(phi)]
    users = pd.DataFrame({"x_m": xy[order, 0], "y_m": xy[order, 1]})
    cell = np.empty(home.size, dtype=np.int64)
    cell[order] = associate(users, topology, params, rule, max_distance_factor=max_distance_factor)
    d_new = np.maximum(np.hypot(*(xy - topology.positions_m[cell]).T), params.min_distance_m)
    fields = {f: np.concatenate([getattr(w, f) for w in workloads]) for f in ("input_tokens", "output_tokens")}
    out = []
    for c in range(topology.num_cells):
        idx = order[cell[order] == c]
        out.append(Workload(arrival[idx], fields["input_tokens"][idx], fields["output_tokens"][idx], d_new[idx],
                            name=f"{workloads[c].name} ({rule})"))
    return tuple(out)
