"""Paths as provenance records them: portable, never an absolute path of the machine that recorded them.

A path inside the repository is written relative to its root (``models/checkpoints/...``); a path inside an
installed distribution (site-packages) as ``<distribution>==<version>:<path inside the package>``; anything
else by its file name alone, with ``(outside the repository)`` appended — the file's hash, recorded beside it,
identifies it, and the folder it lay in on one machine would tell another machine nothing.

:func:`portable_metadata` applies the same rules to every absolute path inside a provenance record (whole values
and paths inside text); the trace store runs it on every write, and ``specedge traces fix-paths`` on datasets
recorded before that (with ``recorded_versions``: a path from another machine is not looked up on this one).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

#: The repository root (the folder holding ``src/specedge``), when specedge runs from a checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]


def _distribution_of(path: Path, recorded_versions: Mapping[str, str] | None = None) -> str | None:
    """``name==version:relative`` when ``path`` lies in an installed distribution's site-packages folder (the
    version from ``recorded_versions`` when given; ``name:relative`` when they hold none for it)."""
    parts = path.parts
    if "site-packages" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("site-packages")
    inside = Path(*parts[i + 1:]) if len(parts) > i + 1 else Path()
    top = inside.parts[0] if inside.parts else ""
    for name, packages in metadata.packages_distributions().items():
        if name == top:
            dist = packages[0]
            if recorded_versions is not None:
                version = recorded_versions.get(dist)
                return f"{dist}=={version}:{inside.as_posix()}" if version else f"{dist}:{inside.as_posix()}"
            try:
                return f"{dist}=={metadata.version(dist)}:{inside.as_posix()}"
            except metadata.PackageNotFoundError:  # pragma: no cover - a broken install
                break
    return f"site-packages:{inside.as_posix()}"


def portable_path(path: str | os.PathLike[str] | None, *,
                  recorded_versions: Mapping[str, str] | None = None) -> str | None:
    """``path`` as provenance may record it (module docstring); None stays None.

    ``recorded_versions`` (a record's own ``versions``, possibly empty) marks ``path`` as recorded on another
    machine: it is normalised, not resolved here, and a site-packages path names the distribution's version only
    when the record holds it (``name:path`` otherwise), never the version installed on this machine."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = Path(os.path.normpath(p)) if recorded_versions is not None else p.resolve()
    if p.is_relative_to(REPO_ROOT) and "site-packages" not in p.relative_to(REPO_ROOT).parts:
        return p.relative_to(REPO_ROOT).as_posix()
    dist = _distribution_of(p, recorded_versions)
    if dist is not None:
        return dist
    return f"{p.name} (outside the repository)"


#: An absolute POSIX path of at least two components inside a value: not preceded by a word character, '.', '~',
#: ':' or '/' (so ``tokens/s``, ``1/2`` and URLs are not paths), ending at white space or punctuation. The
#: kernel's own interfaces (``/proc/...``, ``/sys/...``, ``/dev/...``) are the same on every machine and stay.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?!(?:proc|sys|dev)/)[^\s/'\"(),;\[\]{}<>]+(?:/[^\s/'\"(),;\[\]{}<>]*)+")


def portable_text(text: str, *, recorded_versions: Mapping[str, str] | None = None) -> str:
    """``text`` with every absolute path in it replaced by :func:`portable_path` of it."""
    return ABSOLUTE_PATH.sub(lambda m: portable_path(m.group(0), recorded_versions=recorded_versions), text)


def portable_metadata(record: object, *, recorded_versions: Mapping[str, str] | None = None,
                      where: str = "") -> tuple[object, list[str]]:
    """``record`` (JSON-like: dicts, lists, strings, numbers) with :func:`portable_text` applied to every string
    (keys included), and the dotted keys whose value changed."""
    changed: list[str] = []

    def walk(obj: object, key: str) -> object:
        if isinstance(obj, str):
            new = portable_text(obj, recorded_versions=recorded_versions)
            if new != obj:
                changed.append(key)
            return new
        if isinstance(obj, Mapping):
            out = {}
            for k, v in obj.items():
                nk = walk(k, f"{key}.<key>".lstrip(".")) if isinstance(k, str) else k
                out[nk] = walk(v, f"{key}.{nk}".lstrip("."))
            return out
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{key}[{i}]") for i, v in enumerate(obj)]
        return obj

    return walk(record, where), changed
