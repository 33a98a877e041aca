"""The v1 trace schemas as Arrow schemas, and the registry of trace kinds.

A *kind* is a named Arrow schema plus a semantic validator. Four kinds ship with specedge:

- ``acceptance``: one row per verification round (the pair drafted/accepted and its context);
- ``compute``: one row per measured forward pass (latency samples);
- ``aggregate``: an accepted-count histogram (``drafted``, ``accepted``, ``count``) for sources that only
  carry counters or histograms; replay samples rounds from it;
- ``totals``: accepted and draft token totals (rounds where known) for sources with neither rounds nor a
  histogram (llama-server, vLLM's interval log line).

Later code adds kinds with :func:`register_kind` (e.g. a ``run`` kind for measured serving runs) without
touching the store. Column names and dtypes follow ``design/traces.md``. Three acceptance columns are
nullable because ingested formats do not always carry them: ``prompt_tokens`` (Spec-Bench answer files have
no prompt length), ``temperature`` (unknown unless the user passes ``--meta temperature=...``) and ``wall_ms``;
``category`` is an optional, nullable string (Spec-Bench's question category). Null means "not recorded",
never a default value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

#: Version of the column layout written by this code; stored in the catalog and the Parquet metadata.
SCHEMA_VERSION = 1

#: A validator checks a conformed table (canonical schema, nulls only where allowed) and raises
#: TraceValidationError. ``source`` names the file or dataset; ``locate(i)`` turns a row index of the
#: table into the words that name it in the source ("line 7", "row 12", "line 3, accept_lengths[4]").
Validator = Callable[[pa.Table, str, Callable[[int], str]], None]

ACCEPTANCE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("turn", pa.int16(), nullable=False),
        pa.field("round", pa.int32(), nullable=False),
        pa.field("drafted", pa.int16(), nullable=False),
        pa.field("accepted", pa.int16(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=True),
        pa.field("temperature", pa.float32(), nullable=True),
        pa.field("wall_ms", pa.float32(), nullable=True),
        pa.field("category", pa.string(), nullable=True),
    ]
)

COMPUTE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("dtype", pa.string(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("new_tokens", pa.int32(), nullable=False),
        pa.field("context_tokens", pa.int32(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
    ]
)

AGGREGATE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("drafted", pa.int16(), nullable=False),
        pa.field("accepted", pa.int16(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
    ]
)

#: Totals only (kind ``totals``): one row per unit the source reports (a run, a request, an engine, a log
#: interval): its draft tokens and accepted tokens, and its rounds where the source counts them (null
#: otherwise: llama-server and vLLM's interval log do not). No histogram, so replay cannot sample from it.
TOTALS_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("rounds", pa.int64(), nullable=True),
        pa.field("accepted_tokens", pa.int64(), nullable=False),
        pa.field("draft_tokens", pa.int64(), nullable=True),
    ]
)

#: The phases a compute-latency row may have.
COMPUTE_PHASES = ("prefill", "decode", "verify")


@dataclass(frozen=True)
class KindSpec:
    """A registered trace kind: its Arrow schema, its validator and its schema version.

    Nullable fields may be absent from an input and are filled with nulls; ``dataset`` may be absent and is
    filled with the dataset id. ``detect_columns`` are the columns whose presence identifies the kind in a
    CSV/Parquet file of unknown kind.
    """

    name: str
    schema: pa.Schema
    validator: Validator | None = None
    version: int = SCHEMA_VERSION
    detect_columns: tuple[str, ...] = field(default=())

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if not f.nullable and f.name != "dataset")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)


_KINDS: dict[str, KindSpec] = {}


def register_kind(
    name: str,
    arrow_schema: pa.Schema,
    validator: Validator | None = None,
    *,
    version: int = SCHEMA_VERSION,
    detect_columns: tuple[str, ...] | None = None,
) -> KindSpec:
    """Register (or re-register) a trace kind so that the store can validate, write and read it.

    The schema must have a non-nullable string ``dataset`` column first. ``detect_columns`` defaults to the
    required columns. Returns the spec.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"kind name {name!r} must be alphanumeric (with - or _)")
    if arrow_schema.names[:1] != ["dataset"] or not pa.types.is_string(arrow_schema.field("dataset").type):
        raise ValueError(f"kind {name!r}: the schema must start with a string 'dataset' column")
    spec = KindSpec(name, arrow_schema, validator, version, ())
    object.__setattr__(spec, "detect_columns", tuple(detect_columns) if detect_columns else spec.required)
    _KINDS[name] = spec
    return spec


def get_kind(name: str) -> KindSpec:
    """The spec of a registered kind; InputError naming the known kinds otherwise."""
    from specedge.errors import InputError

    if name not in _KINDS:
        _load_kind_plugin(name)
    try:
        return _KINDS[name]
    except KeyError:
        raise InputError(f"unknown trace kind {name!r}; known kinds: {', '.join(sorted(_KINDS))}") from None


#: Entry-point group of modules that register further kinds when imported (e.g. ``run`` from specedge.serve),
#: so the store can read them without importing anything above it.
KIND_ENTRY_POINTS = "specedge.trace_kinds"


def _load_kind_plugin(name: str) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=KIND_ENTRY_POINTS, name=name):
        ep.load()


def kinds() -> tuple[str, ...]:
    return tuple(sorted(_KINDS))


def detect_kind(columns: list[str] | tuple[str, ...]) -> KindSpec | None:
    """The registered kind whose detect columns are all present (the most specific one), or None."""
    present = set(columns)
    matches = [k for k in _KINDS.values() if set(k.detect_columns) <= present]
    if matches:
        return max(matches, key=lambda k: (len(k.detect_columns), -len(set(k.columns) ^ present)))
    # No kind fully present: the one sharing most of its columns (at least half of them), so that the
    # caller can say which columns are missing rather than "no kind".
    def overlap(k: KindSpec) -> float:
        return len(set(k.columns) & present) / len(k.columns)

    best = max(_KINDS.values(), key=overlap, default=None)
    return best if best is not None and overlap(best) >= 0.5 else None


def _register_builtin() -> None:
    from specedge.traces import validate as v

    register_kind("acceptance", ACCEPTANCE_SCHEMA, v.check_acceptance)
    register_kind("compute", COMPUTE_SCHEMA, v.check_compute)
    register_kind("aggregate", AGGREGATE_SCHEMA, v.check_aggregate)
    register_kind("totals", TOTALS_SCHEMA, v.check_totals, detect_columns=("unit", "accepted_tokens"))


_register_builtin()
