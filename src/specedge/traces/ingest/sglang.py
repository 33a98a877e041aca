"""SGLang per-request ``meta_info`` (JSON lines) to an accepted-count histogram (kind ``aggregate``).

Each line is a response (``{"meta_info": {...}}``) or a bare ``meta_info`` object with ``spec_verify_ct``
(verification rounds), ``spec_accept_token_num`` (accepted draft tokens), ``spec_draft_token_num`` (drafted
tokens) and, where the server reports it, ``spec_correct_drafts_histogram`` (index k = rounds in which exactly
k drafts were correct).

- With histograms on every line: the histograms are summed; that is the dataset (exact). The draft length is
  ``--drafted``, else the histogram length − 1 (``drafted_inferred: true``).
- With totals only on every line: the histogram is fitted under the named assumption
  :data:`~specedge.traces.ingest.histogram.IID_POSITIONS` (metadata ``histogram: fitted``); the draft length is
  ``--drafted`` or Σ spec_draft_token_num / Σ spec_verify_ct when that is a whole number.
- A mix of the two is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import TraceValidationError
from specedge.traces.ingest import Raw, int_list, int_value, iter_json_records
from specedge.traces.ingest.histogram import IID_POSITIONS, aggregate_table, fit_iid_positions

WHAT = "SGLang meta_info (spec_verify_ct, spec_accept_token_num, spec_draft_token_num)"
HIST_KEYS = ("spec_correct_drafts_histogram", "spec_accept_histogram")


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    hist_sum: np.ndarray | None = None
    totals = {"spec_verify_ct": 0, "spec_accept_token_num": 0, "spec_draft_token_num": 0}
    seen = {k: 0 for k in totals}
    with_hist: list[str] = []
    without_hist: list[str] = []
    records = 0
    for where, record in iter_json_records(path, WHAT):
        if not isinstance(record, dict):
            raise TraceValidationError(f"{path}: {where}: expected a JSON object ({WHAT}), "
                                       f"found {type(record).__name__}")
        info = record.get("meta_info", record)
        if not isinstance(info, dict):
            raise TraceValidationError(f"{path}: {where}, field 'meta_info': expected an object")
        if "spec_verify_ct" not in info:
            raise TraceValidationError(f"{path}: {where}: missing field 'spec_verify_ct'; expected {WHAT}")
        values = {}
        for key in totals:
            if key in info and info[key] is not None:
                values[key] = int_value(info[key], path, where, key)
                totals[key] += values[key]
                seen[key] += 1
        hist_key = next((k for k in HIST_KEYS if info.get(k) is not None), None)
        records += 1
        if hist_key is None:
            without_hist.append(where)
            continue
        with_hist.append(where)
        hist = np.asarray(int_list(info[hist_key], path, where, hist_key), dtype=np.int64)
        if int(hist.sum()) != values["spec_verify_ct"]:
            raise TraceValidationError(
                f"{path}: {where}, field '{hist_key}': holds {int(hist.sum())} rounds but spec_verify_ct is "
                f"{values['spec_verify_ct']}; expected them to agree"
            )
        acc = int(np.dot(np.arange(hist.size), hist))
        if "spec_accept_token_num" in values and acc != values["spec_accept_token_num"]:
            raise TraceValidationError(
                f"{path}: {where}, field '{hist_key}': adds up to {acc} accepted tokens but spec_accept_token_num is "
                f"{values['spec_accept_token_num']}; expected them to agree"
            )
        if drafted is not None and hist.size - 1 > drafted and hist[drafted + 1:].any():
            k = drafted + 1 + int(np.flatnonzero(hist[drafted + 1:])[0])
            raise TraceValidationError(f"{path}: {where}, field '{hist_key}[{k}]': rounds with {k} accepted drafts, "
                                       f"more than --drafted {drafted}")
        if hist_sum is None:
            hist_sum = hist
        else:
            size = max(hist_sum.size, hist.size)
            hist_sum = np.pad(hist_sum, (0, size - hist_sum.size)) + np.pad(hist, (0, size - hist.size))
    if with_hist and without_hist:
        raise TraceValidationError(
            f"{path}: {without_hist[0]}: no spec_correct_drafts_histogram while {with_hist[0]} has one; expected "
            "all lines with a histogram or none"
        )
    reported = {f"reported_{k}": v for k, v in totals.items() if seen[k] == records}
    metadata: dict[str, Any] = {"sglang_records": records, **reported}
    if hist_sum is not None:
        nonzero = np.flatnonzero(hist_sum)
        top = int(nonzero[-1]) if nonzero.size else 0
        gamma = drafted if drafted is not None else max(hist_sum.size - 1, 1)
        metadata.update(histogram="recorded", drafted=int(gamma), drafted_inferred=drafted is None)
        counts = np.zeros(gamma + 1, dtype=np.int64)
        counts[: top + 1] = hist_sum[: top + 1]
        return Raw(aggregate_table({gamma: counts}), "aggregate", metadata)

    if seen["spec_accept_token_num"] != records:
        raise TraceValidationError(f"{path}: neither spec_correct_drafts_histogram nor spec_accept_token_num on every "
                                   "line; expected one of them")
    rounds = totals["spec_verify_ct"]
    if drafted is None:
        if seen["spec_draft_token_num"] == records and rounds and totals["spec_draft_token_num"] % rounds == 0:
            drafted = totals["spec_draft_token_num"] // rounds
            metadata["drafted_inferred"] = True
        else:
            raise TraceValidationError(
                f"{path}: no histogram and no whole-number spec_draft_token_num / spec_verify_ct; pass --drafted N "
                "(the draft length of the run)"
            )
    else:
        metadata["drafted_inferred"] = False
    try:
        counts, alpha = fit_iid_positions(rounds, totals["spec_accept_token_num"], drafted)
    except ValueError as exc:
        raise TraceValidationError(f"{path}: totals: {exc}") from None
    metadata.update(
        drafted=int(drafted),
        histogram="fitted",
        histogram_model=IID_POSITIONS,
        fitted_alpha=round(float(alpha), 6),
        note_histogram=("FITTED, not recorded: the file has per-request totals only; the histogram assumes i.i.d. "
                        "acceptance per position with one α matching the totals"),
    )
    return Raw(aggregate_table({drafted: counts}), "aggregate", metadata)
