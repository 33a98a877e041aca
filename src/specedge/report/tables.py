"""The report's tables: pure functions from trace frames and sweep results to DataFrames.

Intervals: a sweep cell's metric is one Monte Carlo draw (a task set, a trace assignment, sampled acceptance) or
the mean of ``replications`` draws; a table's interval is the two-sided Student-t interval of the mean over the
cells that share everything but the seed (:func:`mean_interval`). Reductions are paired: each seed's policy is
compared with the same seed's baseline on the same scenario, and the interval is over those paired reductions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from specedge.traces import stats

#: Confidence level of every interval in the report.
CONFIDENCE = 0.95
#: Smallest possible value of a metric; an interval's low end is clipped there (a t-interval of a mean of
#: batch counts must not reach below one batch). Metrics in seconds (``*_s``) are floored at 0.
METRIC_FLOORS = {"num_batches": 1.0, "speculation_length": 1.0, "tasks": 1.0}


def metric_floor(metric: str) -> float | None:
    """The floor of ``metric`` (:data:`METRIC_FLOORS`; 0 for ``*_s``), or None when it has none."""
    if metric in METRIC_FLOORS:
        return METRIC_FLOORS[metric]
    return 0.0 if metric.endswith("_s") else None


# ------------------------------------------------------------------------------------------- intervals
def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean; low = high = mean for one value, NaN for none."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if x.size == 1:
        return (mean, mean, mean)
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return (mean, mean - half, mean + half)


def _t_half_width(std: np.ndarray, n: np.ndarray, confidence: float) -> np.ndarray:
    """Half-width of the Student-t interval of a mean, vectorised; 0 for one value."""
    from scipy.stats import t

    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * np.asarray(std, dtype=np.float64) / np.sqrt(n)
    return np.where(n > 1, half, 0.0)


def summarise(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str],
              confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per group of ``by``: n and, per metric, mean with its interval (columns <m>, <m>_low, <m>_high).

    The same numbers as :func:`mean_interval` per group (NaN values are left out), computed in one groupby; the
    low end is clipped at the metric's floor (:func:`metric_floor`), where a value cannot go.
    """
    g = frame.groupby(list(by), sort=True, dropna=False, observed=True)
    out = g.size().rename("n").to_frame()
    for m in metrics:
        stats_ = g[m].agg(["mean", "std", "count"])
        half = _t_half_width(stats_["std"].to_numpy(), stats_["count"].to_numpy(), confidence)
        out[m] = stats_["mean"]
        low = stats_["mean"] - half
        floor = metric_floor(m)
        out[f"{m}_low"] = low if floor is None else low.clip(lower=floor)
        out[f"{m}_high"] = stats_["mean"] + half
    return out.reset_index()


def paired_reduction(frame: pd.DataFrame, by: Sequence[str], metric: str, baseline: str,
                     confidence: float = CONFIDENCE, pair_on: Sequence[str] = ("seed",)) -> pd.DataFrame:
    """Reduction of ``metric`` of every policy against ``baseline``: 1 − policy / baseline, paired on seed.

    Returns one row per (``by``, policy) with the mean reduction (a fraction; positive = the policy is faster), its
    interval and the number of pairs. Policies without a baseline cell to pair with are left out.
    """
    keys = list(by) + list(pair_on)
    base = (frame.loc[frame["policy"] == baseline, keys + [metric]]
            .rename(columns={metric: "_baseline"}).drop_duplicates(keys))
    merged = frame[keys + ["policy", metric]].merge(base, on=keys, how="inner")
    merged["_reduction"] = 1.0 - merged[metric] / merged["_baseline"]
    g = merged.groupby(list(by) + ["policy"], sort=True, dropna=False, observed=True)["_reduction"]
    stats_ = g.agg(["mean", "std", "count"])
    half = _t_half_width(stats_["std"].to_numpy(), stats_["count"].to_numpy(), confidence)
    out = pd.DataFrame({"baseline": baseline, "pairs": g.size().astype(int), "reduction": stats_["mean"],
                        "reduction_low": stats_["mean"] - half, "reduction_high": stats_["mean"] + half},
                       index=stats_.index)
    return out.reset_index()


