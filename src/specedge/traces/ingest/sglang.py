"""SGLang per-request ``meta_info`` (JSON lines; a response ``{"meta_info": {...}}`` or a bare ``meta_info``).

Layouts (docs/ingest.md names the source file and commit of each), all written only when spec_verify_ct > 0
except where noted:

- newest (``tokenizer_manager_components/spec_decoding_meta.py``): ``spec_verify_ct``,
  ``spec_num_correct_drafts``, ``spec_num_proposed_drafts`` (aliases ``spec_accepted_drafts`` /
  ``spec_proposed_drafts``), ``spec_accept_rate``, ``spec_accept_length`` and, when the server tracks it,
  ``spec_correct_drafts_histogram`` (alias ``spec_accept_histogram``);
- ``spec_accepted_drafts`` / ``spec_proposed_drafts`` / ``spec_accept_histogram`` (one release earlier);
- ``spec_accept_token_num`` / ``spec_draft_token_num`` (``tokenizer_manager.py``; here ``spec_verify_ct``
  is written on every request, 0 for one that finished at the prompt pass);
- v0.4.x: ``spec_verify_ct`` and ``completion_tokens`` only.

A request without spec_verify_ct > 0 carries no numbers and is skipped (counted in
``sglang_requests_without_spec``), never a reason to refuse the file.

The tool's numbers: R = Σ spec_verify_ct, A = Σ correct (accepted) drafts, D = Σ proposed drafts, so
m = A/D = SGLang's ``spec_accept_rate`` (checked per request) and τ = 1 + A/R. SGLang's own
``spec_accept_length`` is completion_tokens / spec_verify_ct, which also counts the prompt pass's token, so it
is *not* τ (kept as ``mean_spec_accept_length`` for reference). D = spec_verify_ct ×
(speculative_num_draft_tokens − 1): with tree drafting (topk > 1) that is the tree's draft tokens, so m is
per tree token, not per chain position. v0.4.x files define R only: A is inferred as completion_tokens −
spec_verify_ct − 1 [A: the prompt pass yields one token, each verify round accepted + 1, no truncation] and
labelled, D only with ``--drafted`` (D = R·γ, labelled).

Histogram index k = rounds with exactly k correct drafts (bonus excluded); the list grows on demand, so its
length says nothing about the draft length. With a histogram on every request the dataset is their sum
(exact, kind ``aggregate``); otherwise, with A, it is fitted under
:data:`~specedge.traces.ingest.histogram.IID_POSITIONS` and flagged; v0.4.x files give kind ``totals``. The
``drafted`` column is D/R (``--drafted`` overrides), rounded up and flagged when not whole.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from specedge.errors import TraceValidationError
from specedge.traces.ingest import Raw, int_list, int_value, iter_json_records
from specedge.traces.ingest.histogram import IID_POSITIONS, aggregate_table, fit_iid_positions
from specedge.traces.ingest.numbers import KEY, ToolNumbers, totals_table

WHAT = "SGLang meta_info (spec_verify_ct with spec_num_correct_drafts, spec_accepted_drafts or spec_accept_token_num)"
ACCEPTED_KEYS = ("spec_num_correct_drafts", "spec_accepted_drafts", "spec_accept_token_num")
PROPOSED_KEYS = ("spec_num_proposed_drafts", "spec_proposed_drafts", "spec_draft_token_num")
HIST_KEYS = ("spec_correct_drafts_histogram", "spec_accept_histogram")
#: Assumption behind v0.4.x files: accepted = completion_tokens − spec_verify_ct − 1.
ACCEPTED_FROM_COMPLETION = "completion_tokens - spec_verify_ct - 1 (prompt pass yields 1 token, no truncation)"


def _one_of(info: dict, keys: tuple[str, ...], path: Path, where: str, as_list: bool = False):
    """(value, key) of the first present key; aliases that are also present must agree with it."""
    present = [k for k in keys if info.get(k) is not None]
    if not present:
        return None, None
    conv = (lambda v, k: int_list(v, path, where, k)) if as_list else (lambda v, k: int_value(v, path, where, k))
    value = conv(info[present[0]], present[0])
    for other in present[1:]:
        if conv(info[other], other) != value:
            raise TraceValidationError(f"{path}: {where}, field '{other}': {info[other]!r} disagrees with "
                                       f"'{present[0]}' = {info[present[0]]!r}; expected aliases to agree")
    return value, present[0]


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    reqs: list[dict[str, Any]] = []
    skipped = 0
    for where, record in iter_json_records(path, WHAT):
        if not isinstance(record, dict):
            raise TraceValidationError(f"{path}: {where}: expected a JSON object ({WHAT}), "
                                       f"found {type(record).__name__}")
        info = record.get("meta_info", record)
        if not isinstance(info, dict):
            raise TraceValidationError(f"{path}: {where}, field 'meta_info': expected an object")
        verify = int_value(info["spec_verify_ct"], path, where, "spec_verify_ct") \
            if info.get("spec_verify_ct") is not None else 0
        accepted, acc_key = _one_of(info, ACCEPTED_KEYS, path, where)
        if verify == 0:
            if accepted:
                raise TraceValidationError(f"{path}: {where}, field '{acc_key}': {accepted} accepted drafts with "
                                           "spec_verify_ct 0")
            skipped += 1
            continue
        proposed, prop_key = _one_of(info, PROPOSED_KEYS, path, where)
        hist, hist_key = _one_of(info, HIST_KEYS, path, where, as_list=True)
        req: dict[str, Any] = {"where": where, "R": verify, "A": accepted, "D": proposed, "hist": hist,
                               "hist_key": hist_key, "acc_key": acc_key}
        if accepted is None:
            if "completion_tokens" not in info:
                raise TraceValidationError(f"{path}: {where}: spec_verify_ct {verify} but neither accepted drafts "
                                           f"({', '.join(ACCEPTED_KEYS)}) nor completion_tokens; expected {WHAT}")
            completion = int_value(info["completion_tokens"], path, where, "completion_tokens")
            req["A"] = completion - verify - 1
            req["inferred_A"] = True
            if req["A"] < 0 or req["A"] > completion:
                raise TraceValidationError(f"{path}: {where}, field 'completion_tokens': {completion} tokens for "
                                           f"{verify} verify rounds gives {req['A']} accepted drafts "
                                           f"({ACCEPTED_FROM_COMPLETION}); expected >= 0")
        else:
            if proposed is not None and accepted > proposed:
                raise TraceValidationError(f"{path}: {where}, field '{acc_key}': {accepted} accepted drafts > "
                                           f"{proposed} proposed ('{prop_key}')")
            rate = info.get("spec_accept_rate")
            if proposed and isinstance(rate, (int, float)) and not isinstance(rate, bool) and \
                    not math.isclose(rate, accepted / proposed, rel_tol=1e-9, abs_tol=1e-12):
                raise TraceValidationError(f"{path}: {where}, field 'spec_accept_rate': {rate!r} disagrees with "
                                           f"{acc_key} / {prop_key} = {accepted / proposed!r}")
        if hist is not None:
            h = np.asarray(hist, dtype=np.int64)
            if int(h.sum()) != verify:
                raise TraceValidationError(f"{path}: {where}, field '{hist_key}': holds {int(h.sum())} rounds but "
                                           f"spec_verify_ct is {verify}; expected them to agree")
            acc = int(np.dot(np.arange(h.size), h))
            if req["A"] is not None and not req.get("inferred_A") and acc != req["A"]:
                raise TraceValidationError(f"{path}: {where}, field '{hist_key}': adds up to {acc} correct drafts but "
                                           f"{acc_key} is {req['A']}; expected them to agree")
            req["hist"] = h
        if isinstance(info.get("spec_accept_length"), (int, float)):
            req["L"] = float(info["spec_accept_length"])
        reqs.append(req)
    if not reqs:
        raise TraceValidationError(f"{path}: no request with spec_verify_ct > 0 ({skipped} without speculative "
                                   f"numbers); expected {WHAT}")
    inferred_a = [r for r in reqs if r.get("inferred_A")]
    if inferred_a and len(inferred_a) != len(reqs):
        odd = next(r for r in reqs if bool(r.get("inferred_A")) != bool(reqs[0].get("inferred_A")))
        raise TraceValidationError(f"{path}: {odd['where']}: mixes SGLang layouts (some lines have accepted-draft "
                                   "counts, others only spec_verify_ct); expected one server's output per file")
    return _build(path, reqs, skipped, drafted, bool(inferred_a))


def _build(path: Path, reqs: list[dict[str, Any]], skipped: int, drafted: int | None, v04: bool) -> Raw:
    R = sum(r["R"] for r in reqs)
    A = sum(r["A"] for r in reqs)
    inferred: dict[str, str] = {}
    if all(r["D"] is not None for r in reqs):
        D = sum(r["D"] for r in reqs)
        definitions = {"draft_tokens": "sum of spec_num_proposed_drafts (= spec_verify_ct x "
                                       "(speculative_num_draft_tokens - 1); with topk > 1 the tree's tokens)"}
    elif drafted is not None:
        D = R * drafted
        inferred["draft_tokens"] = f"spec_verify_ct x --drafted {drafted} (the file has no proposed-draft count)"
        definitions = {"draft_tokens": "rounds x --drafted"}
    else:
        D = None
        definitions = {"draft_tokens": "not in the file"}
    if v04:
        inferred["accepted_tokens"] = ACCEPTED_FROM_COMPLETION
    definitions.update(rounds="sum of spec_verify_ct",
                       accepted_tokens=ACCEPTED_FROM_COMPLETION if v04 else f"sum of {reqs[0]['acc_key']}")
    metadata: dict[str, Any] = {
        "sglang_records": len(reqs) + skipped,
        "sglang_requests_without_spec": skipped,
        KEY: ToolNumbers(R, A, D, inferred, definitions).to_metadata(),
    }
    lengths = [r["L"] for r in reqs if "L" in r]
    if lengths:
        metadata["mean_spec_accept_length"] = round(float(np.mean(lengths)), 6)
        metadata["note_tau"] = ("SGLang's spec_accept_length = completion_tokens / spec_verify_ct counts the prompt "
                                "pass's token too; tau here is 1 + accepted / spec_verify_ct")
    if v04:
        metadata["sglang_layout"] = "v0.4 (spec_verify_ct and completion_tokens only)"
        return Raw(totals_table([r["where"] for r in reqs], [r["R"] for r in reqs], [r["A"] for r in reqs],
                                [None if D is None else r["D"] if r["D"] is not None else r["R"] * drafted
                                 for r in reqs]),
                   "totals", metadata)
    per_round = drafted if drafted is not None else (math.ceil(D / R) if D is not None else None)
    hists = [r["hist"] for r in reqs if r["hist"] is not None]
    if len(hists) == len(reqs):
        size = max(h.size for h in hists)
        total = np.sum([np.pad(h, (0, size - h.size)) for h in hists], axis=0)
        top = int(np.flatnonzero(total)[-1]) if total.any() else 0
        gamma = per_round if per_round is not None else max(top, 1)
        if top > gamma:
            raise TraceValidationError(f"{path}: {reqs[0]['hist_key']}[{top}]: rounds with {top} correct drafts, "
                                       f"more than the {gamma} draft tokens per round")
        counts = np.zeros(gamma + 1, dtype=np.int64)
        counts[: top + 1] = total[: top + 1]
        metadata.update(histogram="recorded", drafted=int(gamma),
                        drafted_inferred=drafted is None and (D is None or D % R != 0))
        return Raw(aggregate_table({gamma: counts}), "aggregate", metadata)
    if per_round is None:
        raise TraceValidationError(f"{path}: no histogram and no proposed-draft count on every line; pass "
                                   "--drafted N (the draft length of the run)")
    try:
        counts, alpha = fit_iid_positions(R, A, per_round)
    except ValueError as exc:
        raise TraceValidationError(f"{path}: totals: {exc}") from None
    metadata.update(
        drafted=int(per_round),
        drafted_inferred=drafted is None and D % R != 0,
        histogram="fitted",
        histogram_model=IID_POSITIONS,
        fitted_alpha=round(float(alpha), 6),
        note_histogram=(f"FITTED, not recorded: {len(hists)} of {len(reqs)} requests carry a histogram; the "
                        "histogram assumes i.i.d. acceptance per position with one alpha matching the totals "
                        "(tool_numbers hold the exact totals)"),
    )
    return Raw(aggregate_table({per_round: counts}), "aggregate", metadata)
