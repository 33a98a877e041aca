"""Workloads: requests that arrive over time (arrival time, input tokens, output tokens, user position).

Arrival processes, for a rate lambda (requests/s) and n requests, times t_1 <= t_2 <= ... from t_0 = 0:

- Poisson [A]: inter-arrival gaps i.i.d. Exponential(lambda), so t_i = sum of i gaps;
- Gamma [A]: gaps i.i.d. Gamma(shape k = 1 / cv^2, scale = 1 / (lambda k)); mean 1 / lambda, coefficient of
  variation ``cv`` (cv = 1 is Poisson, cv > 1 bursty, cv < 1 smoother);
- recorded: the timestamps of a ``workload`` dataset (:mod:`specedge.online.workload_kind`), shifted to start at 0
  and optionally scaled in time (``time_scale``: 0.5 replays the trace twice as fast) [A].

Request sizes and user positions follow the paper preset [P]: I ~ U{I_min..I_max}, O ~ U{O_min..O_max}, users
uniform in the annulus [d_min, R] around the SBS. A recorded trace gives I and O (clipped to ``max_input_tokens``
/ ``max_output_tokens`` when those are set [A]) and positions are drawn as in the preset [A: the traces carry
none]. Everything is drawn from ``numpy.random.default_rng([_SEED_WORKLOAD, seed])``: the same seed gives the
same workload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from specedge.errors import InputError

_SEED_WORKLOAD = 0x0A11  # stream id of the workload generator (scenario.py uses 0x7A5C for static tasks)
ARRIVALS = ("poisson", "gamma", "trace")


@dataclass(frozen=True, eq=False)
class Workload:
    """n requests in arrival order. Arrays of length n; ``category`` may be None."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    distance_m: np.ndarray
    name: str = "workload"
    category: np.ndarray | None = None

    def __post_init__(self):
        n = self.arrival_s.size
        for f in ("input_tokens", "output_tokens", "distance_m"):
            if getattr(self, f).size != n:
                raise InputError(f"workload {self.name!r}: {f} has {getattr(self, f).size} entries, arrivals {n}")
        if n and (np.any(np.diff(self.arrival_s) < 0) or not np.all(np.isfinite(self.arrival_s))):
            raise InputError(f"workload {self.name!r}: arrival_s must be finite and non-decreasing")
        if n and (self.input_tokens.min() < 1 or self.output_tokens.min() < 1):
            raise InputError(f"workload {self.name!r}: input_tokens and output_tokens must be >= 1")

    @property
    def num_requests(self) -> int:
        return int(self.arrival_s.size)

    @property
    def offered_rate_rps(self) -> float:
        """Requests per second over the arrival span (n - 1) / (t_n - t_1); inf when all arrive together."""
        span = float(self.arrival_s[-1] - self.arrival_s[0]) if self.num_requests > 1 else 0.0
        return (self.num_requests - 1) / span if span > 0 else float("inf")

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame({"arrival_s": self.arrival_s, "input_tokens": self.input_tokens,
                            "output_tokens": self.output_tokens, "distance_m": self.distance_m})
        if self.category is not None:
            out["category"] = self.category
        return out


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([_SEED_WORKLOAD, int(seed)])


def _sizes_and_positions(params, n: int, rng: np.random.Generator):
    inputs = rng.integers(params.input_tokens_min, params.input_tokens_max + 1, n).astype(np.int64)
    outputs = rng.integers(params.output_tokens_min, params.output_tokens_max + 1, n).astype(np.int64)
    return inputs, outputs, _positions(params, n, rng)


def _positions(params, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sqrt(rng.uniform(params.min_distance_m ** 2, params.cell_radius_m ** 2, n))


def gaps_s(kind: str, rate_rps: float, n: int, rng: np.random.Generator, cv: float = 1.0) -> np.ndarray:
    """n inter-arrival gaps of a Poisson or Gamma process (see the module docstring)."""
    if not rate_rps > 0 or not np.isfinite(rate_rps):
        raise InputError(f"arrival rate must be a finite number > 0 requests/s, got {rate_rps!r}")
    if kind == "poisson":
        return rng.exponential(1.0 / rate_rps, n)
    if kind == "gamma":
        if not cv > 0:
            raise InputError(f"gamma arrivals need a coefficient of variation cv > 0, got {cv!r}")
        shape = 1.0 / cv ** 2
        return rng.gamma(shape, 1.0 / (rate_rps * shape), n)
    raise InputError(f"unknown arrival process {kind!r}; known: poisson, gamma")


def synthetic(params, *, arrivals: str = "poisson", rate_rps: float = 1.0, num_requests: int = 100, cv: float = 1.0,
              seed: int = 0) -> Workload:
    """Poisson or Gamma arrivals with the preset's request sizes and user positions; the first arrives at 0."""
    n = int(num_requests)
    if n < 1:
        raise InputError(f"a workload needs at least 1 request, got {n}")
    rng = _rng(seed)
    gaps = gaps_s(arrivals, rate_rps, n, rng, cv)
    arrival = np.concatenate([[0.0], np.cumsum(gaps[1:])])
    inputs, outputs, dist = _sizes_and_positions(params, n, rng)
    label = f"{arrivals}(rate={rate_rps:g}/s" + (f", cv={cv:g})" if arrivals == "gamma" else ")")
    return Workload(arrival, inputs, outputs, dist, name=label)


def all_at_zero(tasks: pd.DataFrame) -> Workload:
    """The static case: every task of a scenario's task table arrives at t = 0 (positions kept)."""
    n = len(tasks)
    return Workload(np.zeros(n), tasks["input_tokens"].to_numpy(np.int64), tasks["output_tokens"].to_numpy(np.int64),
                    tasks["distance_m"].to_numpy(np.float64), name="static (all at t=0)")


def from_frame(frame: pd.DataFrame, params, *, seed: int = 0, time_scale: float = 1.0, name: str = "trace",
               max_input_tokens: int | None = None, max_output_tokens: int | None = None) -> Workload:
    """A recorded workload (a ``workload`` dataset's frame: timestamp_s, input_tokens, output_tokens[, category])."""
    for col in ("timestamp_s", "input_tokens", "output_tokens"):
        if col not in frame.columns:
            raise InputError(f"workload {name!r}: missing column {col!r}")
    if not time_scale > 0:
        raise InputError(f"time_scale must be > 0, got {time_scale!r}")
    ordered = frame.sort_values("timestamp_s", kind="stable")
    t = ordered["timestamp_s"].to_numpy(np.float64)
    inputs = ordered["input_tokens"].to_numpy(np.int64)
    outputs = ordered["output_tokens"].to_numpy(np.int64)
    if max_input_tokens:
        inputs = np.minimum(inputs, int(max_input_tokens))
    if max_output_tokens:
        outputs = np.minimum(outputs, int(max_output_tokens))
    cat = ordered["category"].astype(str).to_numpy() if "category" in ordered.columns else None
    dist = _positions(params, t.size, _rng(seed))
    return Workload((t - t[0]) * float(time_scale), inputs, outputs, dist, name=name, category=cat)
