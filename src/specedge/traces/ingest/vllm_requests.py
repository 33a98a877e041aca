"""vLLM per-request speculative-decoding metrics: responses (JSON or JSON lines) carrying
``metrics.speculative_decoding``, written when the server runs with ``--per-request-spec-decode-metrics
summary|detailed`` (vLLM docs, "Per-Request Acceptance Metrics"; experimental in vLLM).

- ``summary``: ``mean_acceptance_length``, ``draft_acceptance_rate``, ``acceptance_histogram`` (index j = steps
  that accepted exactly j draft tokens, length num_spec_tokens + 1), ``num_spec_steps``,
  ``num_accepted_draft_tokens``, ``num_draft_tokens``, ``num_spec_tokens``;
- ``detailed``: also ``per_step_accepted`` and ``per_step_drafted``, one entry per verification step, in order.

When every request is ``detailed`` the dataset is the real per-round trace (kind ``acceptance``: one row per
step, drafted = per_step_drafted, accepted = per_step_accepted); otherwise the histograms are summed (kind
``aggregate``, exact). ``speculative_decoding: null`` (n > 1, or collection off) is skipped and counted.

The tool's numbers: R = Σ num_spec_steps, A = Σ num_accepted_draft_tokens, D = Σ num_draft_tokens (vLLM says
these reconcile with ``vllm:spec_decode_num_drafts`` / ``…_num_accepted_tokens`` / ``…_num_draft_tokens``);
its per-request ``mean_acceptance_length`` = 1 + A/R and ``draft_acceptance_rate`` = A/D are checked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from specedge.errors import TraceValidationError
from specedge.traces.ingest import Raw, int_list, int_value
from specedge.traces.ingest.histogram import aggregate_table
from specedge.traces.ingest.numbers import KEY, ToolNumbers

FIELD = "metrics.speculative_decoding"


def is_layout(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("metrics"), dict) and \
        "speculative_decoding" in record["metrics"]


def _close(path: Path, where: str, info: dict, key: str, expected: float) -> None:
    got = info.get(key)
    if got is None:
        return
    if isinstance(got, bool) or not isinstance(got, (int, float)) or \
            not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
        raise TraceValidationError(f"{path}: {where}, field '{FIELD}.{key}': {got!r} disagrees with the counts "
                                   f"({expected!r})")


def parse(path: Path, records: list[tuple[str, Any]]) -> Raw:
    reqs: list[dict[str, Any]] = []
    skipped = 0
    for where, record in records:
        if not is_layout(record):
            raise TraceValidationError(f"{path}: {where}: missing field '{FIELD}'; expected every line to be a vLLM "
                                       "response with per-request spec-decode metrics")
        info = record["metrics"]["speculative_decoding"]
        if info is None:
            skipped += 1
            continue
        if not isinstance(info, dict):
            raise TraceValidationError(f"{path}: {where}, field '{FIELD}': expected an object or null")
        vals = {}
        for key in ("num_spec_steps", "num_accepted_draft_tokens", "num_draft_tokens"):
            if key not in info:
                raise TraceValidationError(f"{path}: {where}: missing field '{FIELD}.{key}'")
            vals[key] = int_value(info[key], path, where, f"{FIELD}.{key}")
        r, a, d = vals["num_spec_steps"], vals["num_accepted_draft_tokens"], vals["num_draft_tokens"]
        if a > d:
            raise TraceValidationError(f"{path}: {where}, field '{FIELD}.num_accepted_draft_tokens': {a} > "
                                       f"num_draft_tokens {d}")
        if r:
            _close(path, where, info, "mean_acceptance_length", 1 + a / r)
        if d:
            _close(path, where, info, "draft_acceptance_rate", a / d)
        hist = np.asarray(int_list(info.get("acceptance_histogram"), path, where, f"{FIELD}.acceptance_histogram"),
                          dtype=np.int64)
        if int(hist.sum()) != r or int(np.dot(np.arange(hist.size), hist)) != a:
            raise TraceValidationError(f"{path}: {where}, field '{FIELD}.acceptance_histogram': holds "
                                       f"{int(hist.sum())} steps and {int(np.dot(np.arange(hist.size), hist))} "
                                       f"accepted tokens; expected num_spec_steps {r} and {a}")
        req = {"where": where, "id": str(record.get("id", where)), "R": r, "A": a, "D": d, "hist": hist}
        if info.get("per_step_accepted") is not None or info.get("per_step_drafted") is not None:
            acc = int_list(info.get("per_step_accepted"), path, where, f"{FIELD}.per_step_accepted")
            dr = int_list(info.get("per_step_drafted"), path, where, f"{FIELD}.per_step_drafted", minimum=1)
            if len(acc) != r or len(dr) != r or sum(acc) != a or sum(dr) != d:
                raise TraceValidationError(f"{path}: {where}, field '{FIELD}.per_step_accepted': {len(acc)} steps, "
                                           f"sum {sum(acc)}; per_step_drafted {len(dr)} steps, sum {sum(dr)}; "
                                           f"expected {r} steps, {a} accepted, {d} drafted")
            bad = [i for i, (x, y) in enumerate(zip(acc, dr)) if x > y]
            if bad:
                raise TraceValidationError(f"{path}: {where}, field '{FIELD}.per_step_accepted[{bad[0]}]': "
                                           f"{acc[bad[0]]} > per_step_drafted {dr[bad[0]]}")
            req["steps"] = (acc, dr)
        reqs.append(req)
    if not reqs:
        raise TraceValidationError(f"{path}: every response has {FIELD} null ({skipped}); nothing to ingest")
    metadata: dict[str, Any] = {
        "vllm_layout": "per-request",
        "vllm_requests_without_metrics": skipped,
        KEY: ToolNumbers(sum(q["R"] for q in reqs), sum(q["A"] for q in reqs), sum(q["D"] for q in reqs), {},
                         {"rounds": "sum of num_spec_steps", "accepted_tokens": "sum of num_accepted_draft_tokens",
                          "draft_tokens": "sum of num_draft_tokens"}).to_metadata(),
    }
    if all("steps" in q for q in reqs):
        ids, rounds, drafted, accepted, wheres = [], [], [], [], []
        for q in reqs:
            acc, dr = q["steps"]
            ids += [q["id"]] * len(acc)
            rounds += list(range(len(acc)))
            drafted += dr
            accepted += acc
            wheres += [f"{q['where']}, {FIELD}.per_step_accepted[{i}]" for i in range(len(acc))]
        table = pa.table({"request_id": pa.array(ids, pa.string()), "turn": pa.array(np.zeros(len(ids), np.int64)),
                          "round": pa.array(rounds, pa.int64()), "drafted": pa.array(drafted, pa.int64()),
                          "accepted": pa.array(accepted, pa.int64())})
        metadata["drafted_inferred"] = False
        return Raw(table, "acceptance", metadata, lambda i: wheres[int(i)])
    size = max(q["hist"].size for q in reqs)
    total = np.sum([np.pad(q["hist"], (0, size - q["hist"].size)) for q in reqs], axis=0)
    gamma = max(size - 1, 1)  # the histogram is dense to num_spec_tokens
    counts = np.pad(total, (0, gamma + 1 - total.size))
    metadata.update(histogram="recorded", drafted=int(gamma))
    return Raw(aggregate_table({gamma: counts}), "aggregate", metadata)
