"""A disk cache for the expensive claim computations (joint calibration, leave-one-out refits).

An entry is a JSON file named by the SHA-256 of (what was computed, its arguments, and a *fingerprint* of every
source file the result depends on: the latency model, the policies, the replay, the experiments, the presets and
the model/device cards). Any edit to those files changes the fingerprint, so a stale entry is never read. The
folder is ``$SPECEDGE_CACHE`` or ``~/.cache/specedge``; ``SPECEDGE_CACHE=off`` disables the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
_REPO_MODELS = _PACKAGE.parents[1] / "models"
#: Sources the claim numbers depend on (relative to the package) [A: the rest of specedge cannot change them].
_SOURCES = ("claims/evaluate.py", "claims/calibrate.py", "claims/sensitivity.py", "claims/audit.py", "latency",
            "policies", "replay", "presets", "experiments.py", "scenario.py", "plan.py", "errors.py")


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """SHA-256 over the contents (and package-relative names) of the files the claims depend on."""
    h = hashlib.sha256()
    files = []
    for name in _SOURCES:
        path = _PACKAGE / name
        files += sorted(path.rglob("*.py")) + sorted(path.rglob("*.toml")) if path.is_dir() else [path]
    if _REPO_MODELS.is_dir():
        files += sorted(_REPO_MODELS.rglob("*.toml"))
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(_PACKAGE.parents[1] if path.is_relative_to(_PACKAGE.parents[1]) else path.parent)
            h.update(str(rel).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def cache_dir() -> Path | None:
    value = os.environ.get("SPECEDGE_CACHE", "")
    if value.lower() == "off":
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "specedge"


def cached(kind: str, args: dict, compute: Callable[[], dict] | None) -> tuple[dict | None, bool]:
    """(result, hit): the cached JSON result of ``compute()`` for (kind, args, fingerprint), computing on a miss.

    ``compute=None`` only looks: (None, False) on a miss.
    """
    folder = cache_dir()
    key = hashlib.sha256(json.dumps([kind, args, fingerprint()], sort_keys=True, default=str).encode()).hexdigest()
    path = folder / "claims" / f"{kind}-{key[:24]}.json" if folder is not None else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text()), True
        except (OSError, json.JSONDecodeError):
            pass  # a damaged entry is recomputed
    if compute is None:
        return None, False
    result = compute()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as fh:
                json.dump(result, fh)
            os.replace(fh.name, path)
        except OSError:
            pass  # an unwritable cache only costs the next run its time
    return result, False
