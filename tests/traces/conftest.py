"""Fixtures for the trace-store tests: sample files, a small acceptance frame, a store with one dataset."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
BAD = HERE / "bad_inputs"


def acceptance_frame(requests: int = 5, rounds: int = 7, drafted: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = requests * rounds
    req = np.repeat(np.arange(requests), rounds)
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in req],
            "turn": np.zeros(n, dtype=np.int16),
            "round": np.tile(np.arange(rounds, dtype=np.int32), requests),
            "drafted": np.full(n, drafted, dtype=np.int16),
            "accepted": rng.integers(0, drafted + 1, n).astype(np.int16),
            "prompt_tokens": np.repeat(rng.integers(5, 50, requests), rounds).astype(np.int32),
            "temperature": np.zeros(n, dtype=np.float32),
            "wall_ms": rng.uniform(1, 3, n).astype(np.float32),
        }
    )


def tree_digest(root: Path, include_hidden: bool = True) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root`` (optionally skipping top-level hidden entries:
    the lock file and the staging directory, which are not store content)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not include_hidden and rel.parts[0].startswith("."):
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return out


@pytest.fixture
def frame() -> pd.DataFrame:
    return acceptance_frame()


@pytest.fixture
def store(tmp_path):
    """A store holding one acceptance dataset, 'base'."""
    from specedge.traces.store import open_store

    st = open_store(tmp_path / "store")
    st.write(acceptance_frame(), "base", kind="acceptance",
             metadata={"source": "recorded", "draft_model": "d", "target_model": "t"})
    return st
