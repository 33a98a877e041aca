"""Measure per-pass forward latency of a causal LM on this machine: the ``compute`` trace kind.

A *pass* is one call of the model's forward on a batch of b sequences, each with x new tokens placed after c
tokens already in its KV cache, returning logits for all x positions and appending x positions to the cache.
Only that call is timed (``time.perf_counter_ns`` around it, under ``torch.inference_mode``); building the cache,
cropping it back and drawing token ids are not. The three phases (docs/recording.md):

- ``prefill``: c = 0, x = the prompt length, taken from the context grid (rows: new_tokens = x,
  context_tokens = 0);
- ``decode``: x = 1 on top of c cached tokens (one autoregressive draft step);
- ``verify``: x ∈ the new-token grid on top of c cached tokens (the target scoring x = l + 1 tokens: the last
  committed token and l drafts).

The grid is swept ``warmup`` times untimed, then ``repeats`` times timed; each sweep visits every
configuration once, in a random order of cache groups (round-robin, so that contention from other processes is
spread over configurations rather than concentrated on one). Every timed pass is one row. Token ids are uniform random (a pass's latency does not depend on them). torch's intra-op thread
count is pinned to ``threads`` and recorded.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from specedge.errors import InputError
from specedge.record.lm import CausalLM
from specedge.record.recorder import environment

PHASES = ("prefill", "decode", "verify")


@dataclass(frozen=True)
class ComputeGrid:
    """The configurations measured: batch sizes × new tokens (verify) × context lengths (all phases)."""

    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    new_tokens: tuple[int, ...] = (1, 2, 4, 8, 12, 16)
    context_tokens: tuple[int, ...] = (64, 256, 1024)
    phases: tuple[str, ...] = PHASES
    repeats: int = 10
    warmup: int = 2

    def __post_init__(self) -> None:
        bad = [p for p in self.phases if p not in PHASES]
        if bad:
            raise InputError(f"compute grid: unknown phase(s) {bad}; expected some of {PHASES}")
        for name in ("batch_sizes", "new_tokens", "context_tokens"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise InputError(f"compute grid: {name} must be positive integers, got {values}")
        if self.repeats < 1 or self.warmup < 0:
            raise InputError(f"compute grid: repeats >= 1 and warmup >= 0, got {self.repeats}, {self.warmup}")

    def groups(self) -> list[tuple[tuple[int, int], list[tuple[str, int, int, int]]]]:
        """Points sharing a cache: key (b, c) for decode/verify on c cached tokens, (b, 0) for b's prefills."""
        out: dict[tuple[int, int], list] = {}
        for point in self.points():
            phase, b, _, c = point
            out.setdefault((b, 0 if phase == "prefill" else c), []).append(point)
        return list(out.items())

    def points(self) -> list[tuple[str, int, int, int]]:
        """(phase, batch_size, new_tokens, context_tokens), grouped by (b, c) so one cache serves a group."""
        out = []
        for b in self.batch_sizes:
            if "prefill" in self.phases:
                out += [("prefill", b, c, 0) for c in self.context_tokens]
            for c in self.context_tokens:
                if "decode" in self.phases:
                    out.append(("decode", b, 1, c))
                if "verify" in self.phases:
                    out += [("verify", b, x, c) for x in self.new_tokens]
        return out


def compute_frame(rows, *, dataset_id: str, model: str, device: str, dtype: str) -> pd.DataFrame:
    """Timed passes ``rows`` of (phase, batch_size, new_tokens, context_tokens, latency_ms) as a frame in the
    compute schema, sorted by phase, b, x, c (every measurer of the ``compute`` kind writes its rows through it)."""
    rows = sorted(rows, key=lambda r: (PHASES.index(r[0]), r[1], r[2], r[3]))
    if not rows:
        raise InputError(f"compute trace {dataset_id!r}: no timed passes")
    phase_col, b_col, x_col, c_col, lat_col = zip(*rows)
    n = len(rows)
    return pd.DataFrame(
        {
            "dataset": pd.Series([dataset_id] * n, dtype="string"),
            "model": pd.Series([model] * n, dtype="string"),
            "device": pd.Series([device] * n, dtype="string"),
            "dtype": pd.Series([dtype] * n, dtype="string"),
            "phase": pd.Series(phase_col, dtype="string"),
            "batch_size": np.asarray(b_col, dtype=np.int32),
            "new_tokens": np.asarray(x_col, dtype=np.int32),
            "context_tokens": np.asarray(c_col, dtype=np.int32),
            "latency_ms": np.asarray(lat_col, dtype=np.float64),
        }
    )


def cpu_device_id(threads: int) -> str:
    """A device id for this CPU at a thread count, e.g. ``cpu-amd-epyc-1t``."""
    from specedge.record.recorder import cpu_model

    slug = "".join(ch if ch.isalnum() else "-" for ch in cpu_model().lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"cpu-{slug}-{threads}t"


@torch.inference_mode()
def measure_compute(
    lm: CausalLM,
    grid: ComputeGrid,
    *,
    dataset_id: str,
    device: str | None = None,
    threads: int = 1,
    seed: int = 0,
    note: str = "",
    progress: Callable[[int, int, dict], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Time the grid's passes; returns (frame in the compute schema, provenance metadata)."""
    if threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    device = device or cpu_device_id(threads)
    gen = torch.Generator().manual_seed(seed)
    desc = lm.describe()

    def ids(b: int, n: int) -> torch.Tensor:
        return torch.randint(0, lm.vocab_size, (b, n), generator=gen)

    # Round-robin: every sweep visits every configuration once, groups in a fresh random order, so that a burst
    # of contention (other processes on the CPU) spreads over many configurations instead of biasing one.
    groups = grid.groups()
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, int, int, int, float]] = []
    sweeps = grid.warmup + grid.repeats
    started = time.perf_counter()
    for sweep in range(sweeps):
        for gi in rng.permutation(len(groups)):
            (b, c), points = groups[gi]
            cache = None
            if c > 0:
                cache = lm.new_cache()
                lm.forward(ids(b, c), cache)
            for phase, _, x, _ in points:
                if phase == "prefill":
                    cache = lm.new_cache()
                tokens = ids(b, x)
                t0 = time.perf_counter_ns()
                lm.forward(tokens, cache)
                elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
                if phase != "prefill":
                    lm.crop(cache, c)
                if sweep >= grid.warmup:
                    rows.append((phase, b, x, 0 if phase == "prefill" else c, elapsed_ms))
        if progress is not None:
            progress(sweep + 1, sweeps, {"sweep": "warm-up" if sweep < grid.warmup else "timed"})
    frame = compute_frame(rows, dataset_id=dataset_id, model=lm.name, device=device,
                          dtype=desc.get("dtype", "fp32"))
    env = environment()
    metadata = {
        "source": "recorded",
        "kind": "compute",
        "dataset": dataset_id,
        "model": lm.name,
        "model_parameters": desc.get("parameters"),
        "model_weights_sha256": desc.get("weights_sha256"),
        "model_description": desc,
        "device": device,
        "grid": asdict(grid),
        "timing": "time.perf_counter_ns around one forward call under torch.inference_mode; "
        "cache build/crop and id sampling excluded; warm-up sweeps excluded; round-robin sweeps over the grid "
        "(cache groups in a seeded random order each sweep)",
        **env,
        "torch_threads": threads,
        "cpu_model": env["hardware"]["cpu_model"],
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recording_wall_s": round(time.perf_counter() - started, 3),
        "licence": "",
        "note": note,
    }
    return frame, metadata
