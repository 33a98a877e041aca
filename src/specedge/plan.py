"""A serving plan: which tasks share a batch, how far each batch speculates, who gets which bandwidth.

A plan is what a policy returns and what replay consumes. It serialises to JSON with the fields
``batches`` (lists of indices into ``scenario.tasks``), ``speculation_length`` (one int, or one per
batch), ``bandwidth_hz`` (one float per task), ``mode`` and, for a plan specedge made, ``scenario``: the
record of the scenario it was made for (:func:`scenario_record`: preset, pair, number of tasks K, seed,
parameter overrides, the acceptance source and the SHA-256 of the task table).

Task indices only mean something for the task table they were planned on, so :meth:`Plan.check_scenario`
refuses a plan whose record differs from the scenario it is about to be replayed on in any of
:data:`SCENARIO_KEYS` (the acceptance source and alpha may differ: replaying a plan under another acceptance
is the usual what-if). ``specedge replay --force`` replays it anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import PlanError

#: Serving modes: pipelined SD (drafting of one batch overlaps verification of another), SD whose
#: batches never overlap (the paper's "SD without pipeline"), and autoregressive decoding on the
#: target alone (the paper's "AD serving").
MODES = ("sd-pipeline", "sd-serial", "ad")

#: Fields of a plan's scenario record that must equal the scenario it is replayed on (see the module docstring).
SCENARIO_KEYS = ("preset", "pair", "tasks", "seed", "overrides", "tasks_sha256")

#: Task-table columns hashed into ``tasks_sha256``, each as little-endian float64 in this order.
_HASHED_COLUMNS = ("input_tokens", "output_tokens", "payload_bits", "spectral_efficiency")


def _plain(value: Any) -> Any:
    """JSON-ready scalars (numpy scalars to Python ones), so records compare equal after a JSON round trip."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def tasks_sha256(tasks) -> str:
    """SHA-256 over the task table's planning columns (see ``_HASHED_COLUMNS``), row order included."""
    digest = hashlib.sha256()
    for column in _HASHED_COLUMNS:
        digest.update(column.encode())
        digest.update(np.ascontiguousarray(tasks[column].to_numpy(dtype="<f8")).tobytes())
    return digest.hexdigest()


def scenario_record(scenario) -> dict[str, Any]:
    """What a plan records about the scenario it was made for: preset, pair, K, seed, overrides, acceptance.

    ``overrides`` are the parameters set on top of the preset (``--set``), without ``num_tasks`` (that is
    ``tasks``); ``tasks_sha256`` identifies the task table itself (:func:`tasks_sha256`).
    """
    overrides = dict(getattr(scenario, "spec", {}).get("overrides", {}))
    overrides.pop("num_tasks", None)
    acceptance = getattr(getattr(scenario, "acceptance", None), "stats", None)
    return {
        "preset": scenario.preset,
        "pair": scenario.pair,
        "tasks": int(scenario.num_tasks),
        "seed": int(scenario.seed),
        "overrides": {k: _plain(overrides[k]) for k in sorted(overrides)},
        "alpha": float(scenario.alpha),
        "acceptance": getattr(acceptance, "name", None),
        "tasks_sha256": tasks_sha256(scenario.tasks),
    }


def scenario_differences(recorded: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """``"key: plan X, here Y"`` for every :data:`SCENARIO_KEYS` field that differs (task hashes shortened)."""
    out = []
    for key in SCENARIO_KEYS:
        if key not in recorded or recorded[key] == actual.get(key):
            continue
        was, now = recorded[key], actual.get(key)
        if key == "tasks_sha256":
            was, now = str(was)[:12], str(now)[:12]
        elif key == "overrides":
            was = ", ".join(f"{k}={v}" for k, v in was.items()) or "none"
            now = ", ".join(f"{k}={v}" for k, v in (now or {}).items()) or "none"
        out.append(f"{key} {was} in the plan, {now} here")
    return out


@dataclass(frozen=True)
class Plan:
    """Batches, speculation length per batch, uplink bandwidth per task, serving mode.

    ``speculation_length`` holds one entry per batch (``Plan.from_dict`` broadcasts a single int).
    In ``ad`` mode the speculation length is ignored (one token per target pass).
    ``meta`` carries free-form notes from the policy (name, surrogate cost, ...); it does not
    affect replay. ``scenario`` is the :func:`scenario_record` of the scenario the plan was made for
    (empty for a hand-written plan).
    """

    batches: tuple[tuple[int, ...], ...]
    speculation_length: tuple[int, ...]
    bandwidth_hz: tuple[float, ...]
    mode: str = "sd-pipeline"
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)
    scenario: Mapping[str, Any] = field(default_factory=dict, compare=False)

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

    def with_scenario(self, scenario) -> Plan:
        """This plan, recording ``scenario`` as the one it was made for."""
        return replace(self, scenario=scenario_record(scenario))

    def check_scenario(self, scenario, *, force: bool = False, source: str = "plan") -> list[str]:
        """Raise PlanError (one line) if the plan was made for another scenario, unless ``force``.

        Returns the differences (empty when the plan matches, or records no scenario).
        """
        diffs = scenario_differences(self.scenario, scenario_record(scenario)) if self.scenario else []
        if diffs and not force:
            raise PlanError(f"{source} was made for another scenario ({'; '.join(diffs)}); "
                            "pass --force to replay it anyway")
        return diffs

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        ls = list(self.speculation_length)
        return {
            "batches": [list(b) for b in self.batches],
            "speculation_length": ls[0] if ls and all(x == ls[0] for x in ls) else ls,
            "bandwidth_hz": list(self.bandwidth_hz),
            "mode": self.mode,
            **({"meta": dict(self.meta)} if self.meta else {}),
            **({"scenario": dict(self.scenario)} if self.scenario else {}),
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
        if not isinstance(data.get("scenario") or {}, Mapping):
            raise PlanError(f"{source}: field 'scenario' must be an object (the scenario the plan was made for)")
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
                scenario=dict(data.get("scenario") or {}),
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
