"""The ``run`` dataset kind: what a real serving run measured, one table with a ``record`` column.

Four record types share one Arrow schema (columns a record type does not use are null):

- ``task``, one row per task: task, request_id, batch, speculation_length, input_tokens, output_tokens, upload_s
  (scheduled by the emulated uplink), ready_s (when the draft node received it), first_token_s, completion_s,
  round (the rounds it took);
- ``job``, one row per (node, batch, round) stage job: node, batch, round, batch_size, speculation_length,
  ready_s (its inputs were available at the node), start_s, end_s;
- ``pass``, one row per forward pass: node, phase, batch, round, batch_size, new_tokens, context_tokens, start_s,
  end_s, cpu_s (the node thread's CPU time during the pass: end_s - start_s - cpu_s is time the core ran
  something else);
- ``round``, one row per (task, verification round): task, batch, round, drafted, accepted, tokens (committed;
  the last round is truncated at the output length), end_s.

Times are seconds since the run's origin t0 (the instant the emulated uplink starts), on the machine's monotonic
clock, which every process of the run shares. ``round`` rows are an acceptance trace of the run itself: replaying
task k with its own rows reproduces the run's acceptance exactly (:mod:`specedge.fidelity`).

Importing this module registers the kind with the trace store (:func:`specedge.traces.schema.register_kind`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from specedge.errors import TraceValidationError
from specedge.traces.schema import register_kind

KIND = "run"
RECORDS = ("task", "job", "pass", "round")
NODES = ("draft", "verify")
PHASES = ("prefill", "decode", "verify")

RUN_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("record", pa.string(), nullable=False),
        pa.field("node", pa.string(), nullable=True),
        pa.field("phase", pa.string(), nullable=True),
        pa.field("task", pa.int32(), nullable=True),
        pa.field("request_id", pa.string(), nullable=True),
        pa.field("batch", pa.int32(), nullable=True),
        pa.field("round", pa.int32(), nullable=True),
        pa.field("batch_size", pa.int32(), nullable=True),
        pa.field("new_tokens", pa.int32(), nullable=True),
        pa.field("context_tokens", pa.int32(), nullable=True),
        pa.field("speculation_length", pa.int16(), nullable=True),
        pa.field("drafted", pa.int16(), nullable=True),
        pa.field("accepted", pa.int16(), nullable=True),
        pa.field("tokens", pa.int32(), nullable=True),
        pa.field("input_tokens", pa.int32(), nullable=True),
        pa.field("output_tokens", pa.int32(), nullable=True),
        pa.field("upload_s", pa.float64(), nullable=True),
        pa.field("ready_s", pa.float64(), nullable=True),
        pa.field("start_s", pa.float64(), nullable=True),
        pa.field("end_s", pa.float64(), nullable=True),
        pa.field("cpu_s", pa.float64(), nullable=True),
        pa.field("first_token_s", pa.float64(), nullable=True),
        pa.field("completion_s", pa.float64(), nullable=True),
    ]
)

#: Columns each record type must fill (non-null).
REQUIRED = {
    "task": ("task", "request_id", "batch", "speculation_length", "input_tokens", "output_tokens", "upload_s",
             "ready_s", "first_token_s", "completion_s", "round"),
    "job": ("node", "batch", "round", "batch_size", "speculation_length", "ready_s", "start_s", "end_s"),
    "pass": ("node", "phase", "batch", "round", "batch_size", "new_tokens", "context_tokens", "start_s", "end_s"),
    "round": ("task", "batch", "round", "drafted", "accepted", "tokens", "end_s"),
}

#: Slack for comparing times recorded by different processes (clock reads are ns-resolution, same clock).
TIME_SLACK_S = 1e-6


def _fail(source: str, where: str, message: str) -> None:
    raise TraceValidationError(f"{source}: {where}: {message}")


def check_run(table: pa.Table, source: str, locate: Callable[[int], str]) -> None:
    """Semantics of a run table (raises TraceValidationError naming the first bad row)."""
    frame = table.to_pandas()
    rec = frame["record"].to_numpy(dtype=object)
    bad = ~np.isin(rec, RECORDS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, f"{locate(i)}, field 'record'", f"{rec[i]!r}; expected one of {', '.join(RECORDS)}")
    for kind, cols in REQUIRED.items():
        rows = np.flatnonzero(rec == kind)
        for col in cols:
            nulls = frame[col].isna().to_numpy()[rows]
            if nulls.any():
                _fail(source, f"{locate(rows[np.argmax(nulls)])}, field '{col}'", f"null; a '{kind}' row needs it")
    if not (rec == "task").any():
        _fail(source, "record", "no 'task' rows")
    for col in ("node", "phase"):
        allowed = NODES if col == "node" else PHASES
        vals = frame[col].to_numpy(dtype=object)
        wrong = pd.notna(vals) & ~np.isin(vals, allowed)
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            _fail(source, f"{locate(i)}, field '{col}'", f"{vals[i]!r}; expected one of {', '.join(allowed)}")
    for col in ("batch_size", "new_tokens", "input_tokens", "output_tokens", "speculation_length", "drafted",
                "tokens"):
        v = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = v < 1
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            _fail(source, f"{locate(i)}, field '{col}'", f"{v[i]:g}; expected >= 1")
    for col in ("task", "batch", "round", "context_tokens", "accepted", "upload_s", "ready_s", "start_s", "end_s",
                "cpu_s", "first_token_s", "completion_s"):
        v = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = v < 0
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            _fail(source, f"{locate(i)}, field '{col}'", f"{v[i]:g}; expected >= 0")

    def f(col):
        return frame[col].to_numpy(dtype=np.float64, na_value=np.nan)

    with np.errstate(invalid="ignore"):
        checks = (
            (f("end_s") < f("start_s") - TIME_SLACK_S, "end_s", "ends before start_s"),
            (f("accepted") > f("drafted"), "accepted", "exceeds drafted"),
            (f("completion_s") < f("first_token_s") - TIME_SLACK_S, "completion_s", "is before first_token_s"),
            (f("first_token_s") < f("ready_s") - TIME_SLACK_S, "first_token_s", "is before ready_s (arrival)"),
        )
    for mask, col, words in checks:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            _fail(source, f"{locate(i)}, field '{col}'", words)
    tasks = frame.loc[rec == "task", "task"].to_numpy(np.int64)
    if np.unique(tasks).size != tasks.size:
        _fail(source, "task rows", "a task appears more than once")
    rounds = frame[rec == "round"]
    if len(rounds):
        unknown = ~np.isin(rounds["task"].to_numpy(np.int64), tasks)
        if unknown.any():
            i = int(rounds.index[np.argmax(unknown)])
            _fail(source, f"{locate(i)}, field 'task'", "a round of a task that has no 'task' row")
        got = rounds.groupby("task")["tokens"].sum()
        want = frame[rec == "task"].set_index("task")["output_tokens"]
        short = got.reindex(want.index).fillna(0).to_numpy() != want.to_numpy()
        if short.any():
            k = int(want.index[np.argmax(short)])
            _fail(source, f"task {k}", f"its rounds commit {int(got.get(k, 0))} tokens, output_tokens is "
                                       f"{int(want[k])}")


SPEC = register_kind(KIND, RUN_SCHEMA, check_run, detect_columns=("record", "start_s", "end_s"))


def run_table(parts: Mapping[str, pd.DataFrame], dataset_id: str) -> pa.Table:
    """One run table from per-record frames (keys of ``parts`` are record types; missing columns become null)."""
    frames = []
    for record, part in parts.items():
        if record not in RECORDS:
            raise TraceValidationError(f"run {dataset_id!r}: unknown record type {record!r}")
        if len(part):
            frames.append(part.assign(record=record))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"record": []})
    arrays = {}
    for fld in RUN_SCHEMA:
        if fld.name == "dataset":
            arrays["dataset"] = pa.array([dataset_id] * len(data), type=pa.string())
            continue
        if fld.name not in data.columns:
            arrays[fld.name] = pa.nulls(len(data), type=fld.type)
            continue
        col = data[fld.name]
        mask = col.isna().to_numpy()
        if pa.types.is_string(fld.type):
            values = [None if m else str(v) for v, m in zip(col.to_numpy(dtype=object), mask)]
            arrays[fld.name] = pa.array(values, type=fld.type)
        else:
            np_type = fld.type.to_pandas_dtype()
            values = col.to_numpy(dtype=np.float64, na_value=0.0)
            arrays[fld.name] = pa.array(values.astype(np_type), type=fld.type, mask=mask)
    return pa.table(arrays, schema=RUN_SCHEMA)


def split_records(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A run dataset (as read from the store) split by record type, each keeping only its own columns."""
    out = {}
    for record, cols in REQUIRED.items():
        part = frame[frame["record"] == record]
        extra = [c for c in ("cpu_s",) if record == "pass" and c in frame.columns]
        out[record] = part[list(dict.fromkeys(cols + tuple(extra)))].reset_index(drop=True)
    return out
