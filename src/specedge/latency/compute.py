"""Compute-latency predictors: how long one batched forward pass takes on a device.

One interface, :class:`ComputePredictor`: ``latency_s(batch_size, new_tokens, context_tokens)`` with numpy
broadcasting. Three implementations:

- :class:`AffineCompute`, the paper's model T(b, F) = c1 * b * F + c2 [P], with (c1, c2) fitted from a compute
  trace by least squares (:func:`fit_affine`, reporting R^2 and residuals) or derived from a device card
  (c1 = 1 / (efficiency * peak FLOP/s), c2 = layers x per-layer overhead) [A];
- :class:`RooflineCompute`: T = max(b F / (e_c peak), bytes / (e_m bandwidth)) + c2 [A, beyond the paper],
  because small-batch decoding is memory-bound;
- :class:`MeasuredCompute`: linear interpolation over a compute trace's (batch, new tokens, context) grid, one grid
  per phase, refusing to extrapolate unless told to.

Each may carry a per-job host overhead (``job_overhead``, :mod:`specedge.latency.host_overhead`) [A]: time a
node spends on a stage job outside its forward passes. ``latency_s`` stays one pass; the stage-time functions of
:mod:`specedge.latency.rounds` add the overhead once per job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from specedge.errors import ScenarioError
from specedge.latency.cards import DeviceCard, ModelCard
from specedge.latency.flops import flops_coefficients, forward_flops, pass_bytes
from specedge.latency.host_overhead import JobOverhead


@runtime_checkable
class ComputePredictor(Protocol):
    """Predicts the latency of one forward pass of a batch; every argument broadcasts."""

    model: ModelCard

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray: ...


# ----------------------------------------------------------------------------------------------- affine
@dataclass(frozen=True)
class AffineFit:
    """Result of a least-squares fit of T = c1 * b * F + c2 to compute-trace rows."""

    c1_s_per_flop: float
    c2_s: float
    r2: float
    residuals_s: np.ndarray = field(repr=False)
    num_rows: int

    @property
    def rmse_s(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_s**2)))


@dataclass(frozen=True)
class AffineCompute:
    """The paper's compute model: T(b, F) = c1 * b * F(x, c) + c2 [P].

    ``c1_s_per_flop`` is seconds per FLOP (1 / effective FLOP/s), ``c2_s`` the fixed cost of one pass.
    ``ffn_factor`` is passed to :func:`~specedge.latency.flops.forward_flops`. ``fit`` holds the least-squares
    fit when the constants came from a trace.
    """

    model: ModelCard
    c1_s_per_flop: float
    c2_s: float
    ffn_factor: float = 1.0
    fit: AffineFit | None = field(default=None, compare=False, repr=False)
    #: per-job host overhead this node pays besides its passes (:mod:`specedge.latency.host_overhead`) [A]
    job_overhead: JobOverhead | None = None

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        flops = forward_flops(self.model, new_tokens, context_tokens, ffn_factor=self.ffn_factor)
        return self.c1_s_per_flop * np.asarray(batch_size, dtype=np.float64) * flops + self.c2_s

    def coefficients(self, batch_size, new_tokens) -> tuple[np.ndarray, np.ndarray]:
        """(p, q) with latency_s(b, x, c) = p + q * c: used for closed-form sums over rounds."""
        a, b = flops_coefficients(self.model, new_tokens, ffn_factor=self.ffn_factor)
        bs = np.asarray(batch_size, dtype=np.float64)
        return self.c1_s_per_flop * bs * a + self.c2_s, self.c1_s_per_flop * bs * b

    @classmethod
    def from_device(
        cls,
        model: ModelCard,
        device: DeviceCard,
        *,
        compute_efficiency: float,
        layer_overhead_s: float,
        ffn_factor: float = 1.0,
        weight_read_efficiency: float | None = None,
    ) -> AffineCompute:
        """c1 = 1 / (compute_efficiency * peak FLOP/s); c2 = J * layer_overhead_s [A].

        With ``weight_read_efficiency`` e_m, c2 also pays one read of the weights per pass,
        weight_bytes / (e_m * memory bandwidth) [A]: the affine model's stand-in for the memory-bound regime
        of small-batch decoding (a pass cannot be faster than streaming the weights once).
        """
        if not 0 < compute_efficiency <= 1:
            raise ScenarioError(f"compute efficiency must be in (0, 1], got {compute_efficiency}")
        if layer_overhead_s < 0:
            raise ScenarioError(f"layer overhead must be >= 0 s, got {layer_overhead_s}")
        c2 = model.num_layers * layer_overhead_s
        if weight_read_efficiency is not None:
            if not 0 < weight_read_efficiency <= 1:
                raise ScenarioError(f"memory efficiency must be in (0, 1], got {weight_read_efficiency}")
            c2 += model.weight_bytes / (weight_read_efficiency * device.memory_bandwidth_bytes_per_s)
        return cls(
            model=model,
            c1_s_per_flop=1.0 / (compute_efficiency * device.peak_flops),
            c2_s=c2,
            ffn_factor=ffn_factor,
        )

    @classmethod
    def from_trace(cls, model: ModelCard, frame: pd.DataFrame, *, ffn_factor: float = 1.0, source: str = "trace"):
        """Fit (c1, c2) to a compute-trace frame (see :func:`fit_affine`)."""
        result = fit_affine(model, frame, ffn_factor=ffn_factor, source=source)
        return cls(model=model, c1_s_per_flop=result.c1_s_per_flop, c2_s=result.c2_s, ffn_factor=ffn_factor,
                   fit=result)


_TRACE_COLUMNS = ("batch_size", "new_tokens", "context_tokens", "latency_ms")


def _check_trace(frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in _TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise ScenarioError(f"{source}: compute trace misses column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise ScenarioError(f"{source}: compute trace has no rows")


def fit_affine(model: ModelCard, frame: pd.DataFrame, *, ffn_factor: float = 1.0, source: str = "trace") -> AffineFit:
    """Least-squares fit of latency = c1 * b * F(x, c) + c2 (c1, c2 >= 0) over every row (repeats kept).

    Uses :func:`scipy.optimize.lsq_linear`; returns the constants, R^2 and the residuals (seconds).
    """
    from scipy.optimize import lsq_linear

    _check_trace(frame, source)
    b = frame["batch_size"].to_numpy(np.float64)
    flops = forward_flops(model, frame["new_tokens"].to_numpy(), frame["context_tokens"].to_numpy(),
                          ffn_factor=ffn_factor)
    y = frame["latency_ms"].to_numpy(np.float64) / 1e3
    work = b * flops
    scale = work.max() or 1.0  # conditioning: solve for c1 * scale
    design = np.column_stack([work / scale, np.ones_like(work)])
    sol = lsq_linear(design, y, bounds=(0.0, np.inf), method="bvls")
    c1 = float(sol.x[0] / scale)
    c2 = float(sol.x[1])
    residuals = y - (c1 * work + c2)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residuals**2)) / ss_tot if ss_tot > 0 else float("nan")
    return AffineFit(c1_s_per_flop=c1, c2_s=c2, r2=r2, residuals_s=residuals, num_rows=len(y))


# --------------------------------------------------------------------------------------------- roofline
@dataclass(frozen=True)
class RooflineCompute:
    """Roofline model [A]: T = max(b F / (e_c peak), bytes / (e_m bandwidth)) + c2.

    ``bytes`` is :func:`~specedge.latency.flops.pass_bytes`: the weights once plus the batch's KV cache.
    """

    model: ModelCard
    device: DeviceCard
    compute_efficiency: float
    memory_efficiency: float
    overhead_s: float
    ffn_factor: float = 1.0
    kv_bytes_per_value: float = 2.0
    kv_use_gqa: bool = False
    #: per-job host overhead this node pays besides its passes (:mod:`specedge.latency.host_overhead`) [A]
    job_overhead: JobOverhead | None = None

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        b = np.asarray(batch_size, dtype=np.float64)
        flops = b * forward_flops(self.model, new_tokens, context_tokens, ffn_factor=self.ffn_factor)
        moved = pass_bytes(self.model, b, new_tokens, context_tokens, bytes_per_value=self.kv_bytes_per_value,
                           use_gqa=self.kv_use_gqa)
        t_compute = flops / (self.compute_efficiency * self.device.peak_flops)
        t_memory = moved / (self.memory_efficiency * self.device.memory_bandwidth_bytes_per_s)
        return np.maximum(t_compute, t_memory) + self.overhead_s


@dataclass(frozen=True)
class RooflineFit:
    """Result of a least-squares fit of the roofline model to compute-trace rows.

    ``compute`` is the fitted predictor; its efficiencies are relative to the device card's peak FLOP/s and
    memory bandwidth, so a fit says how far the measured passes are from the card's roofline.
    """

    compute: RooflineCompute
    r2: float
    residuals_s: np.ndarray = field(repr=False)
    num_rows: int

    @property
    def rmse_s(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_s**2)))

    def memory_bound(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        """True where the fitted memory term exceeds the compute term."""
        rc = self.compute
        b = np.asarray(batch_size, dtype=np.float64)
        flops = b * forward_flops(rc.model, new_tokens, context_tokens, ffn_factor=rc.ffn_factor)
        moved = pass_bytes(rc.model, b, new_tokens, context_tokens, bytes_per_value=rc.kv_bytes_per_value,
                           use_gqa=rc.kv_use_gqa)
        return (moved / (rc.memory_efficiency * rc.device.memory_bandwidth_bytes_per_s)
                > flops / (rc.compute_efficiency * rc.device.peak_flops))


def fit_roofline(
    model: ModelCard,
    device: DeviceCard,
    frame: pd.DataFrame,
    *,
    ffn_factor: float = 1.0,
    kv_bytes_per_value: float = 2.0,
    kv_use_gqa: bool = False,
    source: str = "trace",
) -> RooflineFit:
    """Least-squares fit of T = max(b F / (e_c peak), bytes / (e_m bandwidth)) + c2 over every row.

    Fits (e_c, e_m, c2) in log space (all three stay positive) with :func:`scipy.optimize.least_squares`
    on relative residuals, so that short and long passes weigh alike. Efficiencies above 1 are possible: they
    mean the card's peak understates what the measured device reached.
    """
    from scipy.optimize import least_squares

    _check_trace(frame, source)
    b = frame["batch_size"].to_numpy(np.float64)
    x = frame["new_tokens"].to_numpy(np.float64)
    c = frame["context_tokens"].to_numpy(np.float64)
    y = frame["latency_ms"].to_numpy(np.float64) / 1e3
    t_compute = b * forward_flops(model, x, c, ffn_factor=ffn_factor) / device.peak_flops
    t_memory = (pass_bytes(model, b, x, c, bytes_per_value=kv_bytes_per_value, use_gqa=kv_use_gqa)
                / device.memory_bandwidth_bytes_per_s)

    def predict(p):
        inv_ec, inv_em, c2 = np.exp(p)
        return np.maximum(t_compute * inv_ec, t_memory * inv_em) + c2

    start = np.log([max(1.0, float(np.median(y / np.maximum(t_compute, 1e-30))) / 4), 2.0,
                    max(float(y.min()) / 2, 1e-7)])
    sol = least_squares(lambda p: (predict(p) - y) / y, start, method="trf")
    inv_ec, inv_em, c2 = np.exp(sol.x)
    residuals = y - predict(sol.x)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residuals**2)) / ss_tot if ss_tot > 0 else float("nan")
    fitted = RooflineCompute(model=model, device=device, compute_efficiency=float(1 / inv_ec),
                             memory_efficiency=float(1 / inv_em), overhead_s=float(c2), ffn_factor=ffn_factor,
                             kv_bytes_per_value=kv_bytes_per_value, kv_use_gqa=kv_use_gqa)
    return RooflineFit(compute=fitted, r2=r2, residuals_s=residuals, num_rows=len(y))


# --------------------------------------------------------------------------------------------- measured
class ComputeExtrapolationError(ScenarioError):
    """A measured-compute query outside the measured grid (and extrapolation was not allowed)."""


_AXES = ("batch_size", "new_tokens", "context_tokens")


@dataclass(frozen=True)
class _PhaseGrid:
    phase: str
    axes: tuple[str, ...]  # the varying axes, in _AXES order
    points: tuple[np.ndarray, ...]
    values_s: np.ndarray
    fixed: dict  # axis -> the single measured value

    def evaluate(self, query: dict[str, np.ndarray], allow_extrapolation: bool, source: str) -> np.ndarray:
        from scipy.interpolate import RegularGridInterpolator

        shape = np.broadcast_shapes(*(q.shape for q in query.values()))
        if not allow_extrapolation:
            for axis, value in self.fixed.items():
                bad = query[axis] != value
                if np.any(bad):
                    raise ComputeExtrapolationError(
                        f"{source}: phase {self.phase!r} was measured only at {axis}={value}; a query asks for "
                        f"{axis}={np.broadcast_to(query[axis], shape)[np.broadcast_to(bad, shape)][0]:g} "
                        "(pass allow_extrapolation=True to extrapolate)"
                    )
            for axis, pts in zip(self.axes, self.points):
                q = query[axis]
                if np.any(q < pts[0]) or np.any(q > pts[-1]):
                    worst = q[(q < pts[0]) | (q > pts[-1])].flat[0]
                    raise ComputeExtrapolationError(
                        f"{source}: phase {self.phase!r}: {axis}={worst:g} is outside the measured range "
                        f"{pts[0]:g}..{pts[-1]:g} (pass allow_extrapolation=True to extrapolate)"
                    )
        if not self.axes:
            return np.full(shape, float(self.values_s))
        interp = RegularGridInterpolator(self.points, self.values_s, bounds_error=False, fill_value=None)
        coords = np.stack([np.broadcast_to(query[a], shape).astype(np.float64) for a in self.axes], axis=-1)
        return interp(coords.reshape(-1, len(self.axes))).reshape(shape)


@dataclass(frozen=True)
class MeasuredCompute:
    """Linear interpolation over a compute trace's measured grid, one grid per phase.

    Repeated samples of a configuration are summarised by their median. A query is routed to a phase by its shape
    [A]: ``new_tokens == 1`` -> decode; ``context_tokens == 0`` -> prefill; otherwise verify. If the trace holds a
    single phase, every query uses it. Each phase's grid must be complete (every combination of its measured axis
    values present); queries outside it raise :class:`ComputeExtrapolationError` unless
    ``allow_extrapolation``.
    """

    model: ModelCard
    grids: dict = field(repr=False)
    allow_extrapolation: bool = False
    source: str = "trace"
    #: per-job host overhead this node pays besides its passes (:mod:`specedge.latency.host_overhead`) [A]
    job_overhead: JobOverhead | None = None

    @classmethod
    def from_trace(cls, model: ModelCard, frame: pd.DataFrame, *, allow_extrapolation: bool = False,
                   source: str = "trace") -> MeasuredCompute:
        _check_trace(frame, source)
        phases = frame["phase"].astype(str) if "phase" in frame.columns else pd.Series("any", index=frame.index)
        grids = {}
        for phase, part in frame.groupby(phases.to_numpy(), sort=True):
            med = part.groupby(list(_AXES))["latency_ms"].median()
            levels = {a: np.unique(med.index.get_level_values(a).to_numpy(np.float64)) for a in _AXES}
            axes = tuple(a for a in _AXES if levels[a].size > 1)
            fixed = {a: float(levels[a][0]) for a in _AXES if levels[a].size == 1}
            shape = tuple(levels[a].size for a in axes)
            full = pd.MultiIndex.from_product([levels[a] for a in _AXES], names=list(_AXES))
            med.index = pd.MultiIndex.from_arrays(
                [med.index.get_level_values(a).astype(np.float64) for a in _AXES], names=list(_AXES))
            grid = med.reindex(full)
            if grid.isna().any():
                gap = grid[grid.isna()].index[0]
                raise ScenarioError(
                    f"{source}: phase {phase!r} grid is incomplete: no sample at "
                    + ", ".join(f"{a}={v:g}" for a, v in zip(_AXES, gap))
                )
            values = grid.to_numpy(np.float64).reshape(shape) / 1e3
            grids[str(phase)] = _PhaseGrid(str(phase), axes, tuple(levels[a] for a in axes), values, fixed)
        return cls(model=model, grids=grids, allow_extrapolation=allow_extrapolation, source=source)

    def _phase_of(self, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.where(x == 1, "decode", np.where(c == 0, "prefill", "verify"))

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        b, x, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (batch_size, new_tokens,
                                                                                   context_tokens)))
        if len(self.grids) == 1:
            (grid,) = self.grids.values()
            return grid.evaluate({"batch_size": b, "new_tokens": x, "context_tokens": c},
                                 self.allow_extrapolation, self.source)
        phase = self._phase_of(x, c)
        out = np.empty(b.shape, dtype=np.float64)
        for name in np.unique(phase):
            if name not in self.grids:
                raise ComputeExtrapolationError(
                    f"{self.source}: a query needs phase {str(name)!r} but the trace measured only "
                    f"{', '.join(sorted(self.grids))}"
                )
            sel = phase == name
            out[sel] = self.grids[name].evaluate(
                {"batch_size": b[sel], "new_tokens": x[sel], "context_tokens": c[sel]},
                self.allow_extrapolation, self.source)
        return out
