"""vLLM speculative-decoding numbers (kind ``aggregate`` where per-position counts give a histogram, else
``totals``). Layouts, told apart by content (docs/ingest.md names the source file and commit of each):

- Prometheus ``/metrics`` text. v1 (``vllm/v1/spec_decode/metrics.py`` SpecDecodingProm): counters
  ``vllm:spec_decode_num_drafts``, ``…_num_draft_tokens``, ``…_num_accepted_tokens`` and
  ``…_num_accepted_tokens_per_pos{position="i"}``, exposed by prometheus_client as ``<name>_total`` (plus
  ``<name>_created``, ignored), one series per engine label set: engines are summed, as ``vllm bench serve``
  does. Legacy V0: ``…_num_accepted_tokens_total``, ``…_num_draft_tokens_total``,
  ``…_num_emitted_tokens_total`` next to the gauges ``…_draft_acceptance_rate`` / ``…_efficiency`` (skipped):
  no draft count, so rounds and τ are undefined (kind ``totals``). Counters are cumulative since the server
  started: the same series twice in one file (two scrapes pasted together) is refused, and ``--baseline
  FILE`` subtracts an earlier scrape, as ``vllm bench serve`` does with its before/after scrapes.
- ``vllm bench serve --save-result`` JSON (``spec_decode_num_drafts``, ``…_draft_tokens``,
  ``…_accepted_tokens``, ``…_acceptance_rate`` in percent, ``…_acceptance_length``,
  ``…_per_position_acceptance_rates`` as fractions of the drafts).
- Responses with per-request ``metrics.speculative_decoding`` (``--per-request-spec-decode-metrics``;
  :mod:`specedge.traces.ingest.vllm_requests`): per-round ``acceptance`` rows with ``detailed``.
- JSON records of v1 ``SpecDecodingStats`` (``num_spec_tokens``, ``num_drafts``, ``num_draft_tokens``,
  ``num_accepted_tokens``, ``num_accepted_tokens_per_pos``), e.g. dumped by a custom stat logger; also
  accepted: an ``acceptance_histogram`` list. Records are summed.
- Text: the server log's ``SpecDecoding metrics:`` lines, the ``vllm bench serve`` printed block and the
  output of ``examples/offline_inference/spec_decode.py`` (:mod:`specedge.traces.ingest.vllm_text`).

The tool's numbers [P: vllm/v1/spec_decode/metrics.py]: R = num_drafts, A = num_accepted_tokens,
D = num_draft_tokens, so τ = 1 + A/R (vLLM's mean acceptance length) and m = A/D (vLLM's acceptance rate).
D can be less than γ·R (n-gram proposals shorter than γ, grammar-invalid drafts removed), so m is never
computed from the histogram's draft length. Per-position counts p_i (drafts whose first i+1 tokens were
accepted) give the exact histogram: count[0] = R − p_0, count[k] = p_{k−1} − p_k, count[γ] = p_{γ−1}.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import TraceValidationError
from specedge.traces.ingest import MAX_COUNT, Raw, int_list, int_value, iter_json_records, read_text
from specedge.traces.ingest.histogram import aggregate_table, counts_from_survival
from specedge.traces.ingest.numbers import KEY, ToolNumbers, totals_table

WHAT_JSON = ("vLLM speculative-decoding JSON (a `vllm bench serve --save-result` file or SpecDecodingStats "
             "records with num_drafts and num_accepted_tokens_per_pos)")
WHAT_PROM = "Prometheus text with vllm:spec_decode_* counters"
NESTED = ("spec_decode", "spec_decoding", "spec_decode_metrics", "spec_decoding_stats")
PREFIX = "vllm:spec_decode_"
#: V0 gauges exposed next to the counters; they are ratios, not counts.
V0_GAUGES = ("draft_acceptance_rate", "efficiency")
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_TYPE = re.compile(r"^#\s*TYPE\s+(\S+)\s+(\S+)")
DEFINITIONS = {"rounds": "num_drafts", "accepted_tokens": "num_accepted_tokens",
               "draft_tokens": "num_draft_tokens"}


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str,
          baseline: Path | None = None) -> Raw:
    from specedge.traces.ingest import vllm_text

    text = read_text(path, f"{WHAT_JSON} or {WHAT_PROM}")
    head = text.lstrip()[:1]
    kind_of_text = None if head in ("{", "[") else vllm_text.detect(text)
    if baseline is not None and (head in ("{", "[") or kind_of_text is not None):
        raise TraceValidationError(f"{path}: --baseline subtracts Prometheus scrapes; this file is not one")
    if head in ("{", "["):
        return _parse_json(path, drafted)
    if kind_of_text is not None:
        return vllm_text.parse(path, text, kind_of_text, drafted)
    return _parse_prometheus(path, text, drafted, baseline)


# ------------------------------------------------------------------------------------------ shared
def numbers_metadata(rounds: int | None, accepted: int, draft_tokens: int | None, **definitions: str) -> dict:
    return ToolNumbers(rounds, accepted, draft_tokens, {}, {**DEFINITIONS, **definitions}).to_metadata()


def finish(path: Path, where: str, rounds: int | None, accepted: int, draft_tokens: int | None,
           per_pos: list[int] | None, drafted: int | None, extra: dict[str, Any], unit: str = "all") -> Raw:
    """An aggregate Raw (exact histogram from per-position counts) when R and p are known, else totals."""
    if draft_tokens is not None and accepted > draft_tokens:
        raise TraceValidationError(f"{path}: {where}, field 'num_accepted_tokens': {accepted} accepted tokens is "
                                   f"more than num_draft_tokens = {draft_tokens}")
    metadata: dict[str, Any] = dict(extra)
    metadata[KEY] = numbers_metadata(rounds, accepted, draft_tokens)
    if rounds is None or not per_pos or rounds == 0:
        if rounds == 0:
            raise TraceValidationError(f"{path}: {where}, field 'num_drafts': 0 drafts; no speculative decoding "
                                       "happened in this window")
        return Raw(totals_table([unit], [rounds], [accepted], [draft_tokens]), "totals", metadata)
    fields = {"num_drafts": rounds, "num_accepted_tokens": accepted, "num_accepted_tokens_per_pos": per_pos}
    if draft_tokens is not None:
        fields["num_draft_tokens"] = draft_tokens
    gamma, counts, _ = histogram(path, where, fields, drafted)
    metadata.update(histogram="recorded-counters", drafted=int(gamma))
    return Raw(aggregate_table({gamma: counts}), "aggregate", metadata)


def histogram(path: Path, where: str, fields: dict[str, Any], drafted: int | None) -> tuple[int, np.ndarray, dict]:
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
    if "num_draft_tokens" in reported and reported["num_draft_tokens"] < accepted_sum:
        raise TraceValidationError(
            f"{path}: {where}, field 'num_draft_tokens': {reported['num_draft_tokens']} is less than the "
            f"{accepted_sum} accepted tokens"
        )
    return int(gamma), counts, reported


# ------------------------------------------------------------------------------------------ JSON
def _parse_json(path: Path, drafted: int | None) -> Raw:
    from specedge.traces.ingest import vllm_requests

    records = list(iter_json_records(path, WHAT_JSON))
    first = records[0][1]
    if vllm_requests.is_layout(first):
        return vllm_requests.parse(path, records)
    if isinstance(first, dict) and any(k.startswith("spec_decode_") for k in first):
        if len(records) != 1:
            raise TraceValidationError(f"{path}: {records[1][0]}: a `vllm bench serve` result file holds one JSON "
                                       "object; found more")
        return _parse_bench_json(path, first, drafted)
    histograms: dict[int, np.ndarray] = {}
    totals: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    for where, record in records:
        if not isinstance(record, dict):
            raise TraceValidationError(f"{path}: {where}: expected a JSON object ({WHAT_JSON}), "
                                       f"found {type(record).__name__}")
        fields = record
        if not any(k in record for k in ("acceptance_histogram", "num_accepted_tokens_per_pos")):
            nested = next((record[k] for k in NESTED if isinstance(record.get(k), dict)), None)
            fields = nested if nested is not None else record
        gamma, counts, reported = histogram(path, where, fields, drafted)
        histograms[gamma] = histograms[gamma] + counts if gamma in histograms else counts
        for key, value in reported.items():
            if key != "num_spec_tokens":
                totals[key] += value
                seen[key] += 1
    n = len(records)
    rounds = sum(int(c.sum()) for c in histograms.values())
    accepted = sum(int(np.dot(np.arange(c.size), c)) for c in histograms.values())
    draft_tokens = totals["num_draft_tokens"] if seen["num_draft_tokens"] == n else None
    metadata: dict[str, Any] = {"histogram": "recorded-counters", "vllm_records": n,
                                KEY: numbers_metadata(rounds, accepted, draft_tokens)}
    if len(histograms) == 1:
        metadata["drafted"] = next(iter(histograms))
    return Raw(aggregate_table(histograms), "aggregate", metadata)


def _parse_bench_json(path: Path, doc: dict[str, Any], drafted: int | None) -> Raw:
    where = "line 1"
    values = {}
    for key in ("spec_decode_num_drafts", "spec_decode_draft_tokens", "spec_decode_accepted_tokens"):
        if key not in doc:
            raise TraceValidationError(f"{path}: {where}: missing field '{key}'; expected a `vllm bench serve "
                                       "--save-result` file with speculative decoding")
        values[key] = int_value(doc[key], path, where, key)
    r, d, a = (values[k] for k in ("spec_decode_num_drafts", "spec_decode_draft_tokens",
                                   "spec_decode_accepted_tokens"))
    for key, expected in (("spec_decode_acceptance_rate", 100.0 * a / d if d else None),
                          ("spec_decode_acceptance_length", 1.0 + a / r if r else None)):
        got = doc.get(key)
        if got is None or expected is None:
            continue
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isclose(got, expected,
                                                                                         rel_tol=1e-9, abs_tol=1e-9):
            raise TraceValidationError(f"{path}: {where}, field '{key}': {got!r} disagrees with the counts "
                                       f"(expected {expected!r})")
    rates = doc.get("spec_decode_per_position_acceptance_rates") or []
    if not isinstance(rates, list):
        raise TraceValidationError(f"{path}: {where}, field 'spec_decode_per_position_acceptance_rates': expected a "
                                   "list of fractions")
    per_pos = []
    for i, rate in enumerate(rates):
        name = f"spec_decode_per_position_acceptance_rates[{i}]"
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise TraceValidationError(f"{path}: {where}, field '{name}': {rate!r}; expected a fraction in 0..1")
        count = rate * r  # vLLM wrote delta_pos / delta_drafts: the count comes back up to float rounding
        if abs(count - round(count)) > 1e-6 * max(1.0, count):
            raise TraceValidationError(f"{path}: {where}, field '{name}': {rate!r} × {r} drafts = {count}, not a "
                                       "whole number of drafts")
        per_pos.append(int(round(count)))
    extra = {"vllm_layout": "bench-serve-json"}
    for key in ("model_id", "backend", "date"):
        if isinstance(doc.get(key), str):
            extra[f"bench_{key}"] = doc[key]
    return finish(path, where, r, a, d, per_pos or None, drafted, extra)


# ------------------------------------------------------------------------------------------ Prometheus
def _scrape(path: Path, text: str) -> tuple[dict[tuple[str, tuple], tuple[int, int]], set[str]]:
    """{(base name, sorted labels): (value, line)} of the spec-decode counters in one scrape, and the models."""
    series: dict[tuple[str, tuple], tuple[int, int]] = {}
    gauges: set[str] = set()
    models: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            m = _TYPE.match(stripped)
            if m and m.group(2) == "gauge":
                gauges.add(m.group(1))
            continue
        m = _SAMPLE.match(stripped)
        if not m:
            raise TraceValidationError(f"{path}: line {n}: not a Prometheus sample line; expected {WHAT_PROM}")
        name, labels_text, value_text = m.group(1), m.group(3) or "", m.group(4)
        if not name.startswith(PREFIX) or name.endswith("_created") or name in gauges:
            continue
        base = name[len(PREFIX):].removesuffix("_total")
        if base in V0_GAUGES:
            continue
        labels = dict(_LABEL.findall(labels_text))
        try:
            value = float(value_text)
        except ValueError:
            raise TraceValidationError(f"{path}: line {n}, metric '{name}': value {value_text!r} is not a number") \
                from None
        if not math.isfinite(value) or value < 0 or value != int(value) or value > MAX_COUNT:
            raise TraceValidationError(f"{path}: line {n}, metric '{name}': value {value_text}; expected a "
                                       "non-negative whole-number counter")
        if base == "num_accepted_tokens_per_pos":
            position = labels.get("position")
            if position is None or not position.isdigit():
                raise TraceValidationError(f"{path}: line {n}, metric '{name}': missing or bad label 'position'")
        if "model_name" in labels:
            models.add(labels["model_name"])
        key = (base, tuple(sorted(labels.items())))
        if key in series:
            raise TraceValidationError(
                f"{path}: line {n}, metric '{name}': the same series is already at line {series[key][1]}; counters "
                "are cumulative, so two scrapes in one file cannot be added (give the earlier one as --baseline)"
            )
        series[key] = (int(value), n)
    return series, models


def _parse_prometheus(path: Path, text: str, drafted: int | None, baseline: Path | None) -> Raw:
    series, models = _scrape(path, text)
    if not series:
        raise TraceValidationError(f"{path}: no vllm:spec_decode_* counters found; expected {WHAT_PROM}")
    extra: dict[str, Any] = {"vllm_layout": "prometheus"}
    if baseline is not None:
        before, before_models = _scrape(baseline, read_text(baseline, WHAT_PROM))
        models |= before_models
        for key, (value, line) in before.items():
            if key not in series:
                raise TraceValidationError(f"{baseline}: line {line}, metric '{PREFIX}{key[0]}': this series is not "
                                           f"in {path.name}; expected the baseline to be an earlier scrape of the "
                                           "same server")
            after, line_after = series[key]
            if after < value:
                raise TraceValidationError(
                    f"{path}: line {line_after}, metric '{PREFIX}{key[0]}': {after} is less than {value} in the "
                    f"baseline (line {line}); the counter went down (server restarted between the scrapes?)"
                )
            series[key] = (after - value, line_after)
        extra["baseline_subtracted"] = True
    if len(models) > 1:
        raise TraceValidationError(f"{path}: counters of several models ({', '.join(sorted(models))}); expected "
                                   "one model per file")
    summed: dict[tuple[str, int | None], int] = defaultdict(int)
    engines: set[tuple] = set()
    for (base, labels), (value, _) in series.items():
        label_map = dict(labels)
        pos = int(label_map.pop("position")) if base == "num_accepted_tokens_per_pos" else None
        engines.add(tuple(sorted(label_map.items())))
        summed[(base, pos)] += value  # engines summed, as vllm bench serve does
    if models:
        extra["model_name"] = next(iter(models))
    extra["engine_series"] = len(engines)
    if ("num_accepted_tokens", None) not in summed:
        raise TraceValidationError(f"{path}: no vllm:spec_decode_num_accepted_tokens counter; expected {WHAT_PROM}")
    accepted = summed[("num_accepted_tokens", None)]
    draft_tokens = summed.get(("num_draft_tokens", None))
    rounds = summed.get(("num_drafts", None))
    positions = sorted(p for (b, p) in summed if b == "num_accepted_tokens_per_pos")
    if positions and positions != list(range(len(positions))):
        missing = sorted(set(range(max(positions) + 1)) - set(positions))
        raise TraceValidationError(f"{path}: metric 'vllm:spec_decode_num_accepted_tokens_per_pos': missing "
                                   f"position(s) {missing}")
    per_pos = [summed[("num_accepted_tokens_per_pos", p)] for p in positions]
    if ("num_emitted_tokens", None) in summed:
        extra["vllm_layout"] = "prometheus-v0"
        extra["reported_num_emitted_tokens"] = summed[("num_emitted_tokens", None)]
    if rounds is None:
        extra["note_rounds"] = ("no vllm:spec_decode_num_drafts counter (legacy V0 engine): rounds and tau are "
                                "not defined by this file")
    if per_pos and rounds is None:
        raise TraceValidationError(f"{path}: no vllm:spec_decode_num_drafts counter; the per-position counts need "
                                   "the number of drafts to give the histogram")
    return finish(path, "counters", rounds, accepted, draft_tokens, per_pos or None, drafted, extra)
