"""The training corpus of the stdlib pair: the CPython standard-library source that ships with the interpreter.

Files: every ``*.py`` under ``sysconfig.get_paths()["stdlib"]`` (site-packages excluded), sorted by relative
path. Split: a file is held out when the first byte of sha256(relative path) is below ``HELD_OUT_FRACTION`` *
256, so the split does not depend on file order, sizes or the random seed, and a file is wholly on one side.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specedge.errors import InputError

HELD_OUT_FRACTION = 0.1
"""Share of files (by hash of the relative path, not by bytes) held out from training."""

FILE_SEPARATOR = b"\n\n"


def stdlib_root() -> Path:
    """Directory of the running interpreter's standard library (a venv's base interpreter's)."""
    return Path(sysconfig.get_paths()["stdlib"])


def is_held_out(rel_path: str, fraction: float = HELD_OUT_FRACTION) -> bool:
    """Hash split on the POSIX relative path: held out iff sha256's first byte < fraction * 256."""
    return hashlib.sha256(rel_path.encode()).digest()[0] < int(round(fraction * 256))


@dataclass(frozen=True)
class Corpus:
    """Concatenated bytes of the training and held-out files, plus what identifies them."""

    root: Path
    train_files: tuple[str, ...]
    held_out_files: tuple[str, ...]
    train_bytes: np.ndarray  # uint8
    held_out_bytes: np.ndarray  # uint8
    sha256: str  # of (relative path, content) over all files, in order

    def describe(self) -> dict:
        return {
            "corpus_root": str(self.root),
            "corpus_sha256": self.sha256,
            "train_files": len(self.train_files),
            "held_out_files": len(self.held_out_files),
            "train_bytes": int(self.train_bytes.size),
            "held_out_bytes": int(self.held_out_bytes.size),
            "held_out_fraction": HELD_OUT_FRACTION,
        }


def list_source_files(root: Path) -> list[str]:
    if not root.is_dir():
        raise InputError(f"stdlib corpus: {root} is not a directory")
    rels = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py") if p.is_file())
    rels = [r for r in rels if "site-packages" not in r.split("/")]
    if not rels:
        raise InputError(f"stdlib corpus: no *.py files under {root}")
    return rels


def load_corpus(root: Path | None = None) -> Corpus:
    """Read and split the corpus (about 30 MB for CPython 3.11; a few seconds)."""
    root = stdlib_root() if root is None else Path(root)
    digest = hashlib.sha256()
    train: list[bytes] = []
    held: list[bytes] = []
    train_names: list[str] = []
    held_names: list[str] = []
    for rel in list_source_files(root):
        data = (root / rel).read_bytes()
        digest.update(rel.encode() + b"\0" + data + b"\0")
        if is_held_out(rel):
            held.append(data)
            held_names.append(rel)
        else:
            train.append(data)
            train_names.append(rel)
    return Corpus(
        root=root,
        train_files=tuple(train_names),
        held_out_files=tuple(held_names),
        train_bytes=np.frombuffer(FILE_SEPARATOR.join(train), dtype=np.uint8),
        held_out_bytes=np.frombuffer(FILE_SEPARATOR.join(held), dtype=np.uint8),
        sha256=digest.hexdigest(),
    )
