"""A scenario: tasks + draft node + verify node + model pair + network + acceptance source, from a named preset.

>>> sc = Scenario.from_preset("paper", pair="llama-68m/llama-7b", alpha=0.8, tasks=100, seed=0)
>>> sc.tasks.columns[:5].tolist()
['input_tokens', 'output_tokens', 'distance_m', 'payload_bits', 'spectral_efficiency']

Presets are TOML files in ``specedge/presets/`` (or a path to one): ``pair``, ``alpha`` and a ``[params]`` table
giving every :class:`~specedge.latency.params.ScenarioParams` field; ``base = "<preset>"`` inherits another
preset's values. Overrides (keyword arguments) replace any parameter, e.g. ``bandwidth_hz=25e6``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from specedge.errors import ScenarioError
from specedge.latency import network
from specedge.latency.acceptance import (
    AcceptanceStats,
    AggregateAcceptance,
    ExpectedAcceptance,
    IIDAcceptance,
    TraceAcceptance,
    source_from_frame,
)
from specedge.latency.cards import DeviceCard, ModelCard, load_device_card, parse_pair
from specedge.latency.compute import AffineCompute, MeasuredCompute, RooflineCompute
from specedge.latency.host_overhead import JobOverhead, with_job_overhead
from specedge.latency.params import ScenarioParams, assumptions_table

__all__ = ["Scenario", "ScenarioParams", "available_presets", "load_preset", "assumptions_table"]

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
TASK_COLUMNS = ("input_tokens", "output_tokens", "distance_m", "payload_bits", "spectral_efficiency")
_SEED_TASKS = 0x7A5C  # stream id of the task generator, so other uses of the seed never collide with it


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str | Path, _seen: tuple = ()) -> dict[str, Any]:
    """The preset's merged table (``base`` resolved): keys ``pair``, ``alpha``, ``description``, ``params``,
    ``calibrated``."""
    path = Path(name) if str(name).endswith(".toml") else PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise ScenarioError(f"unknown preset {str(name)!r}; known presets: {', '.join(available_presets())}")
    if path in _seen:
        raise ScenarioError(f"{path}: preset inherits from itself through 'base'")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"base", "description", "pair", "alpha", "params", "calibrated"})
    if unknown:
        raise ScenarioError(f"{path}: unknown key(s) {', '.join(unknown)}")
    merged: dict[str, Any] = {"params": {}}
    if "base" in data:
        merged = load_preset(data["base"], _seen + (path,))
    merged["params"] = {**merged["params"], **data.get("params", {})}
    # [calibrated]: parameter -> the claims its value was solved to match (docs/model.md); a parameter this
    # preset sets itself is no longer the base's calibrated value
    inherited = {k: v for k, v in merged.get("calibrated", {}).items() if k not in data.get("params", {})}
    merged["calibrated"] = {**inherited, **data.get("calibrated", {})}
    for key in ("description", "pair", "alpha"):
        if key in data:
            merged[key] = data[key]
    merged["name"] = path.stem
    return merged


def _open_store(store):
    if store is not None and not isinstance(store, (str, Path)):
        return store
    try:
        from specedge.traces.store import open_store
    except ImportError as exc:  # pragma: no cover - the store ships with specedge
        raise ScenarioError(f"the trace store is not available ({exc})") from None
    return open_store(store) if store is not None else open_store()


def _read_dataset(store, dataset_id: str) -> tuple[pd.DataFrame, str]:
    st = _open_store(store)
    frame = st.read(dataset_id)  # raises DatasetNotFoundError
    kind = getattr(st.info(dataset_id), "kind", None)
    return frame, kind


def _acceptance(spec, alpha: float, store):
    if isinstance(spec, (ExpectedAcceptance, IIDAcceptance, TraceAcceptance, AggregateAcceptance)):
        return spec
    if isinstance(spec, pd.DataFrame):
        return source_from_frame(spec, name="frame")
    if not isinstance(spec, str) or not spec:
        raise ScenarioError(f"acceptance must be 'expected', 'iid', a dataset id or a DataFrame, got {spec!r}")
    if spec == "expected":
        return ExpectedAcceptance(alpha)
    if spec == "iid":
        return IIDAcceptance(alpha)
    frame, kind = _read_dataset(store, spec)
    if kind == "compute":
        raise ScenarioError(f"dataset {spec!r} is a compute trace; acceptance needs an acceptance or aggregate one")
    return source_from_frame(frame, name=spec, kind=kind)


def _compute_frame(store, dataset_id: str, model: ModelCard, device: DeviceCard, role: str) -> pd.DataFrame:
    """The compute-trace rows of this model (and of this device, when the trace names several devices)."""
    if not dataset_id:
        raise ScenarioError(f"compute_model needs {role}_compute_trace, a compute dataset id")
    frame, kind = _read_dataset(store, dataset_id)
    if kind not in (None, "compute"):
        raise ScenarioError(f"dataset {dataset_id!r} is a {kind} trace, not a compute trace")
    if "model" in frame.columns:
        frame = frame[frame["model"] == model.name]
        if frame.empty:
            raise ScenarioError(f"compute dataset {dataset_id!r} has no rows for model {model.name!r}")
    if "device" in frame.columns:
        devices = sorted(set(frame["device"].astype(str)))
        if device.name in devices:
            frame = frame[frame["device"] == device.name]
        elif len(devices) > 1:
            raise ScenarioError(
                f"compute dataset {dataset_id!r} measured {model.name} on {', '.join(devices)}; none is the "
                f"{role} device {device.name!r} (set {'sbs' if role == 'draft' else 'mbs'}_device)")
    return frame


def _predictors(p: ScenarioParams, draft, target, sbs: DeviceCard, mbs: DeviceCard, store):
    out = []
    for model, device, eff, ovh, trace, role in (
        (draft, sbs, p.sbs_compute_efficiency, p.sbs_layer_overhead_s, p.draft_compute_trace, "draft"),
        (target, mbs, p.mbs_compute_efficiency, p.mbs_layer_overhead_s, p.verify_compute_trace, "verify"),
    ):
        if p.compute_model == "affine":
            out.append(AffineCompute.from_device(
                model, device, compute_efficiency=eff, layer_overhead_s=ovh, ffn_factor=p.flops_ffn_factor,
                weight_read_efficiency=p.memory_efficiency if p.affine_weight_read else None))
        elif p.compute_model == "roofline":
            out.append(RooflineCompute(model, device, compute_efficiency=eff, memory_efficiency=p.memory_efficiency,
                                       overhead_s=model.num_layers * ovh, ffn_factor=p.flops_ffn_factor,
                                       kv_bytes_per_value=p.kv_bytes_per_value, kv_use_gqa=p.kv_cache_uses_gqa))
        elif p.compute_model == "fitted":
            frame = _compute_frame(store, trace, model, device, role)
            out.append(AffineCompute.from_trace(model, frame, ffn_factor=p.flops_ffn_factor, source=trace))
        else:
            frame = _compute_frame(store, trace, model, device, role)
            out.append(MeasuredCompute.from_trace(model, frame, allow_extrapolation=p.allow_compute_extrapolation,
                                                  source=trace))
        out[-1] = with_job_overhead(out[-1], JobOverhead.from_params(p, role))  # [A], 0 in the paper's model
    return tuple(out)


def generate_tasks(p: ScenarioParams, seed: int) -> pd.DataFrame:
    """K tasks: I ~ U{I_min..I_max}, O ~ U{O_min..O_max}, users uniform in the annulus [d_min, R] [P/A]."""
    rng = np.random.default_rng([_SEED_TASKS, int(seed)])
    k = p.num_tasks
    inputs = rng.integers(p.input_tokens_min, p.input_tokens_max + 1, k)
    outputs = rng.integers(p.output_tokens_min, p.output_tokens_max + 1, k)
    r2 = rng.uniform(p.min_distance_m**2, p.cell_radius_m**2, k)
    return pd.DataFrame({"input_tokens": inputs.astype(np.int64), "output_tokens": outputs.astype(np.int64),
                         "distance_m": np.sqrt(r2)})


def _complete_tasks(frame: pd.DataFrame, p: ScenarioParams, derived: frozenset) -> pd.DataFrame:
    """Validate a task frame and (re)derive payload_bits / spectral_efficiency where they are not the user's."""
    missing = [c for c in ("input_tokens", "output_tokens") if c not in frame.columns]
    if missing:
        raise ScenarioError(f"tasks: missing column(s) {', '.join(missing)}")
    out = frame.reset_index(drop=True).copy()
    for col in ("input_tokens", "output_tokens"):
        vals = out[col].to_numpy()
        if not np.issubdtype(vals.dtype, np.integer) or (vals < 1).any():
            bad = int(np.flatnonzero(~(vals >= 1))[0]) if (~(vals >= 1)).any() else 0
            raise ScenarioError(f"tasks: row {bad}: {col} must be an integer >= 1, got {vals[bad]!r}")
        out[col] = vals.astype(np.int64)
    if "payload_bits" in derived or "payload_bits" not in out.columns:
        out["payload_bits"] = out["input_tokens"] * p.bits_per_token
    if "spectral_efficiency" in derived or "spectral_efficiency" not in out.columns:
        if "distance_m" not in out.columns:
            raise ScenarioError("tasks: need a distance_m or a spectral_efficiency column")
        out["spectral_efficiency"] = network.spectral_efficiency(out["distance_m"].to_numpy(np.float64), p)
    if "distance_m" not in out.columns:
        out["distance_m"] = np.nan
    rest = [c for c in out.columns if c not in TASK_COLUMNS]
    return out[list(TASK_COLUMNS) + rest]


