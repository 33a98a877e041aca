"""The summary ``llama-speculative`` prints, to a fitted accepted-count histogram (kind ``aggregate``).

The summary has totals only::

    n_draft   = 16        draft length limit per round
    n_predict = 132       tokens generated
    n_drafted = 145       draft tokens proposed
    n_accept  = 109       draft tokens accepted
    accept    = 75.172%

(log prefixes such as ``main:`` or ``llama_print_timings:`` are ignored; a file may hold several runs, one
summary each, which are fitted separately and summed.) Totals cannot determine a histogram, so it is fitted,
and every dataset from this format says ``histogram: fitted`` with the reported totals kept verbatim in its
metadata. Two named assumptions:

- :data:`~specedge.traces.ingest.histogram.IID_POSITIONS` for the shape of the histogram;
- :data:`ROUNDS_FROM_N_PREDICT`: every round commits its accepted tokens plus one target token, so the
  number of rounds is n_predict − n_accept; without ``n_predict`` the rounds are n_drafted / n_draft
  (every round drafts the full length), rounded up.

The draft length is ``--drafted``; else, with ``n_predict``, the mean drafted per round n_drafted / rounds,
rounded and kept within [mean accepted, n_draft] (llama.cpp ends a draft early when the draft model's
confidence drops below ``p_min``, so rounds rarely draft the full ``n_draft``; ``drafted_inferred: true``);
else ``n_draft``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from specedge.errors import TraceValidationError
from specedge.traces.ingest import Raw, read_text
from specedge.traces.ingest.histogram import IID_POSITIONS, aggregate_table, fit_iid_positions

WHAT = "a llama-speculative summary (n_draft, n_predict, n_drafted, n_accept)"
#: Assumption: rounds = n_predict − n_accept (each round commits accepted + 1 tokens).
ROUNDS_FROM_N_PREDICT = "rounds = n_predict - n_accept"
_KEY = re.compile(r"\b(n_draft|n_predict|n_drafted|n_accept)\s*=\s*(-?\d+)\s*$")
_ACCEPT = re.compile(r"\baccept\s*=\s*([0-9.]+)\s*%\s*$")


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    text = read_text(path, WHAT)
    blocks: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        m = _KEY.search(line)
        if m:
            key, value = m.group(1), int(m.group(2))
            if key in current:  # a new run's summary starts
                blocks.append(current)
                current = {}
            if value < 0:
                raise TraceValidationError(f"{path}: line {n}, field '{key}': {value}; expected >= 0")
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

    histograms: dict[int, Any] = {}
    reported: list[dict[str, Any]] = []
    alphas = []
    inferred_any = False
    for b in blocks:
        first_line = min(v for k, v in b.items() if k.endswith("_line"))
        for key in ("n_drafted", "n_accept"):
            if key not in b:
                raise TraceValidationError(f"{path}: summary at line {first_line}: missing field '{key}'; "
                                           f"expected {WHAT}")
        n_drafted, n_accept = b["n_drafted"], b["n_accept"]
        if b.get("n_draft") == 0:
            raise TraceValidationError(f"{path}: line {b['n_draft_line']}, field 'n_draft': 0; expected >= 1")
        if n_accept > n_drafted:
            raise TraceValidationError(f"{path}: line {b['n_accept_line']}, field 'n_accept': {n_accept} accepted is "
                                       f"more than n_drafted = {n_drafted}")
        if n_drafted == 0:
            raise TraceValidationError(f"{path}: line {b['n_drafted_line']}, field 'n_drafted': 0; no draft tokens")
        if "accept_pct" in b and abs(b["accept_pct"] - 100.0 * n_accept / n_drafted) > 0.01:
            raise TraceValidationError(
                f"{path}: line {b['accept_line']}, field 'accept': {b['accept_pct']}% disagrees with n_accept / "
                f"n_drafted = {100.0 * n_accept / n_drafted:.3f}%"
            )
        inferred = False
        if "n_predict" in b:
            rounds = b["n_predict"] - n_accept
            where = f"line {b['n_predict_line']}, field 'n_predict'"
            if rounds < 1:
                raise TraceValidationError(f"{path}: {where}: n_predict {b['n_predict']} - n_accept {n_accept} = "
                                           f"{rounds} rounds; expected at least one")
            gamma = drafted
            if gamma is None:
                upper = b.get("n_draft") or n_drafted
                gamma = int(min(upper, max(math.ceil(n_accept / rounds), round(n_drafted / rounds), 1)))
                inferred = True
        else:
            gamma = drafted if drafted is not None else b.get("n_draft")
            if gamma is None:
                raise TraceValidationError(f"{path}: summary at line {first_line}: neither 'n_draft' nor 'n_predict'; "
                                           "pass --drafted N")
            rounds = math.ceil(n_drafted / gamma)
            where = f"line {b['n_drafted_line']}, field 'n_drafted'"
        inferred_any = inferred_any or inferred
        try:
            counts, alpha = fit_iid_positions(rounds, n_accept, gamma)
        except ValueError as exc:
            raise TraceValidationError(f"{path}: {where}: {exc}") from None
        histograms[gamma] = counts if gamma not in histograms else histograms[gamma] + counts
        alphas.append(round(float(alpha), 6))
        reported.append({k: b[k] for k in ("n_draft", "n_predict", "n_drafted", "n_accept") if k in b})
    metadata: dict[str, Any] = {
        "histogram": "fitted",
        "histogram_model": IID_POSITIONS,
        "rounds_assumption": ROUNDS_FROM_N_PREDICT if all("n_predict" in r for r in reported)
        else "rounds = ceil(n_drafted / drafted) where n_predict is missing",
        "fitted_alpha": alphas[0] if len(alphas) == 1 else alphas,
        "reported": reported[0] if len(reported) == 1 else reported,
        "note_histogram": ("FITTED, not recorded: llama-speculative prints totals only; the histogram assumes i.i.d. "
                           "acceptance per position with one α matching the totals"),
    }
    if len(histograms) == 1:
        metadata["drafted"] = int(next(iter(histograms)))
    metadata["drafted_inferred"] = inferred_any
    return Raw(aggregate_table(histograms), "aggregate", metadata)
