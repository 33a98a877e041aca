"""Dataset ids and the provenance rules every dataset's metadata must follow."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from specedge.errors import InputError

#: Allowed ``source`` values besides ``ingested:<format>``.
SOURCES = ("recorded", "derived-from-published")
_INGESTED = re.compile(r"^ingested:[a-z0-9_-]+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_dataset_id(dataset_id: str) -> str:
    if not isinstance(dataset_id, str) or not _ID.match(dataset_id) or ".." in dataset_id:
        raise InputError(
            f"dataset id {dataset_id!r} is not valid; expected 1-128 characters of letters, digits, '.', '_', '+', "
            "'-', starting with a letter or digit"
        )
    return dataset_id


def check_metadata(metadata: Mapping[str, object], where: str) -> dict[str, Any]:
    """Provenance rules: a ``source`` of recorded / ingested:<format> / derived-from-published (the latter with a
    ``citation``); string keys; JSON-serialisable, finite values."""
    if not isinstance(metadata, Mapping):
        raise InputError(f"{where}: metadata must be a mapping, got {type(metadata).__name__}")
    meta = dict(metadata)
    source = meta.get("source")
    if not isinstance(source, str) or not (source in SOURCES or _INGESTED.match(source)):
        raise InputError(
            f"{where}: metadata 'source' is {source!r}; expected 'recorded', 'ingested:<format>' or "
            "'derived-from-published'"
        )
    if source == "derived-from-published" and not str(meta.get("citation") or "").strip():
        raise InputError(f"{where}: metadata 'citation' is required when source is 'derived-from-published'")
    for key, value in meta.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"{where}: metadata key {key!r} must be a non-empty string")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: metadata {key!r} = {value!r} is not JSON-serialisable ({exc})") from None
    return meta
