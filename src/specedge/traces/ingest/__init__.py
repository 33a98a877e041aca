"""Ingest traces from the formats people already have.

``parse(fmt, path, ...)`` reads and validates a file into a conformed Arrow table of one trace kind, without
touching any store; ``ingest(store, fmt, path, ...)`` parses and then writes it as a new dataset. Formats
(docs/ingest.md lists every layout, the source file and commit each was read from, and which numbers it
defines):

- ``specbench``: Spec-Bench answer JSONL (per-round rows, kind ``acceptance``);
- ``vllm``: Prometheus ``/metrics`` text (v1 and legacy V0 counters; ``--baseline`` subtracts an earlier
  scrape), the server log's ``SpecDecoding metrics:`` lines, ``vllm bench serve`` output (printed block or
  ``--save-result`` JSON), ``examples/offline_inference/spec_decode.py`` output, or JSON records of v1
  ``SpecDecodingStats`` (kind ``aggregate`` where per-position counts give a histogram, else ``totals``);
- ``sglang``: per-request ``meta_info`` JSONL, every layout since v0.4 (kind ``aggregate`` or ``totals``);
- ``llamacpp``: the summary of ``llama-speculative`` / ``llama-speculative-simple`` (``--variant``), or
  llama-server ``/completion`` responses (``timings.draft_n``) and its log lines (kind ``aggregate`` with a
  fitted, flagged histogram, or ``totals``);
- ``csv`` / ``parquet``: files already in a v1 schema (kind detected from the columns).

Every format also records what its file defines as the tool's own numbers (metadata ``tool_numbers``, see
:mod:`specedge.traces.ingest.numbers`): ``traces show`` reports rounds, τ and m from those, null where the
file does not define them. Every problem raises one TraceValidationError naming the file and the
line/row/field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from specedge.errors import InputError, TraceValidationError
from specedge.traces.schema import get_kind
from specedge.traces.validate import Locate, conform, row_locator

FORMATS = ("specbench", "vllm", "sglang", "llamacpp", "csv", "parquet")
#: --variant values each format accepts (a format not listed takes none).
VARIANTS = {"llamacpp": ("speculative", "speculative-simple")}


@dataclass(frozen=True)
class Parsed:
    """A file read into a conformed table of one kind, plus what the format says about provenance."""

    table: pa.Table
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.table.num_rows


@dataclass(frozen=True)
class Raw:
    """What a format parser returns: an unconformed table, its kind, format metadata and a row locator."""

    table: pa.Table
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)
    locate: Locate = field(default_factory=row_locator)


# ------------------------------------------------------------------------------------------ file helpers
def read_bytes(path: Path) -> bytes:
    """The file's bytes; clean errors for a missing, unreadable or empty file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data.strip():
        raise TraceValidationError(f"{path}: empty file; expected at least one record")
    return data


