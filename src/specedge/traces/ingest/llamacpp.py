"""llama.cpp: the summary of ``llama-speculative`` / ``llama-speculative-simple``, and llama-server's numbers.

Summary (both examples print it with ``LOG_INF``; a file may hold several runs, one summary each)::

    n_draft   = 16        --draft-max
    n_predict = 132       tokens generated
    n_drafted = 145       draft tokens proposed
    n_accept  = 109       draft tokens accepted
    accept    = 75.172%   100.0f * n_accept / n_drafted, checked to the printed precision

The tool's numbers: A = n_accept, D = n_drafted, m = A/D = the printed ``accept``. Rounds depend on the
program (``--variant``; the two summaries are identical, so the file cannot tell):

- ``speculative`` (examples/speculative/speculative.cpp): the first iteration samples the token after the
  prompt with no draft and every iteration commits accepted + 1 tokens, so verification rounds
  R = n_predict − n_accept − 1; n_drafted counts draft *steps* (tree branches share a step);
- ``speculative-simple`` (examples/speculative-simple/speculative-simple.cpp): every iteration is a
  verification round, R = n_predict − n_accept, and the draft size varies (some rounds draft 0 tokens).

Without ``--variant`` R and τ are null and the dataset is kind ``totals``. With it, τ = 1 + A/R and the
dataset is an accepted-count histogram *fitted* under
:data:`~specedge.traces.ingest.histogram.IID_POSITIONS` (``histogram: fitted``; the draft length of the
histogram is ``--drafted``, else D/R rounded and kept in [mean accepted, n_draft], flagged
``drafted_inferred``). The histogram is for replay only: ``traces show`` reports the exact totals.

llama-server (tools/server): ``/completion`` responses (JSON or JSON lines) carry ``timings.draft_n`` and
``timings.draft_n_accepted`` (present only when draft_n > 0), and the server log prints ``draft acceptance
rate = %0.5f (%5d accepted / %5d generated)`` per finished request. Neither counts rounds: A and D are
ingested as totals (kind ``totals``, R and τ null), one row per response or log line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from specedge.errors import TraceValidationError
from specedge.traces.ingest import MAX_COUNT, Raw, int_value, iter_json_records, read_text
from specedge.traces.ingest.histogram import IID_POSITIONS, aggregate_table, fit_iid_positions
from specedge.traces.ingest.numbers import KEY, ToolNumbers, totals_table

WHAT = "a llama-speculative summary (n_draft, n_predict, n_drafted, n_accept) or llama-server output"
#: Rounds per variant: (name of the rule, tokens of n_predict that are not verification rounds).
ROUNDS_RULE = {
    "speculative": ("rounds = n_predict - n_accept - 1 (the first token is sampled without a draft)", 1),
    "speculative-simple": ("rounds = n_predict - n_accept (every iteration verifies a draft)", 0),
}
_KEY = re.compile(r"\b(n_draft|n_predict|n_drafted|n_accept)\s*=\s*(-?\d+)\s*$")
_ACCEPT = re.compile(r"\baccept\s*=\s*(-?nan|[0-9.]+)\s*%\s*$")
_SERVER_LOG = re.compile(r"draft acceptance rate = ([0-9.]+|-?nan) \(\s*(\d+) accepted /\s*(\d+) generated\)")


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str,
          variant: str | None = None) -> Raw:
    text = read_text(path, WHAT)
    if text.lstrip()[:1] in ("{", "["):
        return _server_json(path)
    if "draft acceptance rate =" in text:
        return _server_log(path, text)
    return _summary(path, text, drafted, variant)


# ------------------------------------------------------------------------------------------ llama-server
def _server_json(path: Path) -> Raw:
    units, accepted, generated = [], [], []
    skipped = 0
    for where, record in iter_json_records(path, "llama-server /completion responses with timings"):
        if not isinstance(record, dict):
            raise TraceValidationError(f"{path}: {where}: expected a JSON object (a llama-server response), found "
                                       f"{type(record).__name__}")
        timings = record.get("timings")
        if not isinstance(timings, dict):
            raise TraceValidationError(f"{path}: {where}: missing field 'timings'; expected a llama-server "
                                       "/completion response")
        if "draft_n" not in timings:  # written only when draft_n > 0
            skipped += 1
            continue
        d = int_value(timings["draft_n"], path, where, "timings.draft_n")
        if "draft_n_accepted" not in timings:
            raise TraceValidationError(f"{path}: {where}: missing field 'timings.draft_n_accepted' next to "
                                       "timings.draft_n")
        a = int_value(timings["draft_n_accepted"], path, where, "timings.draft_n_accepted")
        if a > d:
            raise TraceValidationError(f"{path}: {where}, field 'timings.draft_n_accepted': {a} > draft_n {d}")
        units.append(where)
        accepted.append(a)
        generated.append(d)
    if not units:
        raise TraceValidationError(f"{path}: no response with timings.draft_n ({skipped} without drafts); expected "
                                   "llama-server output with speculative decoding")
    return _server_totals(units, accepted, generated, "server-json", "timings.draft_n_accepted", "timings.draft_n",
                          {"llamacpp_responses_without_drafts": skipped})


def _server_log(path: Path, text: str) -> Raw:
    units, accepted, generated = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        m = _SERVER_LOG.search(line)
        if not m:
            continue
        a, d = int(m.group(2)), int(m.group(3))
        if d > MAX_COUNT:
            raise TraceValidationError(f"{path}: line {n}, field 'generated': {d} is too large")
        if a > d:
            raise TraceValidationError(f"{path}: line {n}, field 'accepted': {a} accepted > {d} generated")
        printed = float(m.group(1))
        if d > 0 and not (math.isfinite(printed) and abs(printed - a / d) <= 5e-6 + 1e-6):
            raise TraceValidationError(f"{path}: line {n}, field 'draft acceptance rate': {m.group(1)} disagrees "
                                       f"with {a} / {d} = {a / d:.6f}")
        units.append(f"line {n}")
        accepted.append(a)
        generated.append(d)
    return _server_totals(units, accepted, generated, "server-log", "accepted", "generated", {})


def _server_totals(units, accepted, generated, layout: str, a_name: str, d_name: str, extra: dict) -> Raw:
    metadata = {
        "llamacpp_layout": layout,
        **extra,
        KEY: ToolNumbers(None, sum(accepted), sum(generated), {},
                         {"rounds": "not reported by llama-server", "accepted_tokens": f"sum of {a_name}",
                          "draft_tokens": f"sum of {d_name}"}).to_metadata(),
    }
    return Raw(totals_table(units, [None] * len(units), accepted, generated), "totals", metadata)


# ------------------------------------------------------------------------------------------ summaries
def _blocks(path: Path, text: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        m = _KEY.search(line)
        if m:
            key, value = m.group(1), int(m.group(2))
            if key in current:  # a new run's summary starts
                blocks.append(current)
                current = {}
            if not 0 <= value <= MAX_COUNT:
                raise TraceValidationError(f"{path}: line {n}, field '{key}': {value}; expected 0..{MAX_COUNT}")
            current[key] = value
            current[f"{key}_line"] = n
            continue
        m = _ACCEPT.search(line)
        if m and current:
            current["accept_pct"] = float(m.group(1))
            current["accept_line"] = n
    if current:
        blocks.append(current)
    if not blocks:
        raise TraceValidationError(f"{path}: no 'n_drafted = ...' / 'n_accept = ...' lines found; expected {WHAT}")
    return blocks


def _summary(path: Path, text: str, drafted: int | None, variant: str | None) -> Raw:
    blocks = _blocks(path, text)
    units, rounds_l, accepted_l, drafted_l, reported, alphas = [], [], [], [], [], []
    histograms: dict[int, Any] = {}
    inferred_any = False
    for b in blocks:
        first_line = min(v for k, v in b.items() if k.endswith("_line"))
        for key in ("n_drafted", "n_accept") + (("n_predict",) if variant else ()):
            if key not in b:
                raise TraceValidationError(f"{path}: summary at line {first_line}: missing field '{key}'; "
                                           f"expected {WHAT}")
        n_drafted, n_accept = b["n_drafted"], b["n_accept"]
        if n_accept > n_drafted:
            raise TraceValidationError(f"{path}: line {b['n_accept_line']}, field 'n_accept': {n_accept} accepted is "
                                       f"more than n_drafted = {n_drafted}")
        if "accept_pct" in b and n_drafted > 0 and not abs(b["accept_pct"] - 100.0 * n_accept / n_drafted) <= 6e-4:
            raise TraceValidationError(
                f"{path}: line {b['accept_line']}, field 'accept': {b['accept_pct']}% disagrees with n_accept / "
                f"n_drafted = {100.0 * n_accept / n_drafted:.4f}% (printed to 3 decimals)"
            )
        rounds = None
        if variant is not None:
            rule, offset = ROUNDS_RULE[variant]
            rounds = b["n_predict"] - n_accept - offset
            if rounds < 1:
                raise TraceValidationError(f"{path}: line {b['n_predict_line']}, field 'n_predict': {rule} gives "
                                           f"{rounds} rounds; expected at least one")
        units.append(f"summary at line {first_line}")
        rounds_l.append(rounds)
        accepted_l.append(n_accept)
        drafted_l.append(n_drafted)
        reported.append({k: b[k] for k in ("n_draft", "n_predict", "n_drafted", "n_accept") if k in b})
        if rounds is not None and n_drafted > 0:
            gamma = drafted
            if gamma is None:
                upper = b.get("n_draft") or n_drafted
                gamma = int(min(max(upper, 1), max(math.ceil(n_accept / rounds), round(n_drafted / rounds), 1)))
                inferred_any = True
            try:
                counts, alpha = fit_iid_positions(rounds, n_accept, gamma)
            except ValueError as exc:
                raise TraceValidationError(f"{path}: line {b['n_predict_line']}, field 'n_predict': {exc}") from None
            histograms[gamma] = counts if gamma not in histograms else histograms[gamma] + counts
            alphas.append(round(float(alpha), 6))
    total_rounds = None if any(r is None for r in rounds_l) else sum(rounds_l)
    definitions = {"accepted_tokens": "sum of n_accept", "draft_tokens": "sum of n_drafted",
                   "rounds": ROUNDS_RULE[variant][0] if variant else "undefined without --variant"}
    metadata: dict[str, Any] = {
        "llamacpp_layout": f"summary ({variant})" if variant else "summary (variant not given)",
        "reported": reported[0] if len(reported) == 1 else reported,
        KEY: ToolNumbers(total_rounds, sum(accepted_l), sum(drafted_l), {}, definitions).to_metadata(),
    }
    if variant is None or len(histograms) == 0 or len(alphas) != len(blocks):
        if variant is None:
            metadata["note_rounds"] = ("llama-speculative and llama-speculative-simple print the same summary but "
                                       "count rounds differently; pass --variant to define rounds and tau")
        return Raw(totals_table(units, rounds_l, accepted_l, drafted_l), "totals", metadata)
    metadata.update(
        histogram="fitted",
        histogram_model=IID_POSITIONS,
        rounds_assumption=ROUNDS_RULE[variant][0],
        fitted_alpha=alphas[0] if len(alphas) == 1 else alphas,
        note_histogram=("FITTED, not recorded: llama.cpp prints totals only; the histogram assumes i.i.d. "
                        "acceptance per position with one alpha matching the totals (tool_numbers hold the exact "
                        "totals)"),
        drafted_inferred=inferred_any,
    )
    if len(histograms) == 1:
        metadata["drafted"] = int(next(iter(histograms)))
    return Raw(aggregate_table(histograms), "aggregate", metadata)
