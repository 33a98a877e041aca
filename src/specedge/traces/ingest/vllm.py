"""vLLM speculative-decoding metrics to an accepted-count histogram (kind ``aggregate``).

Two inputs, told apart by their first character:

- JSON / JSON lines: one record per request or logging interval with ``num_drafts``, ``num_draft_tokens``,
  ``num_accepted_tokens``, ``num_accepted_tokens_per_pos`` (survival counts: position i counts the drafts
  whose first i+1 tokens were all accepted) and/or ``acceptance_histogram`` (index k = drafts with exactly k
  accepted). Records may nest these under ``spec_decode`` / ``spec_decoding_stats``. Records are summed.
- Prometheus text exposition of the counters ``vllm:spec_decode_num_drafts``, ``…_num_draft_tokens``,
  ``…_num_accepted_tokens`` and ``…_num_accepted_tokens_per_pos{position="i"}`` (with or without the
  ``_total`` suffix; series of several engines are summed; one ``model_name`` per file).

The draft length γ is ``--drafted``, else ``num_spec_tokens`` when present, else the number of positions.
Neither input holds per-round sequences, so the dataset is the histogram and nothing more.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import TraceValidationError
from specedge.traces.ingest import Raw, int_list, int_value, iter_json_records, read_text
from specedge.traces.ingest.histogram import aggregate_table, counts_from_survival

WHAT_JSON = ("vLLM speculative-decoding metrics (num_drafts, num_accepted_tokens_per_pos or "
             "acceptance_histogram)")
WHAT_PROM = "Prometheus text with vllm:spec_decode_* counters"
NESTED = ("spec_decode", "spec_decoding", "spec_decode_metrics", "spec_decoding_stats")
PREFIX = "vllm:spec_decode_"
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    text = read_text(path, f"{WHAT_JSON} or {WHAT_PROM}")
    if text.lstrip()[:1] in ("{", "["):
        return _parse_json(path, drafted)
    return _parse_prometheus(path, text, drafted)


def _histogram(path: Path, where: str, fields: dict[str, Any], drafted: int | None) -> tuple[int, np.ndarray, dict]:
    """(γ, counts over accepted = 0..γ, reported totals) from one record's fields."""
    reported: dict[str, int] = {}
    for key in ("num_drafts", "num_draft_tokens", "num_accepted_tokens", "num_spec_tokens"):
        if fields.get(key) is not None:
            reported[key] = int_value(fields[key], path, where, key, minimum=1 if key == "num_spec_tokens" else 0)
    if fields.get("acceptance_histogram") is not None:
        counts = np.asarray(int_list(fields["acceptance_histogram"], path, where, "acceptance_histogram"), np.int64)
        if counts.size < 2:
            raise TraceValidationError(f"{path}: {where}, field 'acceptance_histogram': expected counts for accepted "
                                       "= 0..γ (at least two entries)")
        name = "acceptance_histogram"
    elif fields.get("num_accepted_tokens_per_pos") is not None:
        per_pos = np.asarray(int_list(fields["num_accepted_tokens_per_pos"], path, where,
                                      "num_accepted_tokens_per_pos"), np.int64)
        if per_pos.size == 0:
            raise TraceValidationError(f"{path}: {where}, field 'num_accepted_tokens_per_pos': empty list")
        if "num_drafts" not in reported:
            raise TraceValidationError(f"{path}: {where}: missing field 'num_drafts'; the per-position counts need "
                                       "the number of drafts to give the histogram")
        try:
            counts = counts_from_survival(reported["num_drafts"], per_pos)
        except ValueError as exc:
            raise TraceValidationError(f"{path}: {where}, field 'num_accepted_tokens_per_pos': {exc}") from None
        name = "num_accepted_tokens_per_pos"
    else:
        raise TraceValidationError(f"{path}: {where}: missing field 'num_accepted_tokens_per_pos' (with "
                                   f"'num_drafts') or 'acceptance_histogram'; expected {WHAT_JSON}")
    gamma = drafted or reported.get("num_spec_tokens") or counts.size - 1
    if counts.size - 1 > gamma:
        over = np.flatnonzero(counts[gamma + 1:])
        if over.size:
            raise TraceValidationError(
                f"{path}: {where}, field '{name}': {int(counts[gamma + 1 + over[0]])} draft(s) accepted "
                f"{gamma + 1 + int(over[0])} tokens, more than the draft length {gamma}"
            )
        counts = counts[: gamma + 1]
    counts = np.concatenate((counts, np.zeros(gamma + 1 - counts.size, dtype=np.int64)))
    accepted_sum = int(np.dot(np.arange(counts.size), counts))
    if "num_accepted_tokens" in reported and reported["num_accepted_tokens"] != accepted_sum:
        raise TraceValidationError(
            f"{path}: {where}, field 'num_accepted_tokens': {reported['num_accepted_tokens']}, but '{name}' adds up "
            f"to {accepted_sum} accepted tokens; expected them to agree"
        )
    if "num_drafts" in reported and reported["num_drafts"] != int(counts.sum()):
        raise TraceValidationError(
            f"{path}: {where}, field 'num_drafts': {reported['num_drafts']}, but '{name}' holds {int(counts.sum())} "
            "drafts; expected them to agree"
        )
    if "num_draft_tokens" in reported and reported["num_draft_tokens"] > gamma * int(counts.sum()):
        raise TraceValidationError(
            f"{path}: {where}, field 'num_draft_tokens': {reported['num_draft_tokens']} is more than draft length "
            f"{gamma} × {int(counts.sum())} drafts"
        )
    return int(gamma), counts, reported