@dataclass(frozen=True, eq=False)
class Scenario:
    """Tasks, nodes, model pair, network and acceptance source. Build with :meth:`from_preset`.

    ``alpha`` is the i.i.d. alpha for the expected/iid sources; for a recorded source it is the source's fitted
    summary alpha (``acceptance_stats.alpha``), so planning code can use ``sc.alpha`` whatever the source.
    """

    preset: str
    pair: str
    params: ScenarioParams
    tasks: pd.DataFrame = field(repr=False)
    draft: ModelCard
    target: ModelCard
    draft_device: DeviceCard
    verify_device: DeviceCard
    draft_compute: Any = field(repr=False)
    verify_compute: Any = field(repr=False)
    alpha: float
    acceptance: Any = field(repr=False)
    seed: int
    spec: dict = field(repr=False, default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, name: str = "paper", *, pair: str | None = None, alpha: float | None = None,
                    tasks: int | pd.DataFrame | None = None, seed: int = 0, acceptance: Any = "expected",
                    store: Any = None, **overrides) -> Scenario:
        """Build a scenario from preset ``name`` (see the module docstring).

        ``tasks``: a number of tasks (overrides ``num_tasks``) or a DataFrame of tasks (``input_tokens``,
        ``output_tokens`` and ``distance_m`` or ``spectral_efficiency``; ``payload_bits`` derived if absent).
        ``acceptance``: "expected", "iid", a dataset id in the trace store (``store``: a path or an opened
        store, default the store's default location), a DataFrame or a source object.
        """
        preset = load_preset(name)
        values = dict(preset["params"])
        task_frame = None
        if isinstance(tasks, pd.DataFrame):
            task_frame = tasks
            overrides = {**overrides, "num_tasks": len(tasks)}
        elif tasks is not None:
            overrides = {**overrides, "num_tasks": tasks}
        known = {f.name for f in fields(ScenarioParams)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ScenarioError(f"unknown scenario parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values.update(overrides)
        params = ScenarioParams.from_mapping(values, source=f"preset {preset['name']!r}")
        pair = pair or preset.get("pair")
        if not pair:
            raise ScenarioError(f"preset {preset['name']!r} names no model pair; pass pair='draft/target'")
        alpha = float(preset.get("alpha", 0.8) if alpha is None else alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ScenarioError(f"alpha must be in [0, 1], got {alpha}")
        draft, target = parse_pair(pair)
        sbs, mbs = load_device_card(params.sbs_device), load_device_card(params.mbs_device)
        draft_compute, verify_compute = _predictors(params, draft, target, sbs, mbs, store)
        source = _acceptance(acceptance, alpha, store)
        if source.kind in ("trace", "aggregate"):
            alpha = source.stats.alpha
        if task_frame is not None:
            given = frozenset(task_frame.columns)
            derived = frozenset(c for c in ("payload_bits", "spectral_efficiency") if c not in given)
            table = _complete_tasks(task_frame, params, derived)
        else:
            table = _complete_tasks(generate_tasks(params, seed), params, frozenset())
        spec = {"name": name, "pair": pair, "alpha": None if source.kind in ("trace", "aggregate") else alpha,
                "tasks": task_frame, "seed": seed, "acceptance": source, "store": store,
                "overrides": {k: v for k, v in overrides.items() if not (task_frame is not None and k == "num_tasks")}}
        return cls(preset=preset["name"], pair=pair, params=params, tasks=table, draft=draft, target=target,
                   draft_device=sbs, verify_device=mbs, draft_compute=draft_compute, verify_compute=verify_compute,
                   alpha=alpha, acceptance=source, seed=int(seed), spec=spec)

    def with_overrides(self, **kw) -> Scenario:
        """A new scenario with some arguments of :meth:`from_preset` or parameters replaced.

        Tasks are regenerated from the seed (so they are unchanged unless a task parameter or the seed changes);
        a task frame given by the user is kept, its derived columns recomputed.
        """
        spec = dict(self.spec)
        args = {k: kw.pop(k) for k in ("pair", "alpha", "tasks", "seed", "acceptance", "store") if k in kw}
        if "alpha" in args and "acceptance" not in args and spec["alpha"] is not None:
            # a new alpha for an expected/iid source: rebuild the source
            spec["acceptance"] = self.acceptance.kind
        overrides = {**spec["overrides"], **kw}
        if isinstance(args.get("tasks"), (int, np.integer)):
            spec["tasks"] = None
        return Scenario.from_preset(
            spec["name"], pair=args.get("pair", spec["pair"]), alpha=args.get("alpha", spec["alpha"]),
            tasks=args.get("tasks", spec["tasks"]), seed=args.get("seed", spec["seed"]),
            acceptance=args.get("acceptance", spec["acceptance"]), store=args.get("store", spec["store"]),
            **overrides)

    def with_tasks(self, tasks: pd.DataFrame) -> Scenario:
        """The same scenario with another task table (see :meth:`from_preset`)."""
        return self.with_overrides(tasks=tasks)

    # ------------------------------------------------------------------ views
    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def bandwidth_hz(self) -> float:
        """B, the total uplink bandwidth."""
        return self.params.bandwidth_hz

    @property
    def acceptance_stats(self) -> AcceptanceStats:
        return self.acceptance.stats

    def uniform_bandwidth_hz(self) -> np.ndarray:
        return network.uniform_allocation(self.num_tasks, self.bandwidth_hz)

    def optimal_bandwidth_hz(self) -> np.ndarray:
        """The equal-finish allocation [P]."""
        return network.equal_finish_allocation(self.tasks["payload_bits"].to_numpy(),
                                               self.tasks["spectral_efficiency"].to_numpy(), self.bandwidth_hz)

    def assumptions(self) -> pd.DataFrame:
        """Every parameter with its value, unit, [P]/[A] tag and meaning."""
        return assumptions_table(self.params)

    def __repr__(self) -> str:
        return (f"Scenario(preset={self.preset!r}, pair={self.pair!r}, tasks={self.num_tasks}, alpha={self.alpha:.4g}, "
                f"acceptance={self.acceptance.stats.name!r}, seed={self.seed})")

