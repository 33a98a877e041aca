"""vLLM's printed speculative-decoding numbers (see :mod:`specedge.traces.ingest.vllm` for the numbers).

- ``server-log``: every logging interval, ``SpecDecodingLogging.log`` (vllm/v1/spec_decode/metrics.py) prints
  ``SpecDecoding metrics: Mean acceptance length: %.2f, Accepted throughput: %.2f tokens/s, Drafted
  throughput: %.2f tokens/s, Accepted: %d tokens, Drafted: %d tokens, Per-position acceptance rate: %s, Avg
  Draft acceptance rate: %.1f%%`` after the engine's ``Engine %03d: Avg prompt throughput…`` line, behind the
  logger's prefix (``(APIServer pid=…) INFO 07-10 12:00:00 [metrics.py:123]``). Each line covers one interval
  and then resets, so intervals are summed; the engine is the one named by the last ``Engine NNN:`` line of
  the same process prefix. A and D are exact; the number of drafts is not printed (only the mean acceptance
  length, to 2 decimals), so R and τ are null and ``rounds_estimate`` = Σ A_i / (L_i − 1) is labelled as
  such. Kind ``totals``, one row per interval.
- ``bench-block``: ``vllm bench serve``'s "Speculative Decoding" block (Acceptance rate (%), Acceptance
  length, Drafts, Draft tokens, Accepted tokens, Per-position acceptance (%) with two decimals): R, A and D
  exact; the per-position percentages are rounded, so no histogram (kind ``totals``).
- ``offline-example``: ``examples/offline_inference/spec_decode.py``'s "Speculative Decoding Stats" block
  (Number of drafts, Draft tokens generated, Draft utilization rate, Accepted tokens, Mean acceptance length):
  R, A, D exact (kind ``totals``).

Printed ratios are checked against the printed counts to the printed precision; a disagreement is refused.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from specedge.errors import TraceValidationError
from specedge.traces.ingest import MAX_COUNT, Raw
from specedge.traces.ingest.numbers import KEY, totals_table

_SPEC_LINE = re.compile(r"^(?P<prefix>.*?)SpecDecoding metrics:\s*(?P<body>.*)$")
_ENGINE_LINE = re.compile(r"^(?P<prefix>.*?)Engine (?P<engine>\d+): Avg prompt throughput")
_LOG_FIELDS = {
    "mean_len": re.compile(r"Mean acceptance length:\s*([0-9.]+|nan)"),
    "accepted": re.compile(r"Accepted:\s*(\d+) tokens"),
    "drafted": re.compile(r"Drafted:\s*(\d+) tokens"),
    "rate": re.compile(r"(?:Avg )?Draft acceptance rate:\s*([0-9.]+|nan)%"),
}
_PROC = re.compile(r"^\s*(\([^)]*\))")
_BENCH_HEADER = re.compile(r"-+Speculative Decoding-+")
_BENCH = {
    "rate": r"Acceptance rate \(%\):\s*(\S+)",
    "length": r"Acceptance length:\s*(\S+)",
    "drafts": r"Drafts:\s*(\S+)",
    "draft_tokens": r"Draft tokens:\s*(\S+)",
    "accepted": r"Accepted tokens:\s*(\S+)",
}
_OFFLINE_HEADER = "=========== Speculative Decoding Stats ============"
_OFFLINE = {
    "drafts": r"Number of drafts:\s*(\S+)",
    "draft_tokens": r"Draft tokens generated:\s*(\S+)",
    "rate": r"Draft utilization rate:\s*(\S+)",
    "accepted": r"Accepted tokens:\s*(\S+)",
    "length": r"Mean acceptance length:\s*(\S+)",
}


def detect(text: str) -> str | None:
    if "SpecDecoding metrics:" in text:
        return "server-log"
    if _BENCH_HEADER.search(text):
        return "bench-block"
    if _OFFLINE_HEADER in text:
        return "offline-example"
    return None


def parse(path: Path, text: str, layout: str, drafted: int | None) -> Raw:
    if layout == "server-log":
        return _server_log(path, text)
    header = _BENCH_HEADER if layout == "bench-block" else re.compile(re.escape(_OFFLINE_HEADER))
    fields = _BENCH if layout == "bench-block" else _OFFLINE
    return _block(path, text, layout, header, fields)


def _check_close(path: Path, where: str, name: str, printed: float, exact: float, decimals: int) -> None:
    if not math.isfinite(printed) or abs(printed - exact) > 0.5 * 10 ** -decimals + 1e-9:
        raise TraceValidationError(f"{path}: {where}, field '{name}': printed {printed} disagrees with the counts "
                                   f"({exact:.{decimals + 3}f})")


def _server_log(path: Path, text: str) -> Raw:
    engine_of: dict[str, str] = {}
    units, accepted, drafted, estimates = [], [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        m = _ENGINE_LINE.match(line)
        if m:
            proc = _PROC.match(m.group("prefix"))
            engine_of[proc.group(1) if proc else ""] = m.group("engine")
            continue
        m = _SPEC_LINE.match(line)
        if not m:
            continue
        body = m.group("body")
        values = {}
        for key, rx in _LOG_FIELDS.items():
            found = rx.search(body)
            if not found:
                raise TraceValidationError(f"{path}: line {n}: 'SpecDecoding metrics' line without "
                                           f"'{rx.pattern.split(':')[0].replace('(?:Avg )?', '')}'")
            values[key] = found.group(1)
        a, d = int(values["accepted"]), int(values["drafted"])
        if d > MAX_COUNT:
            raise TraceValidationError(f"{path}: line {n}, field 'Drafted': {d} is too large")
        if a > d:
            raise TraceValidationError(f"{path}: line {n}, field 'Accepted': {a} accepted tokens > {d} drafted")
        if d > 0:
            _check_close(path, f"line {n}", "Avg Draft acceptance rate", float(values["rate"]), 100.0 * a / d, 1)
        mean_len = float(values["mean_len"])
        if a > 0 and not (math.isfinite(mean_len) and mean_len > 1.0):
            raise TraceValidationError(f"{path}: line {n}, field 'Mean acceptance length': {values['mean_len']} with "
                                       f"{a} accepted tokens; expected more than 1")
        proc = _PROC.match(m.group("prefix"))
        engine = engine_of.get(proc.group(1) if proc else "")
        units.append(f"line {n}" + (f" (engine {engine})" if engine is not None else ""))
        accepted.append(a)
        drafted.append(d)
        estimates.append(a / (mean_len - 1.0) if a > 0 else 0.0)
    if not units:
        raise TraceValidationError(f"{path}: no 'SpecDecoding metrics:' lines; expected a vLLM server log")
    metadata = {
        "vllm_layout": "server-log",
        "log_intervals": len(units),
        "rounds_estimate": round(sum(estimates), 1),
        "note_rounds": ("the log prints no draft count: rounds and tau are null; rounds_estimate = sum of "
                        "Accepted / (Mean acceptance length - 1) per interval, from a length printed to 2 "
                        "decimals (ESTIMATED, not used for tau)"),
        KEY: {"rounds": None, "accepted_tokens": sum(accepted), "draft_tokens": sum(drafted), "inferred": {},
              "definitions": {"accepted_tokens": "sum of 'Accepted: N tokens' over intervals",
                              "draft_tokens": "sum of 'Drafted: N tokens' over intervals",
                              "rounds": "not printed"}},
    }
    return Raw(totals_table(units, [None] * len(units), accepted, drafted), "totals", metadata)


def _number(path: Path, line_no: int, name: str, text: str, integer: bool):
    try:
        value = float(text)
    except ValueError:
        raise TraceValidationError(f"{path}: line {line_no}, field '{name}': {text!r} is not a number") from None
    if integer and (not math.isfinite(value) or value < 0 or value != int(value) or value > MAX_COUNT):
        raise TraceValidationError(f"{path}: line {line_no}, field '{name}': {text!r}; expected a whole number "
                                   ">= 0")
    return int(value) if integer else value


def _block(path: Path, text: str, layout: str, header: re.Pattern, fields: dict[str, str]) -> Raw:
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if header.search(line)]
    if len(starts) != 1:
        raise TraceValidationError(f"{path}: {len(starts)} '{header.pattern.strip('-+')}' blocks; expected exactly "
                                   "one (one benchmark run per file)")
    found: dict[str, tuple[str, int]] = {}
    for i in range(starts[0] + 1, len(lines)):
        if lines[i].startswith("====="):
            break
        for key, rx in fields.items():
            m = re.search(rx, lines[i])
            if m and key not in found:
                found[key] = (m.group(1), i + 1)
    for key in ("drafts", "draft_tokens", "accepted"):
        if key not in found:
            raise TraceValidationError(f"{path}: block at line {starts[0] + 1}: missing field "
                                       f"'{fields[key].split(':')[0].replace(chr(92), '')}'")
    r, d, a = (_number(path, found[k][1], k, found[k][0], True) for k in ("drafts", "draft_tokens", "accepted"))
    if a > d:
        raise TraceValidationError(f"{path}: line {found['accepted'][1]}, field 'Accepted tokens': {a} > {d} "
                                   "draft tokens")
    if r == 0:
        raise TraceValidationError(f"{path}: line {found['drafts'][1]}, field 'Drafts': 0; no speculative decoding")
    decimals = 2 if layout == "bench-block" else 1
    if "rate" in found and d > 0:
        rate = _number(path, found["rate"][1], "rate", found["rate"][0], False)
        _check_close(path, f"line {found['rate'][1]}", "acceptance rate (%)", rate, 100.0 * a / d, decimals)
    if "length" in found:
        length = _number(path, found["length"][1], "length", found["length"][0], False)
        _check_close(path, f"line {found['length'][1]}", "acceptance length", length, 1.0 + a / r, 2)
    definitions = {"rounds": "Drafts" if layout == "bench-block" else "Number of drafts",
                   "accepted_tokens": "Accepted tokens",
                   "draft_tokens": "Draft tokens" if layout == "bench-block" else "Draft tokens generated"}
    metadata = {"vllm_layout": layout,
                KEY: {"rounds": r, "accepted_tokens": a, "draft_tokens": d, "inferred": {},
                      "definitions": definitions}}
    return Raw(totals_table(["run"], [r], [a], [d]), "totals", metadata)
