"""Spec-Bench answer files (JSONL) to per-round acceptance rows.

One line per question: ``question_id``, ``category``, ``model_id`` and ``choices[]``, each choice with
``turns``, ``decoding_steps`` (one count per turn), ``new_tokens``, ``wall_time`` and ``accept_lengths``.
``accept_lengths`` holds every turn of the choice back to back; ``decoding_steps`` splits it. An accept length
counts the committed tokens of a step including the target's bonus/corrected token, so accepted =
accept_length − 1 and an accept length of 0 is invalid.

Read from hemingkx/Spec-Bench ``evaluation/eval.py`` (commit 70f8b28f018118f2dfd224a2abca9d9f834fd45b): per
turn it appends ``int(step)`` to ``decoding_steps`` and extends ``accept_lengths`` with the forward function's
list. Token Recycling (``evaluation/inference_recycling.py``, commit 6d56ad244a33674f6138b35a38fe3706166104a9)
increments ``step`` after its break checks, so a turn that ends by a break has decoding_steps = len − 1: when
the steps fall short of the accept lengths by exactly one per turn, each turn gets steps + 1 (metadata
``decoding_steps_offset``); any other mismatch is refused (the turns could not be split).

The tool's numbers [P: eval.py prints ``np.mean(accept_lengths)``]: R = number of accept lengths,
A = Σ (accept_length − 1), so τ = 1 + A/R = mean accept length. No draft length is written (EAGLE drafts
trees, SpS changes its draft count per round), so D and m are undefined unless ``--drafted N`` is given,
which sets D = R·N and marks D inferred. The ``drafted`` column needs a value: ``--drafted``, else the
largest observed accepted count (at least 1) with ``drafted_inferred: true`` — that column is a lower bound
for replay, never the basis of a reported acceptance ratio. The file has
no prompt lengths (``prompt_tokens`` is null) and no per-round wall time (``wall_ms`` is null);
``temperature`` is taken from ``--meta temperature=...`` or left null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from specedge.errors import TraceValidationError
from specedge.traces.ingest import Raw, int_list, iter_json_records, require, temperature_from_meta
from specedge.traces.ingest.numbers import KEY, ToolNumbers

WHAT = "a Spec-Bench answer line (question_id, category, model_id, choices[])"


def parse(path: Path, *, drafted: int | None, meta: dict[str, Any], dataset_id: str) -> Raw:
    offset_turns = 0
    request_ids: list[str] = []
    categories: list[str | None] = []
    counts: list[int] = []  # rounds contributed by each (line, choice)
    wheres: list[str] = []
    accept_parts: list[np.ndarray] = []
    turn_parts: list[np.ndarray] = []
    round_parts: list[np.ndarray] = []
    model_ids: set[str] = set()
    for where, record in iter_json_records(path, WHAT):
        qid = require(record, "question_id", path, where, WHAT)
        if isinstance(qid, bool) or not isinstance(qid, (int, str)) or str(qid) == "":
            raise TraceValidationError(f"{path}: {where}, field 'question_id': {qid!r}; expected an integer or string")
        choices = require(record, "choices", path, where, WHAT)
        if not isinstance(choices, list) or not choices:
            raise TraceValidationError(f"{path}: {where}, field 'choices': expected a non-empty list")
        category = record.get("category")
        if category is not None and not isinstance(category, str):
            raise TraceValidationError(f"{path}: {where}, field 'category': {category!r}; expected a string")
        if isinstance(record.get("model_id"), str):
            model_ids.add(record["model_id"])
        for c, choice in enumerate(choices):
            field_prefix = f"choices[{c}]"
            steps = int_list(require(choice, "decoding_steps", path, f"{where}, {field_prefix}", WHAT),
                             path, where, f"{field_prefix}.decoding_steps")
            lengths = int_list(require(choice, "accept_lengths", path, f"{where}, {field_prefix}", WHAT),
                               path, where, f"{field_prefix}.accept_lengths")
            acc = np.asarray(lengths, dtype=np.int64)
            zero = np.flatnonzero(acc < 1)
            if zero.size:
                k = int(zero[0])
                raise TraceValidationError(
                    f"{path}: {where}, field '{field_prefix}.accept_lengths[{k}]': accept length {acc[k]}; expected "
                    ">= 1 (an accept length counts the bonus token, so every step commits at least one)"
                )
            if sum(steps) != acc.size and acc.size - sum(steps) == len(steps) and steps:
                steps = [s + 1 for s in steps]  # Token Recycling: step counted after the break checks
                offset_turns += len(steps)
            if sum(steps) != acc.size:
                raise TraceValidationError(
                    f"{path}: {where}, field '{field_prefix}.decoding_steps': the steps add up to {sum(steps)} but "
                    f"accept_lengths has {acc.size} entries; expected them to match (or to fall short by one "
                    "per turn, as Token Recycling writes them)"
                )
            turns = choice.get("turns")
            if isinstance(turns, list) and len(turns) != len(steps):
                raise TraceValidationError(
                    f"{path}: {where}, field '{field_prefix}.decoding_steps': {len(steps)} entries for "
                    f"{len(turns)} turns; expected one per turn"
                )
            if acc.size == 0:
                continue
            steps_arr = np.asarray(steps, dtype=np.int64)
            turn = np.repeat(np.arange(steps_arr.size, dtype=np.int64), steps_arr)
            starts = np.concatenate(([0], np.cumsum(steps_arr)[:-1]))
            rnd = np.arange(acc.size, dtype=np.int64) - np.repeat(starts, steps_arr)
            index = choice.get("index", c) if isinstance(choice, dict) else c
            request_ids.append(str(qid) if len(choices) == 1 else f"{qid}#{index}")
            categories.append(category)
            counts.append(acc.size)
            wheres.append(f"{where}, {field_prefix}")
            accept_parts.append(acc - 1)
            turn_parts.append(turn)
            round_parts.append(rnd)
    if not accept_parts:
        raise TraceValidationError(f"{path}: no decoding steps in any choice; expected accept_lengths")

    accepted = np.concatenate(accept_parts)
    n = accepted.size
    group = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(n) - np.repeat(np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    metadata: dict[str, Any] = {}
    if drafted is None:
        drafted = max(int(accepted.max()), 1)
        metadata["drafted_inferred"] = True
    else:
        metadata["drafted_inferred"] = False
        over = np.flatnonzero(accepted > drafted)
        if over.size:
            i = int(over[0])
            raise TraceValidationError(
                f"{path}: {wheres[group[i]]}.accept_lengths[{offset[i]}]: accept length {accepted[i] + 1} means "
                f"{accepted[i]} accepted draft tokens, more than --drafted {drafted}"
            )
    metadata["drafted"] = int(drafted)
    rounds_total, accepted_total = int(n), int(accepted.sum())
    inferred = {}
    draft_tokens = None
    if not metadata["drafted_inferred"]:
        draft_tokens = rounds_total * int(drafted)
        inferred["draft_tokens"] = f"rounds x --drafted {drafted} (Spec-Bench writes no draft length)"
    metadata[KEY] = ToolNumbers(
        rounds_total, accepted_total, draft_tokens, inferred,
        {"rounds": "number of accept_lengths", "accepted_tokens": "sum(accept_length - 1)",
         "draft_tokens": "not in the file" if draft_tokens is None else "rounds x --drafted"},
    ).to_metadata()
    if offset_turns:
        metadata["decoding_steps_offset"] = (f"+1 on each of {offset_turns} turn(s): decoding_steps = len - 1 "
                                             "(Token Recycling counts a step after its break checks)")
    if model_ids:
        metadata["model_id"] = sorted(model_ids)[0] if len(model_ids) == 1 else sorted(model_ids)
    temperature = temperature_from_meta(meta, path)

    rid = pa.DictionaryArray.from_arrays(pa.array(group, pa.int32()), pa.array(request_ids, pa.string()))
    cat = pa.DictionaryArray.from_arrays(pa.array(group, pa.int32()), pa.array(categories, pa.string()))
    table = pa.table(
        {
            "request_id": rid.cast(pa.string()),
            "turn": pa.array(np.concatenate(turn_parts)),
            "round": pa.array(np.concatenate(round_parts)),
            "drafted": pa.array(np.full(n, drafted, dtype=np.int64)),
            "accepted": pa.array(accepted),
            "temperature": pa.array(np.full(n, np.nan if temperature is None else temperature, dtype=np.float32),
                                    mask=np.full(n, temperature is None)),
            "category": cat.cast(pa.string()),
        }
    )

    def locate(i: int) -> str:
        return f"{wheres[group[i]]}.accept_lengths[{offset[i]}]"

    return Raw(table, "acceptance", metadata, locate)
