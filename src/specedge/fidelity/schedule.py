"""A plan's *schedule*: what a real run of it serves and what replay times, independent of the policy that made it.

Two runs are repeats of one plan when their schedules are equal, whatever the policy names or plan hashes
(``plan_sha256`` hashes the whole plan, ``meta`` and mode included). The canonical schedule (:func:`schedule_key`):

- ``batches``: the batches in round-robin order (order matters: it is the order jobs are served in), each batch's
  members sorted (a batch is a set: its ready time, shapes and rounds do not depend on member order);
- ``speculation_length``: one l per batch (a single int broadcast); dropped in ``ad`` mode, which ignores it;
- ``bandwidth_hz``: each task's uplink bandwidth, to 12 significant digits (the upload times);
- ``mode``: ``ad``, ``sd-pipeline`` or ``sd-serial`` — except that with ONE batch ``sd-pipeline`` and ``sd-serial``
  are the same timeline and both read ``sd (one batch)``: a job's drafting waits for the previous job's
  verification either way, because the previous job is the same batch's previous round (docs/model.md section 5;
  the serving nodes do the same, :mod:`specedge.serve.nodes`).

:func:`schedule_sha256` hashes that key. The scenario (tasks, pair, seed, temperature) is not in it: runs are
grouped by scenario first (:func:`specedge.fidelity.repeats.scenario_key`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

#: Mode of a one-batch SD schedule, where pipelined and serial serving coincide.
ONE_BATCH_SD = "sd (one batch)"


def schedule_key(plan: Mapping) -> dict:
    """The canonical schedule of a plan's JSON form (``Plan.to_dict()`` or a run's ``metadata["plan"]``)."""
    batches = [sorted(int(i) for i in b) for b in plan["batches"]]
    ls = plan.get("speculation_length", 1)
    ls = [int(ls)] * len(batches) if isinstance(ls, (int, float)) else [int(x) for x in ls]
    mode = str(plan.get("mode", "sd-pipeline"))
    if mode in ("sd-pipeline", "sd-serial") and len(batches) == 1:
        mode = ONE_BATCH_SD
    return {"batches": batches, "speculation_length": None if mode == "ad" else ls,
            "bandwidth_hz": [float(f"{float(x):.12g}") for x in plan["bandwidth_hz"]], "mode": mode}


def schedule_sha256(plan: Mapping) -> str:
    """SHA-256 of :func:`schedule_key` (sorted-key JSON)."""
    return hashlib.sha256(json.dumps(schedule_key(plan), sort_keys=True).encode()).hexdigest()


def run_schedule(meta: Mapping) -> str:
    """A run's schedule hash from its metadata (its ``plan``; a run without one keeps its ``plan_sha256``)."""
    plan = meta.get("plan")
    return schedule_sha256(plan) if plan else f"plan {meta.get('plan_sha256')}"


def joined_label(labels) -> str:
    """The policies (or plan shapes) that produced one schedule, sorted, each once: ``"dp-refined = sd-serial"``."""
    return " = ".join(sorted({str(x) for x in labels}))
