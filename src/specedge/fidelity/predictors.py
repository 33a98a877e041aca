"""The compute predictors a fidelity check replays with, built from a pair's compute traces.

Three predictors per model, all from the same compute trace (the rows of that model):

- ``affine``: the paper's T = c1 b F + c2, least squares over every row (:meth:`AffineCompute.from_trace`);
- ``roofline``: T = max(a b F, m bytes) + c2 fitted by least squares (:func:`specedge.record.fit_report.fit_roofline`)
  and expressed as a :class:`RooflineCompute` on the device card (e_c = 1 / (a peak), e_m = 1 / (m bandwidth));
- ``measured``: interpolation over the trace's grid (:class:`MeasuredCompute`), extrapolating linearly outside it
  (a run's shapes are reported against the grid by :func:`grid_coverage`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from specedge.errors import DatasetNotFoundError, InputError
from specedge.latency.cards import DeviceCard, ModelCard
from specedge.latency.compute import AffineCompute, MeasuredCompute, RooflineCompute

#: Predictors built from the compute traces alone.
BASE_PREDICTORS = ("affine", "roofline", "measured")
#: Every predictor name ``fidelity`` may report: the base ones, ``measured-contention`` (the measured grid
#: calibrated on the pair's other runs, :mod:`specedge.fidelity.contention`) and ``measured-blend`` (alone and
#: co-run grids weighted by the replayed busy share, :mod:`specedge.fidelity.blend`) and ``measured-job`` (a
#: job-shaped grid with its measured wake-up term, :mod:`specedge.fidelity.job`) and ``measured-probed`` (the
#: measured grid rescaled by each node's speed probe, :mod:`specedge.fidelity.probe`), all added by ``compare_run``.
PREDICTORS = (*BASE_PREDICTORS, "measured-contention", "measured-blend", "measured-job", "measured-probed")


@dataclass(frozen=True)
class PredictorPair:
    """One way of predicting pass latency for the draft node and for the verify node."""

    name: str
    draft: object
    verify: object
    note: str = ""


def compute_rows(store, dataset_id: str, model: str) -> pd.DataFrame:
    """The rows of ``model`` in compute dataset ``dataset_id`` (InputError if it has none)."""
    info = store.info(dataset_id)
    if info.kind != "compute":
        raise InputError(f"dataset {dataset_id!r} is a {info.kind} dataset, not a compute trace")
    frame = store.read(dataset_id)
    rows = frame[frame["model"].astype(str) == model]
    if rows.empty:
        have = ", ".join(sorted(set(frame["model"].astype(str))))
        raise InputError(f"compute dataset {dataset_id!r} has no rows for model {model!r} (it has {have})")
    return rows.reset_index(drop=True)


def latest_compute_trace(store, model: str) -> str:
    """The most recently created compute dataset that measured ``model``."""
    found = [i for i in store.list() if i.kind == "compute" and i.metadata.get("model") == model]
    if not found:
        raise DatasetNotFoundError(f"no compute trace of model {model!r} in the store {store.root}; measure one "
                                   "with `specedge serve-real --measure-compute` or `specedge record compute`")
    return max(found, key=lambda i: (i.created, i.id)).id


def roofline_from_trace(card: ModelCard, device: DeviceCard, frame: pd.DataFrame, *,
                        kv_bytes_per_value: float) -> RooflineCompute:
    """A roofline predictor whose three constants are least-squares fitted to a compute trace."""
    from specedge.record.fit_report import fit_roofline

    fit = fit_roofline(card, frame, kv_bytes_per_value=kv_bytes_per_value)
    a, m = float(fit["a_s_per_flop"]), float(fit["m_s_per_byte"])
    return RooflineCompute(
        card, device,
        compute_efficiency=1.0 / (a * device.peak_flops) if a > 0 else np.inf,
        memory_efficiency=1.0 / (m * device.memory_bandwidth_bytes_per_s) if m > 0 else np.inf,
        overhead_s=float(fit["c2_s"]), ffn_factor=1.0, kv_bytes_per_value=kv_bytes_per_value, kv_use_gqa=False,
    )


def build_predictors(sc, draft_rows: pd.DataFrame, verify_rows: pd.DataFrame, *,
                     names=BASE_PREDICTORS, sources: tuple[str, str] = ("trace", "trace")) -> list[PredictorPair]:
    """The named predictor pairs for scenario ``sc``'s draft and target from their compute-trace rows (built once
    per rows, names, sources and what they read of ``sc``: :func:`specedge.fidelity.memo.built`)."""
    from specedge.fidelity.memo import built, frame_digest

    kv = sc.params.kv_bytes_per_value
    ffn = sc.params.flops_ffn_factor
    key = ("build_predictors", frame_digest(draft_rows), frame_digest(verify_rows), tuple(names), tuple(sources),
           sc.draft, sc.target, sc.draft_device, sc.verify_device, kv, ffn)
    return list(built(key, lambda: tuple(_build_predictors(sc, draft_rows, verify_rows, names, sources, kv, ffn))))


def _build_predictors(sc, draft_rows, verify_rows, names, sources, kv, ffn) -> list[PredictorPair]:
    out = []
    for name in names:
        if name == "affine":
            d = AffineCompute.from_trace(sc.draft, draft_rows, ffn_factor=ffn, source=sources[0])
            v = AffineCompute.from_trace(sc.target, verify_rows, ffn_factor=ffn, source=sources[1])
            note = f"R² draft {d.fit.r2:.3f}, target {v.fit.r2:.3f}"
        elif name == "roofline":
            d = roofline_from_trace(sc.draft, sc.draft_device, draft_rows, kv_bytes_per_value=kv)
            v = roofline_from_trace(sc.target, sc.verify_device, verify_rows, kv_bytes_per_value=kv)
            note = "max(a·b·F, m·bytes) + c2, least squares"
        elif name == "measured":
            d = MeasuredCompute.from_trace(sc.draft, draft_rows, allow_extrapolation=True, source=sources[0])
            v = MeasuredCompute.from_trace(sc.target, verify_rows, allow_extrapolation=True, source=sources[1])
            note = "linear interpolation over the measured grid"
        else:
            raise InputError(f"unknown predictor {name!r}; expected one of {', '.join(BASE_PREDICTORS)}")
        out.append(PredictorPair(name, d, v, note))
    return out


def grid_coverage(passes: pd.DataFrame, draft_rows: pd.DataFrame, verify_rows: pd.DataFrame) -> dict:
    """Share of the run's passes whose (b, x, c) lies inside the compute trace's measured ranges, per node."""
    out = {}
    for node, rows in (("draft", draft_rows), ("verify", verify_rows)):
        p = passes[passes["node"] == node]
        inside = np.ones(len(p), dtype=bool)
        for col in ("batch_size", "new_tokens", "context_tokens"):
            v = p[col].to_numpy(np.float64)
            if col == "new_tokens":
                lo, hi = rows[col].min(), rows[col].max()
            elif col == "context_tokens":
                nz = rows.loc[rows[col] > 0, col]
                lo, hi = (0, 0) if nz.empty else (nz.min(), nz.max())
                v = np.where(v == 0, lo, v)  # prefill passes are checked on new_tokens
            else:
                lo, hi = rows[col].min(), rows[col].max()
            inside &= (v >= lo) & (v <= hi)
        out[node] = float(inside.mean()) if len(p) else float("nan")
    return out
