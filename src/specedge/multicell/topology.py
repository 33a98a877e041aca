"""Several cells sharing a verifier: N SBSs (each its own device, draft model, memory, uplink band and users), one
or more MBSs (device and target model), and a fronthaul link per SBS-MBS pair.

A cell is served exactly like the paper's single cell: its :meth:`Topology.cell_scenario` is an ordinary
:class:`specedge.scenario.Scenario` built from the topology's base scenario preset with the cell's own values
(``sbs_device``, ``bandwidth_hz``, ``cell_radius_m``, ``sbs_memory_bytes``, the pair ``draft/target``), so the
latency model, cards, acceptance sources and compute predictors are reused, not copied. What a topology adds:

- the fronthaul of each SBS-MBS link: one message of ``D`` bits takes [A]::

      T_fh(D) = fronthaul_delay_s + D / fronthaul_bandwidth_bps

  (the paper ignores the fronthaul [P]; here a round sends the drafts up and the verdict down);
- the payload of a round of a batch of b users at speculation length l [A]::

      D_up   = b * l * (token_id_bits + [T > 0] * vocab_size * prob_bits)     (draft tokens; at T > 0 also the
                                                                               draft's distribution per token)
      D_down = b * verdict_bits                                               (accepted count + corrected token)

  and, when drafting runs on the users' devices (``drafting = "user"``, the DiP-SD setting), the first round also
  carries the prompt: ``+ I * token_id_bits`` per user [A];
- users in a common plane (each cell's SBS at ``position_m``), so association to a cell can be decided
  (:mod:`specedge.multicell.association`).

Presets are TOML files in ``specedge/multicell/presets/`` (see ``multi-cell.toml``; an optional ``[params]`` table
overrides base-preset scenario parameters for every cell); ``--cells N`` repeats the
listed cells cyclically when N is larger than the list [A] (:meth:`Topology.with_num_cells`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import ScenarioError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
DRAFTING = ("sbs", "user")


@dataclass(frozen=True)
class CellSpec:
    """One small cell: its SBS (device, draft model, memory), uplink band, users, and its fronthaul to an MBS."""

    name: str
    sbs_device: str
    draft_model: str
    sbs_memory_bytes: float
    uplink_bandwidth_hz: float
    num_users: int
    cell_radius_m: float
    position_m: tuple[float, float]
    fronthaul_delay_s: float
    fronthaul_bandwidth_bps: float
    mbs: int = 0
    #: i.i.d. acceptance rate of the cell's pair [A]; None = the base preset's alpha
    alpha: float | None = None

    def __post_init__(self) -> None:
        where = f"cell {self.name!r}"
        for name in ("sbs_memory_bytes", "uplink_bandwidth_hz", "cell_radius_m", "fronthaul_bandwidth_bps"):
            if not getattr(self, name) > 0:
                raise ScenarioError(f"{where}: {name} must be > 0, got {getattr(self, name)!r}")
        if not self.fronthaul_delay_s >= 0:
            raise ScenarioError(f"{where}: fronthaul_delay_s must be >= 0, got {self.fronthaul_delay_s!r}")
        if int(self.num_users) != self.num_users or self.num_users < 0:
            raise ScenarioError(f"{where}: num_users must be an integer >= 0, got {self.num_users!r}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ScenarioError(f"{where}: alpha must be in [0, 1], got {self.alpha!r}")
        if len(self.position_m) != 2:
            raise ScenarioError(f"{where}: position_m must be [x, y] in metres, got {self.position_m!r}")

    def fronthaul_s(self, bits) -> np.ndarray:
        """T_fh(D) = delay + D / bandwidth for messages of ``bits`` bits (broadcasts)."""
        return self.fronthaul_delay_s + np.asarray(bits, dtype=np.float64) / self.fronthaul_bandwidth_bps


@dataclass(frozen=True)
class MBSSpec:
    """A macro base station: the verifier's device and target model."""

    name: str
    device: str
    target_model: str
    #: where the MBS stands in the cells' plane (m); used by the ``nearest`` cell-to-MBS association
    position_m: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class PayloadSpec:
    """What a round sends over the fronthaul (every field an assumption [A], named so it can be changed)."""

    #: bits of one token id (a 32-bit integer) [A]
    token_id_bits: float = 32.0
    #: bits of one probability of the draft's distribution at T > 0 (fp16) [A]
    prob_bits: float = 16.0
    #: sampling temperature; at T > 0 the full draft distribution of every draft token travels [A]
    temperature: float = 0.0
    #: bits of the MBS's verdict per user (accepted count and the corrected/bonus token) [A]
    verdict_bits: float = 64.0

    def draft_bits(self, batch_size, speculation_length, vocab_size: int) -> np.ndarray:
        """D_up = b l (token_id_bits + [T > 0] V prob_bits)."""
        per_token = self.token_id_bits + (self.prob_bits * vocab_size if self.temperature > 0 else 0.0)
        return (np.asarray(batch_size, dtype=np.float64) * np.asarray(speculation_length, dtype=np.float64)
                * per_token)

    def verdict_bits_total(self, batch_size) -> np.ndarray:
        """D_down = b verdict_bits."""
        return np.asarray(batch_size, dtype=np.float64) * self.verdict_bits