# ---------------------------------------------------------------------------------------------- traces
def provenance(source: str) -> str:
    """The words a reader needs: where a trace's numbers came from."""
    if source == "recorded":
        return "recorded by specedge (real draft/target pair)"
    if source.startswith("ingested:"):
        return f"ingested from {source.split(':', 1)[1]} output"
    if source == "derived-from-published":
        return "derived from a published number (synthetic rounds)"
    return source


def iid_alpha(frame: pd.DataFrame, name: str = "trace") -> float:
    """The i.i.d. per-position α that specedge's planners use for this trace.

    It is :class:`~specedge.latency.acceptance.AcceptanceStats` ``.alpha``: the α whose L(d, α) equals the recorded
    mean tokens per round at the most common drafted length d (a fitted summary, not a claim of independence).
    """
    from specedge.latency.acceptance import source_from_frame

    kind = "aggregate" if stats.is_aggregate(frame) else "trace"
    return float(source_from_frame(frame, name=name, kind=kind).stats.alpha)


def survival_iid(frame: pd.DataFrame, alpha: float) -> np.ndarray:
    """S(i) that i.i.d. acceptance at ``alpha`` gives for the trace's drafted lengths, i = 0..max drafted."""
    hist = stats.histogram(frame)
    d = hist["drafted"].to_numpy(np.int64)
    w = hist["count"].to_numpy(np.float64)
    i = np.arange(int(d.max()) + 1)
    reach = (i[None, :] <= d[:, None]) * w[:, None]
    return reach.sum(axis=0) / w.sum() * alpha**i


def trace_catalog(infos: Iterable) -> pd.DataFrame:
    """One row per dataset of the store: id, kind, provenance, rows, models and the note the data came with."""
    rows = []
    for info in infos:
        meta = info.metadata
        rows.append({
            "dataset": info.id,
            "kind": info.kind,
            "source": info.source,
            "provenance": provenance(info.source),
            "rows": info.rows,
            "draft_model": meta.get("draft_model", ""),
            "target_model": meta.get("target_model", meta.get("model", "")),
            "citation": meta.get("citation", ""),
            "note": str(meta.get("note", ""))[:200],
        })
    return pd.DataFrame(rows, columns=["dataset", "kind", "source", "provenance", "rows", "draft_model",
                                       "target_model", "citation", "note"])


