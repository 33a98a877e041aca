"""Vectorised validation: conform a table to a kind's schema, then check its semantics.

Every check is an array expression over whole columns; a failing check finds the first offending row and
raises one :class:`~specedge.errors.TraceValidationError` that names the source, the row (in the source's
own words, via ``locate``) and the field, and says what was expected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from specedge.errors import TraceValidationError

Locate = Callable[[int], str]


def row_locator(offset: int = 0, word: str = "row") -> Locate:
    """``locate`` for a table whose row i is "<word> i+offset" in its source (CSV data row i is line i+2)."""
    return lambda i: f"{word} {int(i) + offset}"


def fail(source: str, where: str, message: str) -> None:
    raise TraceValidationError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _type_word(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _type_word(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    return str(t)


def _is_stringish(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_stringish(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _numpy(col: pa.ChunkedArray | pa.Array, fill=0) -> np.ndarray:
    """Column values as numpy, nulls replaced by ``fill`` (callers check nulls separately)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if col.null_count:
        col = col.fill_null(fill)
    return col.to_numpy(zero_copy_only=False)


def _cast_column(col: pa.ChunkedArray, target: pa.DataType, name: str, source: str, locate: Locate):
    """Cast one column to ``target`` without losing information; name the first row that cannot be cast."""
    src = col.type
    if src.equals(target):
        return col
    if pa.types.is_null(src):
        return pa.chunked_array([pa.nulls(len(col), target)]) if len(col) else pa.chunked_array([], target)
    if _is_stringish(target):
        if _is_stringish(src):
            return pc.cast(col, target)
        if pa.types.is_integer(src):
            return pc.cast(col, target)
        fail(source, f"field '{name}'", f"expected {_type_word(target)}, found {_type_word(src)}")
    if pa.types.is_integer(target):
        if pa.types.is_integer(src) or pa.types.is_floating(src):
            values = _numpy(col).astype(np.float64, copy=False)
            info = np.iinfo(target.to_pandas_dtype())
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(values) | (values != np.floor(values)) | (values < info.min) | (values > info.max)
            if pa.types.is_floating(src) and col.null_count:
                bad &= ~_numpy(col.is_null(), fill=False)
            i = _first(bad)
            if i is not None:
                raw = col[i].as_py()
                fail(source, f"{locate(i)}, field '{name}'",
                     f"value {raw!r} does not fit {target}; expected a whole number in {info.min}..{info.max}")
            return pc.cast(col, target, safe=False)
        fail(source, f"field '{name}'", f"expected {target}, found {_type_word(src)}")
    if pa.types.is_floating(target):
        if pa.types.is_integer(src) or pa.types.is_floating(src):
            return pc.cast(col, target, safe=False)
        fail(source, f"field '{name}'", f"expected {target}, found {_type_word(src)}")
    if pa.types.is_boolean(target) and pa.types.is_boolean(src):
        return col
    try:
        return pc.cast(col, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        fail(source, f"field '{name}'", f"expected {target}, found {_type_word(src)} ({exc})")


def conform(table: pa.Table, spec, *, dataset_id: str, source: str, locate: Locate | None = None) -> pa.Table:
    """Return ``table`` in the kind's canonical schema, or raise naming the first problem.

    Checks, in order: empty input, missing and unexpected columns, types (lossless casts only), nulls in
    non-nullable fields, NaN/inf in float fields, a ``dataset`` column that disagrees with ``dataset_id``;
    then the kind's semantic validator.
    """
    locate = locate or row_locator()
    schema: pa.Schema = spec.schema
    if table.num_rows == 0:
        fail(source, "", "no rows (empty input)")
    present = list(table.column_names)
    dupes = sorted({c for c in present if present.count(c) > 1})
    if dupes:
        fail(source, "header", f"column(s) {', '.join(dupes)} appear more than once")
    missing = [f.name for f in schema if f.name not in present and not f.nullable and f.name != "dataset"]
    if missing:
        fail(source, "header", f"missing column(s) {', '.join(missing)} for kind '{spec.name}'; "
                               f"expected columns {', '.join(schema.names)}")
    extra = [c for c in present if c not in schema.names]
    if extra:
        fail(source, "header", f"unexpected column(s) {', '.join(extra)} for kind '{spec.name}'; "
                               f"expected columns {', '.join(schema.names)}")
    n = table.num_rows
    arrays = []
    for f in schema:
        if f.name not in present:
            if f.name == "dataset":
                arrays.append(pa.chunked_array([pa.repeat(pa.scalar(dataset_id, pa.string()), n)]))
            else:
                arrays.append(pa.chunked_array([pa.nulls(n, f.type)]))
            continue
        col = _cast_column(table.column(f.name), f.type, f.name, source, locate)
        if col.null_count and not f.nullable:
            i = _first(_numpy(col.is_null(), fill=False))
            fail(source, f"{locate(i)}, field '{f.name}'", f"missing value; expected {f.type}")
        if pa.types.is_floating(f.type):
            values = _numpy(col, fill=0.0)
            i = _first(~np.isfinite(values))
            if i is not None:
                fail(source, f"{locate(i)}, field '{f.name}'",
                     f"value {values[i]} is not finite; expected a real number")
        if f.name == "dataset":
            wrong = pc.not_equal(col, pa.scalar(dataset_id, pa.string()))
            i = _first(_numpy(wrong, fill=True))
            if i is not None:
                fail(source, f"{locate(i)}, field 'dataset'",
                     f"value {col[i].as_py()!r} differs from the dataset id {dataset_id!r}")
        arrays.append(col)
    out = pa.Table.from_arrays(arrays, schema=schema)
    if spec.validator is not None:
        spec.validator(out, source, locate)
    return out


# ---------------------------------------------------------------- semantic checks of the built-in kinds
def _check_range(table: pa.Table, name: str, lo, source: str, locate: Locate, hi=None, what: str = "") -> None:
    col = table.column(name)
    values = _numpy(col, fill=lo)
    bad = values < lo
    if hi is not None:
        bad |= values > hi
    i = _first(bad)
    if i is not None:
        expect = what or (f">= {lo}" if hi is None else f"in {lo}..{hi}")
        fail(source, f"{locate(i)}, field '{name}'", f"value {values[i]} is out of range; expected {expect}")


def _check_unique(keys: list[np.ndarray], names: str, source: str, locate: Locate) -> None:
    """Raise on the first repeated key tuple. Integer keys packed into one int64 when they fit."""
    n = keys[0].size
    spans = [int(k.max()) - int(k.min()) + 1 for k in keys]
    if float(np.prod(np.asarray(spans, dtype=np.float64))) < 2**62:
        packed = np.zeros(n, dtype=np.int64)
        for k, span in zip(keys, spans):
            packed = packed * span + (k.astype(np.int64) - int(k.min()))
        order = np.argsort(packed, kind="stable")
        s = packed[order]
        same = s[1:] == s[:-1]
    else:  # pragma: no cover - needs > 2**62 distinct key combinations
        order = np.lexsort(keys[::-1])
        same = np.ones(n - 1, dtype=bool)
        for k in keys:
            ks = k[order]
            same &= ks[1:] == ks[:-1]
    j = _first(same)
    if j is not None:
        first, second = sorted((int(order[j]), int(order[j + 1])))
        fail(source, f"{locate(second)}", f"duplicate key ({names}); the same key is at {locate(first)}")


def _dictionary_codes(col: pa.ChunkedArray) -> np.ndarray:
    enc = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    return enc.indices.to_numpy(zero_copy_only=False)


def _check_drafted_accepted(table: pa.Table, source: str, locate: Locate) -> tuple[np.ndarray, np.ndarray]:
    """drafted >= 1 and 0 <= accepted <= drafted, row by row; returns the two columns as arrays."""
    _check_range(table, "drafted", 1, source, locate)
    _check_range(table, "accepted", 0, source, locate)
    drafted = _numpy(table.column("drafted"))
    accepted = _numpy(table.column("accepted"))
    i = _first(accepted > drafted)
    if i is not None:
        fail(source, f"{locate(i)}, field 'accepted'",
             f"accepted {accepted[i]} > drafted {drafted[i]}; expected 0 <= accepted <= drafted")
    return drafted, accepted


def check_acceptance(table: pa.Table, source: str, locate: Locate) -> None:
    """drafted >= 1, 0 <= accepted <= drafted, turn/round/prompt_tokens/temperature/wall_ms >= 0, and
    (request_id, turn, round) unique."""
    _check_drafted_accepted(table, source, locate)
    for name in ("turn", "round", "prompt_tokens", "temperature", "wall_ms"):
        _check_range(table, name, 0, source, locate)
    for name in ("request_id",):
        lengths = _numpy(pc.utf8_length(table.column(name)))
        i = _first(lengths == 0)
        if i is not None:
            fail(source, f"{locate(i)}, field '{name}'", "empty string; expected a request id")
    _check_unique(
        [_dictionary_codes(table.column("request_id")), _numpy(table.column("turn")), _numpy(table.column("round"))],
        "request_id, turn, round", source, locate,
    )


def check_compute(table: pa.Table, source: str, locate: Locate) -> None:
    """phase in prefill/decode/verify, batch_size >= 1, new_tokens >= 1, context_tokens >= 0, latency_ms > 0."""
    from specedge.traces.schema import COMPUTE_PHASES

    phase = table.column("phase")
    ok = pc.is_in(phase, value_set=pa.array(COMPUTE_PHASES))
    i = _first(~_numpy(ok, fill=False))
    if i is not None:
        fail(source, f"{locate(i)}, field 'phase'",
             f"value {phase[i].as_py()!r}; expected one of {', '.join(COMPUTE_PHASES)}")
    for name in ("model", "device", "dtype"):
        i = _first(_numpy(pc.utf8_length(table.column(name))) == 0)
        if i is not None:
            fail(source, f"{locate(i)}, field '{name}'", "empty string")
    _check_range(table, "batch_size", 1, source, locate)
    _check_range(table, "new_tokens", 1, source, locate)
    _check_range(table, "context_tokens", 0, source, locate)
    latency = _numpy(table.column("latency_ms"))
    i = _first(latency <= 0)
    if i is not None:
        fail(source, f"{locate(i)}, field 'latency_ms'", f"value {latency[i]}; expected > 0")


def check_aggregate(table: pa.Table, source: str, locate: Locate) -> None:
    """drafted >= 1, 0 <= accepted <= drafted, count >= 0 with a positive total, (drafted, accepted) unique."""
    drafted, accepted = _check_drafted_accepted(table, source, locate)
    _check_range(table, "count", 0, source, locate)
    if int(_numpy(table.column("count")).sum()) <= 0:
        fail(source, "field 'count'", "all counts are 0; expected at least one round")
    _check_unique([drafted, accepted], "drafted, accepted", source, locate)


def check_totals(table: pa.Table, source: str, locate: Locate) -> None:
    """accepted_tokens >= 0, rounds >= 0 and draft_tokens >= accepted_tokens where present, unit unique."""
    _check_range(table, "accepted_tokens", 0, source, locate)
    for name in ("rounds", "draft_tokens"):
        col = table.column(name)
        if col.null_count < table.num_rows:
            values = _numpy(col, fill=0)
            i = _first(values < 0)
            if i is not None:
                fail(source, f"{locate(i)}, field '{name}'", f"{int(values[i])}; expected >= 0")
    drafted = table.column("draft_tokens")
    if drafted.null_count < table.num_rows:
        d = _numpy(drafted, fill=-1)
        a = _numpy(table.column("accepted_tokens"))
        i = _first((d >= 0) & (a > d))
        if i is not None:
            fail(source, f"{locate(i)}, field 'accepted_tokens'",
                 f"{int(a[i])} accepted tokens > {int(d[i])} draft tokens")
    _check_unique([_dictionary_codes(table.column("unit"))], "unit", source, locate)