@dataclass(frozen=True)
class Topology:
    """N cells, M >= 1 MBSs, the fronthaul payload and where drafting runs."""

    name: str
    description: str
    base_preset: str
    cells: tuple[CellSpec, ...]
    mbs: tuple[MBSSpec, ...]
    payload: PayloadSpec = PayloadSpec()
    #: "sbs": each SBS drafts for its users (the paper); "user": every user drafts on its own device (DiP-SD) [A]
    drafting: str = "sbs"
    #: energy of moving one bit over a fronthaul link (J/bit) [A]; see :mod:`specedge.multicell.energy`
    fronthaul_j_per_bit: float = 0.0
    #: scenario parameters every cell sets on top of the base preset (pairs, from the preset's [params] table)
    params: tuple = ()

    def __post_init__(self) -> None:
        if not self.cells:
            raise ScenarioError(f"topology {self.name!r}: no cells")
        if not self.mbs:
            raise ScenarioError(f"topology {self.name!r}: no MBS")
        if self.drafting not in DRAFTING:
            raise ScenarioError(f"topology {self.name!r}: drafting={self.drafting!r}; expected one of "
                                f"{', '.join(DRAFTING)}")
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ScenarioError(f"topology {self.name!r}: cell names repeat: {names}")
        for c in self.cells:
            if not 0 <= c.mbs < len(self.mbs):
                raise ScenarioError(f"topology {self.name!r}: cell {c.name!r} names MBS {c.mbs}, but there are "
                                    f"{len(self.mbs)}")
        if not self.fronthaul_j_per_bit >= 0:
            raise ScenarioError(f"topology {self.name!r}: fronthaul_j_per_bit must be >= 0")

    @property
    def num_cells(self) -> int:
        return len(self.cells)

    @property
    def positions_m(self) -> np.ndarray:
        """(N, 2) array of SBS positions."""
        return np.array([c.position_m for c in self.cells], dtype=np.float64)

    def pair(self, cell: int) -> str:
        """The cell's model pair, ``draft/target`` (the target is its MBS's)."""
        c = self.cells[cell]
        return f"{c.draft_model}/{self.mbs[c.mbs].target_model}"

    def cell_overrides(self, cell: int) -> dict[str, Any]:
        """The scenario parameters a cell sets on top of the base preset."""
        c = self.cells[cell]
        return {"sbs_device": c.sbs_device, "mbs_device": self.mbs[c.mbs].device,
                "bandwidth_hz": c.uplink_bandwidth_hz, "cell_radius_m": c.cell_radius_m,
                "sbs_memory_bytes": c.sbs_memory_bytes, "fronthaul_delay_s": c.fronthaul_delay_s}

    def cell_scenario(self, cell: int, *, seed: int = 0, tasks=None, acceptance: Any = "expected",
                      alpha: float | None = None, **overrides):
        """The :class:`~specedge.scenario.Scenario` of one cell (its users, devices, band and pair).

        ``tasks``: a task frame (from association) or a number of users (default the cell's ``num_users``).
        """
        from specedge.scenario import Scenario

        values = {**dict(self.params), **self.cell_overrides(cell), **overrides}
        n = self.cells[cell].num_users if tasks is None else tasks
        alpha = self.cells[cell].alpha if alpha is None else alpha
        return Scenario.from_preset(self.base_preset, pair=self.pair(cell), alpha=alpha, tasks=n,
                                    seed=seed, acceptance=acceptance, **values)

    def with_num_cells(self, n: int) -> Topology:
        """The first ``n`` cells, the list repeated cyclically if ``n`` exceeds it [A]; repeats are renamed
        ``<name>-<k>`` and placed on a ring of the same radius as their original, rotated by k / reps turns."""
        n = int(n)
        if n < 1:
            raise ScenarioError(f"--cells must be >= 1, got {n}")
        out = []
        for i in range(n):
            base = self.cells[i % len(self.cells)]
            rep = i // len(self.cells)
            if rep == 0:
                out.append(base)
                continue
            reps = math.ceil(n / len(self.cells))
            x, y = base.position_m
            radius = math.hypot(x, y) or 2.0 * base.cell_radius_m
            angle = math.atan2(y, x) + 2.0 * math.pi * rep / reps
            out.append(replace(base, name=f"{base.name}-{rep + 1}",
                               position_m=(radius * math.cos(angle), radius * math.sin(angle))))
        return replace(self, cells=tuple(out))

    def with_users_per_cell(self, users: int) -> Topology:
        """Every cell with ``users`` users."""
        return replace(self, cells=tuple(replace(c, num_users=int(users)) for c in self.cells))


