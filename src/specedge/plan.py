"""A serving plan: which tasks share a batch, how far each batch speculates, who gets which bandwidth.

A plan is what a policy returns and what replay consumes. It serialises to JSON with the fields
``batches`` (lists of indices into ``scenario.tasks``), ``speculation_length`` (one int, or one per
batch), ``bandwidth_hz`` (one float per task) and ``mode``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import PlanError

#: Serving modes: pipelined SD (drafting of one batch overlaps verification of another), SD whose
#: batches never overlap (the paper's "SD without pipeline"), and autoregressive decoding on the
#: target alone (the paper's "AD serving").
MODES = ("sd-pipeline", "sd-serial", "ad")


@dataclass(frozen=True)
class Plan:
    """Batches, speculation length per batch, uplink bandwidth per task, serving mode.

    ``speculation_length`` holds one entry per batch (``Plan.from_dict`` broadcasts a single int).
    In ``ad`` mode the speculation length is ignored (one token per target pass).
    ``meta`` carries free-form notes from the policy (name, surrogate cost, ...); it does not
    affect replay.
    """

    batches: tuple[tuple[int, ...], ...]
    speculation_length: tuple[int, ...]
    bandwidth_hz: tuple[float, ...]
    mode: str = "sd-pipeline"
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "batches", tuple(tuple(int(i) for i in b) for b in self.batches))
        object.__setattr__(self, "speculation_length", tuple(int(x) for x in self.speculation_length))
        object.__setattr__(self, "bandwidth_hz", tuple(float(x) for x in self.bandwidth_hz))
        if self.mode not in MODES:
            raise PlanError(f"plan: unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if len(self.speculation_length) != len(self.batches):
            raise PlanError(
                f"plan: speculation_length has {len(self.speculation_length)} entries for "
                f"{len(self.batches)} batches"
            )
        for m, l in enumerate(self.speculation_length):
            if l < 1:
                raise PlanError(f"plan: speculation_length of batch {m} is {l}; it must be >= 1")
        for m, b in enumerate(self.batches):
            if not b:
                raise PlanError(f"plan: batch {m} is empty")

    # ------------------------------------------------------------------ checks
    @property
    def num_tasks(self) -> int:
        return sum(len(b) for b in self.batches)

    def validate(self, num_tasks: int) -> None:
        """Raise PlanError unless every task 0..num_tasks-1 is in exactly one batch and has bandwidth."""
        seen = np.concatenate([np.asarray(b, dtype=np.int64) for b in self.batches])
        if (seen < 0).any() or (seen >= num_tasks).any():
            bad = int(seen[(seen < 0) | (seen >= num_tasks)][0])
            raise PlanError(f"plan: task index {bad} is outside 0..{num_tasks - 1}")
        counts = np.bincount(seen, minlength=num_tasks)
        if (counts > 1).any():
            raise PlanError(f"plan: task {int(np.flatnonzero(counts > 1)[0])} appears in more than one batch")
        if (counts == 0).any():
            missing = np.flatnonzero(counts == 0)
            raise PlanError(
                f"plan: {missing.size} task(s) are in no batch, first is task {int(missing[0])}"
            )
        if len(self.bandwidth_hz) != num_tasks:
            raise PlanError(f"plan: bandwidth_hz has {len(self.bandwidth_hz)} entries for {num_tasks} tasks")
        bw = np.asarray(self.bandwidth_hz)
        if not np.isfinite(bw).all() or (bw <= 0).any():
            raise PlanError("plan: every bandwidth_hz entry must be finite and > 0")

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        ls = list(self.speculation_length)
        return {
            "batches": [list(b) for b in self.batches],
            "speculation_length": ls[0] if ls and all(x == ls[0] for x in ls) else ls,
            "bandwidth_hz": list(self.bandwidth_hz),
            "mode": self.mode,
            **({"meta": dict(self.meta)} if self.meta else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "plan") -> Plan:
        """Build a plan from its JSON form; ``source`` names the file in error messages."""
        if not isinstance(data, Mapping):
            raise PlanError(f"{source}: a plan is a JSON object, got {type(data).__name__}")
        missing = [k for k in ("batches", "speculation_length", "bandwidth_hz") if k not in data]
        if missing:
            raise PlanError(f"{source}: missing field(s) {', '.join(missing)}")
        batches = data["batches"]
        if not isinstance(batches, Sequence) or not all(isinstance(b, Sequence) for b in batches):
            raise PlanError(f"{source}: field 'batches' must be a list of lists of task indices")
        ls = data["speculation_length"]
        if isinstance(ls, (int, np.integer)) and not isinstance(ls, bool):
            ls = [int(ls)] * len(batches)
        elif not isinstance(ls, Sequence):
            raise PlanError(f"{source}: field 'speculation_length' must be an int or a list of ints")
        try:
            return cls(
                batches=tuple(tuple(b) for b in batches),
                speculation_length=tuple(ls),
                bandwidth_hz=tuple(data["bandwidth_hz"]),
                mode=str(data.get("mode", "sd-pipeline")),
                meta=dict(data.get("meta", {})),
            )
        except (TypeError, ValueError) as exc:
            raise PlanError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise PlanError(f"{path}: no such plan file") from None
        except json.JSONDecodeError as exc:
            raise PlanError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
