"""Paths as provenance records them: portable, never an absolute path of the machine that recorded them.

A path inside the repository is written relative to its root (``models/checkpoints/...``); a path inside an
installed distribution (site-packages) as ``<distribution>==<version>:<path inside the package>``; anything
else by its file name alone, with ``(outside the repository)`` appended — the file's hash, recorded beside it,
identifies it, and the folder it lay in on one machine would tell another machine nothing.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

#: The repository root (the folder holding ``src/specedge``), when specedge runs from a checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]


def _distribution_of(path: Path) -> str | None:
    """``name==version:relative`` when ``path`` lies in an installed distribution's site-packages folder."""
    parts = path.parts
    if "site-packages" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("site-packages")
    inside = Path(*parts[i + 1:]) if len(parts) > i + 1 else Path()
    top = inside.parts[0] if inside.parts else ""
    for name, packages in metadata.packages_distributions().items():
        if name == top:
            dist = packages[0]
            try:
                return f"{dist}=={metadata.version(dist)}:{inside.as_posix()}"
            except metadata.PackageNotFoundError:  # pragma: no cover - a broken install
                break
    return f"site-packages:{inside.as_posix()}"


def portable_path(path: str | os.PathLike[str] | None) -> str | None:
    """``path`` as provenance may record it (module docstring); None stays None."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = p.resolve()
    if p.is_relative_to(REPO_ROOT) and "site-packages" not in p.relative_to(REPO_ROOT).parts:
        return p.relative_to(REPO_ROOT).as_posix()
    dist = _distribution_of(p)
    if dist is not None:
        return dist
    return f"{p.name} (outside the repository)"