# ------------------------------------------------------------------------------------------------ presets
def available_topologies() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def _build(cls, table: dict, where: str, **extra):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
    try:
        return cls(**{**table, **extra})
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def load_topology(name: str | Path) -> Topology:
    """A topology preset: a path to a TOML file or the stem of one in ``specedge/multicell/presets/``."""
    path = Path(name) if str(name).endswith(".toml") else PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise ScenarioError(f"unknown multi-cell preset {str(name)!r}; known: {', '.join(available_topologies())}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path.name}: not valid TOML ({exc})") from None
    allowed = {"description", "base", "drafting", "fronthaul_j_per_bit", "payload", "mbs", "cells", "params"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScenarioError(f"{path.name}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")
    cells = []
    for i, table in enumerate(data.get("cells", [])):
        t = dict(table)
        if "position_m" in t:
            t["position_m"] = tuple(float(v) for v in t["position_m"])
        cells.append(_build(CellSpec, t, f"{path.name}: [[cells]] #{i + 1}"))
    mbs = []
    for i, table in enumerate(data.get("mbs", [])):
        t = dict(table)
        if "position_m" in t:
            t["position_m"] = tuple(float(v) for v in t["position_m"])
        mbs.append(_build(MBSSpec, t, f"{path.name}: [[mbs]] #{i + 1}"))
    payload = _build(PayloadSpec, dict(data.get("payload", {})), f"{path.name}: [payload]")
    return Topology(name=path.stem, description=str(data.get("description", "")),
                    base_preset=str(data.get("base", "paper")), cells=tuple(cells), mbs=tuple(mbs),
                    payload=payload, drafting=str(data.get("drafting", "sbs")),
                    fronthaul_j_per_bit=float(data.get("fronthaul_j_per_bit", 0.0)),
                    params=tuple(sorted(dict(data.get("params", {})).items())))