def read_text(path: Path, what: str) -> str:
    data = read_bytes(path)
    if data[:4] == b"PAR1":
        raise TraceValidationError(f"{path}: this is a Parquet file, not {what} (use --format parquet)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TraceValidationError(f"{path}: line {line}: not UTF-8 text (byte {exc.start}); expected {what}") from None


def iter_json_records(path: Path, what: str) -> Iterator[tuple[str, Any]]:
    """Yield (where, record) from a JSON-lines file, or from a JSON document holding one object or a list.

    ``where`` is "line N" for JSON lines (and a single document) and "item N" for the elements of a list.
    """
    text = read_text(path, what)
    first = text.lstrip()[:1]
    if first not in ("{", "["):
        raise TraceValidationError(f"{path}: line 1: not JSON; expected {what}")

    def whole_document() -> Iterator[tuple[str, Any]]:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceValidationError(
                f"{path}: line {exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno}); expected {what}"
            ) from None
        if isinstance(doc, list):
            if not doc:
                raise TraceValidationError(f"{path}: empty JSON list; expected {what}")
            return ((f"item {i}", item) for i, item in enumerate(doc))
        return iter([("line 1", doc)])

    if first == "[":
        yield from whole_document()
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if n == 1:  # perhaps one pretty-printed object rather than JSON lines
                yield from whole_document()
                return
            raise TraceValidationError(
                f"{path}: line {n}: invalid JSON ({exc.msg}, column {exc.colno}); expected {what}, "
                "one JSON object per line"
            ) from None
        yield f"line {n}", record


def require(record: Any, key: str, path: Path, where: str, what: str) -> Any:
    if not isinstance(record, dict):
        raise TraceValidationError(f"{path}: {where}: expected a JSON object ({what}), found {type(record).__name__}")
    if key not in record:
        raise TraceValidationError(f"{path}: {where}: missing field '{key}'; expected {what}")
    return record[key]


#: Largest count accepted from a file (2**53: every count a tool writes fits, and float64 stays exact).
MAX_COUNT = 2**53


def int_value(value: Any, path: Path, where: str, name: str, minimum: int = 0) -> int:
    """A JSON integer >= minimum (floats with an integral value are accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TraceValidationError(f"{path}: {where}, field '{name}': {value!r} is not an integer")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf")) or value != int(value)):
        raise TraceValidationError(f"{path}: {where}, field '{name}': {value!r} is not a whole number")
    if abs(int(value)) > MAX_COUNT:
        raise TraceValidationError(f"{path}: {where}, field '{name}': {value!r} is too large (over {MAX_COUNT:.3g})")
    if int(value) < minimum:
        raise TraceValidationError(f"{path}: {where}, field '{name}': {int(value)} is negative; expected >= {minimum}"
                                   if minimum == 0 else
                                   f"{path}: {where}, field '{name}': {int(value)}; expected >= {minimum}")
    return int(value)


def int_list(value: Any, path: Path, where: str, name: str, minimum: int = 0) -> list[int]:
    if not isinstance(value, list):
        raise TraceValidationError(f"{path}: {where}, field '{name}': expected a list of integers, "
                                   f"found {type(value).__name__}")
    return [int_value(v, path, where, f"{name}[{i}]", minimum) for i, v in enumerate(value)]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def parse_meta_items(items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``key=value`` strings to a dict; values that parse as JSON numbers/booleans/null become those."""
    meta: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--meta {item!r}: expected key=value")
        try:
            parsed = json.loads(value)
            meta[key] = parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value
        except json.JSONDecodeError:
            meta[key] = value
    return meta


def temperature_from_meta(meta: Mapping[str, Any], path: Path) -> float | None:
    if "temperature" not in meta:
        return None
    try:
        t = float(meta["temperature"])
    except (TypeError, ValueError):
        raise InputError(f"{path}: --meta temperature={meta['temperature']!r} is not a number") from None
    if not (t >= 0.0 and t != float("inf")):
        raise InputError(f"{path}: --meta temperature={t}; expected a finite value >= 0")
    return t


# ------------------------------------------------------------------------------------------ entry points
def _parser(fmt: str) -> Callable[..., Raw]:
    from specedge.traces.ingest import llamacpp, sglang, specbench, tabular, vllm

    return {
        "specbench": specbench.parse,
        "vllm": vllm.parse,
        "sglang": sglang.parse,
        "llamacpp": llamacpp.parse,
        "csv": tabular.parse_csv,
        "parquet": tabular.parse_parquet,
    }[fmt]


def parse(
    fmt: str,
    path: str | Path,
    *,
    dataset_id: str = "unnamed",
    drafted: int | None = None,
    meta: Mapping[str, Any] | None = None,
    baseline: str | Path | None = None,
    variant: str | None = None,
) -> Parsed:
    """Read ``path`` as format ``fmt`` and validate it completely; nothing is written anywhere.

    ``baseline`` (vllm only) is an earlier Prometheus scrape of the same server, subtracted from ``path``;
    ``variant`` names the program that wrote the file where the format cannot tell (see :data:`VARIANTS`).
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown ingest format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    if drafted is not None and drafted < 1:
        raise InputError(f"--drafted {drafted}: expected a draft length >= 1")
    if baseline is not None and fmt != "vllm":
        raise InputError(f"--baseline applies to vllm Prometheus scrapes only, not to {fmt}")
    if variant is not None and variant not in VARIANTS.get(fmt, ()):
        allowed = VARIANTS.get(fmt)
        raise InputError(f"--variant {variant!r}: " + (f"expected one of {', '.join(allowed)} for {fmt}"
                                                       if allowed else f"the {fmt} format has no variants"))
    meta = dict(meta or {})
    options: dict[str, Any] = {}
    if baseline is not None:
        options["baseline"] = Path(baseline)
    if variant is not None:
        options["variant"] = variant
    raw = _parser(fmt)(path, drafted=drafted, meta=meta, dataset_id=dataset_id, **options)
    table = conform(raw.table, get_kind(raw.kind), dataset_id=dataset_id, source=str(path), locate=raw.locate)
    return Parsed(table, raw.kind, dict(raw.metadata))


def ingest(
    store,
    fmt: str,
    path: str | Path,
    dataset_id: str,
    *,
    drafted: int | None = None,
    meta: Mapping[str, Any] | None = None,
    replace: bool = False,
    baseline: str | Path | None = None,
    variant: str | None = None,
):
    """Parse ``path`` and write it to ``store`` as ``dataset_id``; returns the new DatasetInfo.

    Metadata = the format's own findings (drafted, drafted_inferred, model ids, reported totals, ...) +
    the user's ``meta`` + ``source = ingested:<fmt>``, the input file name and its SHA-256. User keys may not
    override what the format found.
    """
    from specedge.traces.store import check_dataset_id

    check_dataset_id(dataset_id)
    path = Path(path)
    user = dict(meta or {})
    if "source" in user:
        raise InputError(f"--meta source=...: the source of an ingested dataset is always 'ingested:{fmt}'")
    if not replace and dataset_id in store:
        raise store._exists(dataset_id)
    parsed = parse(fmt, path, dataset_id=dataset_id, drafted=drafted, meta=user, baseline=baseline,
                   variant=variant)
    clash = sorted(set(user) & set(parsed.metadata))
    if clash:
        raise InputError(f"--meta {', '.join(clash)}: set by the {fmt} file itself ({parsed.metadata[clash[0]]!r})")
    metadata = {
        "source": f"ingested:{fmt}",
        "ingested_file": path.name,
        "ingested_sha256": file_sha256(path),
        **({"baseline_file": Path(baseline).name, "baseline_sha256": file_sha256(Path(baseline))}
           if baseline is not None else {}),
        **parsed.metadata,
        **user,
    }
    return store.write_validated(parsed.table, dataset_id, kind=parsed.kind, metadata=metadata, replace=replace)