def acceptance_summary(frames: Mapping[str, pd.DataFrame], sources: Mapping[str, str],
                       tool_numbers: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """Per acceptance dataset: rounds, τ, m, max drafted, the fitted i.i.d. α and how far i.i.d. is from the trace.

    Where a dataset has its tool's own numbers (``tool_numbers[name]``, the metadata dict of
    :mod:`specedge.traces.ingest.numbers`), rounds, τ and m are :func:`~specedge.traces.ingest.numbers.derived`
    from them (None where the tool does not define one, never filled in from the histogram), as ``traces show``
    prints them; otherwise they are computed from the stored rounds. ``numbers_from`` says which ("tool" or
    "table") and ``inferred`` lists any number computed under an assumption. ``survival_gap`` is
    max_i |S_trace(i) − S_iid(i)|: 0 when the trace is i.i.d. at one α.
    """
    from specedge.traces.ingest.numbers import derived

    tool_numbers = tool_numbers or {}
    rows = []
    for name, frame in frames.items():
        alpha = iid_alpha(frame)
        s = stats.survival(frame)
        s_iid = survival_iid(frame, alpha)
        if isinstance(tool_numbers.get(name), Mapping):
            tool = derived(tool_numbers[name])
            numbers = {"rounds": tool["rounds"], "tau": tool["tau"], "acceptance_ratio": tool["acceptance_ratio"],
                       "numbers_from": "tool", "inferred": "; ".join(f"{k}: {v}" for k, v in tool["inferred"].items())}
        else:
            numbers = {"rounds": stats.rounds(frame), "tau": stats.tau(frame),
                       "acceptance_ratio": stats.acceptance_ratio(frame), "numbers_from": "table", "inferred": ""}
        rows.append({
            "dataset": name,
            "provenance": provenance(sources.get(name, "")),
            **numbers,
            "max_drafted": int(frame["drafted"].max()),
            "alpha_iid": alpha,
            "survival_gap": float(np.max(np.abs(s - s_iid))),
        })
    out = pd.DataFrame(rows)
    if not out.empty:  # None (undefined by the tool) stays a null, not an object column
        out["rounds"] = out["rounds"].astype("Int64")
        out["tau"] = pd.to_numeric(out["tau"], errors="coerce").astype("float64")
        out["acceptance_ratio"] = pd.to_numeric(out["acceptance_ratio"], errors="coerce").astype("float64")
    return out


def tau_by_category(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """τ and m per (dataset, category) for the datasets that carry categories (empty frame otherwise)."""
    rows = []
    for name, frame in frames.items():
        if "category" not in frame.columns or not frame["category"].notna().any():
            continue
        for cat, sub in frame[frame["category"].notna()].groupby("category", sort=True, observed=True):
            rows.append({"dataset": name, "category": str(cat), "rounds": stats.rounds(sub), "tau": stats.tau(sub),
                         "acceptance_ratio": stats.acceptance_ratio(sub)})
    return pd.DataFrame(rows, columns=["dataset", "category", "rounds", "tau", "acceptance_ratio"])


def compute_fits(frames: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Affine (docs/model.md §4) and roofline fits of each compute trace, per dataset and model.

    Returns (fit table, points): the fit table has one row per (dataset, model, predictor) with its constants,
    R² and RMSE; the points table has the measured median and each predictor's prediction per configuration.
    The fits are :func:`specedge.latency.compute.fit_affine` and :func:`specedge.latency.compute.fit_roofline`
    (compute efficiency, memory efficiency and overhead against the device card named in the trace) — both are
    descriptive fits of the measurements, reported with where each misses.
    """
    from specedge.errors import ScenarioError
    from specedge.latency.cards import load_device_card, load_model_card
    from specedge.latency.compute import fit_affine, fit_roofline

    fit_rows, point_rows = [], []
    for name, frame in frames.items():
        for (model_name, device_name), part in frame.groupby(["model", "device"], sort=True, observed=True):
            try:
                model = load_model_card(str(model_name))
            except ScenarioError as exc:
                fit_rows.append({"dataset": name, "model": model_name, "device": device_name, "predictor": "affine",
                                 "note": f"no model card: {exc}"})
                continue
            med = (part.groupby(["phase", "batch_size", "new_tokens", "context_tokens"], observed=True)["latency_ms"]
                   .median().reset_index())
            affine = fit_affine(model, part, source=name)
            b, x, c = (med[k].to_numpy(np.float64) for k in ("batch_size", "new_tokens", "context_tokens"))
            from specedge.latency.flops import forward_flops

            work = b * forward_flops(model, x, c)
            pred_affine = (affine.c1_s_per_flop * work + affine.c2_s) * 1e3
            fit_rows.append({"dataset": name, "model": model_name, "device": device_name, "predictor": "affine",
                             "c1_s_per_flop": affine.c1_s_per_flop, "c2_s": affine.c2_s, "r2": affine.r2,
                             "rmse_ms": affine.rmse_s * 1e3, "rows": affine.num_rows, "note": ""})
            points = med.assign(dataset=name, model=model_name, device=device_name, measured_ms=med["latency_ms"])
            point_rows.append(points.assign(predictor="affine", predicted_ms=pred_affine))
            try:
                device = load_device_card(str(device_name))
            except ScenarioError as exc:
                fit_rows.append({"dataset": name, "model": model_name, "device": device_name,
                                 "predictor": "roofline", "note": f"no device card: {exc}"})
                continue
            roof = fit_roofline(model, device, part, source=name)
            fit_rows.append({"dataset": name, "model": model_name, "device": device_name, "predictor": "roofline",
                             "compute_efficiency": roof.compute.compute_efficiency,
                             "memory_efficiency": roof.compute.memory_efficiency, "c2_s": roof.compute.overhead_s,
                             "r2": roof.r2, "rmse_ms": roof.rmse_s * 1e3, "rows": roof.num_rows, "note": ""})
            point_rows.append(points.assign(predictor="roofline", predicted_ms=roof.compute.latency_s(b, x, c) * 1e3))
    fits = pd.DataFrame(fit_rows)
    points = pd.concat(point_rows, ignore_index=True) if point_rows else pd.DataFrame()
    if not points.empty:
        points = points.drop(columns=["latency_ms"])
        points["relative_error"] = points["predicted_ms"] / points["measured_ms"] - 1.0
    return fits, points