def _finish(histograms: dict[int, np.ndarray], totals: dict[str, int], drafted: int | None,
            extra: dict[str, Any]) -> Raw:
    metadata: dict[str, Any] = {"histogram": "recorded-counters", **extra}
    if len(histograms) == 1:
        metadata["drafted"] = next(iter(histograms))
    for key, value in sorted(totals.items()):
        metadata[f"reported_{key}"] = value
    full = sum(int(d) * int(c.sum()) for d, c in histograms.items())
    if "num_draft_tokens" in totals and totals["num_draft_tokens"] != full:
        metadata["note_draft_tokens"] = (
            f"vLLM reported {totals['num_draft_tokens']} draft tokens, fewer than drafted × drafts = {full}: some "
            "drafts were shorter than the draft length; the histogram records them at the full length"
        )
    return Raw(aggregate_table(histograms), "aggregate", metadata)


def _parse_json(path: Path, drafted: int | None) -> Raw:
    histograms: dict[int, np.ndarray] = {}
    totals: dict[str, int] = defaultdict(int)
    records = 0
    for where, record in iter_json_records(path, WHAT_JSON):
        if not isinstance(record, dict):
            raise TraceValidationError(f"{path}: {where}: expected a JSON object ({WHAT_JSON}), "
                                       f"found {type(record).__name__}")
        fields = record
        if not any(k in record for k in ("acceptance_histogram", "num_accepted_tokens_per_pos")):
            nested = next((record[k] for k in NESTED if isinstance(record.get(k), dict)), None)
            fields = nested if nested is not None else record
        gamma, counts, reported = _histogram(path, where, fields, drafted)
        if gamma in histograms:
            histograms[gamma] = histograms[gamma] + counts
        else:
            histograms[gamma] = counts
        for key, value in reported.items():
            if key != "num_spec_tokens":
                totals[key] += value
        records += 1
    return _finish(histograms, dict(totals), drafted, {"vllm_records": records})


def _parse_prometheus(path: Path, text: str, drafted: int | None) -> Raw:
    series: dict[tuple[str, tuple], float] = {}
    models: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _SAMPLE.match(stripped)
        if not m:
            raise TraceValidationError(f"{path}: line {n}: not a Prometheus sample line; expected {WHAT_PROM}")
        name, _, labels_text, value_text = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        if not name.startswith(PREFIX) or name.endswith("_created"):
            continue
        labels = dict(_LABEL.findall(labels_text))
        try:
            value = float(value_text)
        except ValueError:
            raise TraceValidationError(f"{path}: line {n}, metric '{name}': value {value_text!r} is not a number") \
                from None
        if not math.isfinite(value) or value < 0 or value != int(value):
            raise TraceValidationError(f"{path}: line {n}, metric '{name}': value {value_text}; expected a "
                                       "non-negative whole-number counter")
        base = name[len(PREFIX):].removesuffix("_total")
        if "model_name" in labels:
            models.add(labels["model_name"])
        position = labels.get("position")
        key = (base, (int(position),) if position is not None and position.isdigit() else ())
        if base == "num_accepted_tokens_per_pos" and position is None:
            raise TraceValidationError(f"{path}: line {n}, metric '{name}': missing label 'position'")
        series[key] = series.get(key, 0.0) + value  # summed over engines / other labels
    if not series:
        raise TraceValidationError(f"{path}: no vllm:spec_decode_* counters found; expected {WHAT_PROM}")
    if len(models) > 1:
        raise TraceValidationError(f"{path}: counters of several models ({', '.join(sorted(models))}); expected "
                                   "one model per file")
    per_pos_items = sorted((k[1][0], v) for k, v in series.items() if k[0] == "num_accepted_tokens_per_pos")
    if not per_pos_items:
        raise TraceValidationError(
            f"{path}: no vllm:spec_decode_num_accepted_tokens_per_pos counters; the per-position counts are needed "
            "to recover the accepted-count histogram"
        )
    positions = [p for p, _ in per_pos_items]
    if positions != list(range(len(positions))):
        missing = sorted(set(range(max(positions) + 1)) - set(positions))
        raise TraceValidationError(f"{path}: metric 'vllm:spec_decode_num_accepted_tokens_per_pos': missing "
                                   f"position(s) {missing}")
    fields: dict[str, Any] = {"num_accepted_tokens_per_pos": [int(v) for _, v in per_pos_items]}
    for base in ("num_drafts", "num_draft_tokens", "num_accepted_tokens"):
        if (base, ()) in series:
            fields[base] = int(series[(base, ())])
    if "num_drafts" not in fields:
        raise TraceValidationError(f"{path}: no vllm:spec_decode_num_drafts counter; the per-position counts need "
                                   "the number of drafts to give the histogram")
    gamma, counts, reported = _histogram(path, "counters", fields, drafted)
    extra: dict[str, Any] = {}
    if models:
        extra["model_name"] = next(iter(models))
    reported.pop("num_spec_tokens", None)
    return _finish({gamma: counts}, reported, drafted, extra)
