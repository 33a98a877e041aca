"""Goodput of a self-speculative draft against its depth: which layers to keep, chosen by measured goodput.

A self-speculative draft of an N-layer target keeps k of its layers (a prefix, ``self:K``, or a skip set) and its
LM head (:mod:`specedge.record.self_draft`). Its pass cost is not measured for every k: under the uniform-layer-
cost assumption [A], one pass of a k-layer draft takes

    T_k(b, x, c) = head(b, x, c) + k · per_layer(b, x, c),

the same for a prefix and a skip set of the same depth. Two traces measured in one quiet session fix both terms
at every query: the target's (k = N, batch 1) and one draft's (k = M, ``record smollm2-compute --exit-layers M``):
per_layer = (T_N − T_M) / (N − M) and T_k = T_N − (N − k) · per_layer (:class:`LayerScaledCompute`; each side is
specedge's :class:`~specedge.latency.compute.MeasuredCompute` over its trace).

Goodput, for each candidate's recorded acceptance dataset and each speculation length l, is what specedge's own
replay (:func:`specedge.replay.evaluate`) gives for SD serving of ONE request at batch size 1 (plan
``sd-serial``, one batch, fixed l): output tokens per second after the first token, 1 / TPOT, averaged over
``replications`` start requests of the trace [A: the request is ``input_tokens`` + ``output_tokens`` long, on
the ``paper`` preset with no fronthaul delay; only compute enters TPOT]. The AD row (the target alone,
``mode = ad``) is the reference. Drafting and verifying run one after another (one request), so draft and
target sharing one CPU [the recording setup] and sitting on two nodes give the same TPOT.

Without both traces in the store the compute part is *pending measurement*: the table then carries the
acceptance side only (τ(l) = 1 + Σ_{i ≤ l} S(i), the trace's survival) and NaN goodput, with ``status`` saying so.
Traces in which the draft's pass is not cheaper than the target's (per_layer ≤ 0: noise) are flagged
:data:`INCONSISTENT` rather than silently used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from specedge.errors import InputError

PENDING = "pending measurement"
MEASURED = "measured"
#: The two traces contradict the uniform-layer-cost model: the measured draft pass is not cheaper than the target's.
INCONSISTENT = "inconsistent traces: draft decode not cheaper than target (noisy?)"
#: Scenario of the one-request replay [A]: the paper preset with the recording machine's devices, measured compute.
SCENARIO_OVERRIDES = {"compute_model": "measured", "sbs_device": "epyc-host", "mbs_device": "epyc-host",
                      "fronthaul_delay_s": 0.0}
#: The target's batch-1 trace, measured in the same quiet session as the draft's: the full-grid
#: ``compute-cpu-smollm2-135m`` was recorded at load average 3 on 2 cores (decode 125-146 ms against 61-84 ms in
#: the quiet serve-engine trace), so differencing it with a quiet draft trace would not isolate the layers.
DEFAULT_TARGET_COMPUTE = "compute-cpu-smollm2-135m-b1"
DEFAULT_DRAFT_COMPUTE = "compute-cpu-smollm2-135m-exit24"
#: The goodput-curve candidates' acceptance datasets (T = 0, gamma 12, every 20th instruction), by prefix.
CANDIDATE_PREFIX = "smollm2-135m-kcurve-"


@dataclass(frozen=True)
class LayerScaledCompute:
    """A k-layer pass from two measured depths under uniform layer cost [A]: T_k = T_N − (N − k)(T_N − T_M)/(N − M).

    ``full`` measured ``full_layers`` = N layers, ``partial`` measured ``partial_layers`` = M < N."""

    model: object
    full: object
    partial: object
    full_layers: int
    partial_layers: int
    layers: int
    job_overhead: object = None

    def __post_init__(self) -> None:
        if not 0 < self.partial_layers < self.full_layers:
            raise InputError(f"layer scaling needs 0 < M < N, got M={self.partial_layers}, N={self.full_layers}")
        if not 0 < self.layers <= self.full_layers:
            raise InputError(f"a draft of {self.layers} layers: must be in 1..{self.full_layers}")

    def per_layer_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        t_full = self.full.latency_s(batch_size, new_tokens, context_tokens)
        t_part = self.partial.latency_s(batch_size, new_tokens, context_tokens)
        return (t_full - t_part) / (self.full_layers - self.partial_layers)

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        t_full = self.full.latency_s(batch_size, new_tokens, context_tokens)
        per = self.per_layer_s(batch_size, new_tokens, context_tokens)
        return t_full - (self.full_layers - self.layers) * per


def draft_layers(metadata: dict) -> int:
    """How many target layers a recorded self-draft runs (its metadata's ``draft.layers``/``kept_layers``)."""
    draft = metadata.get("draft") or {}
    if draft.get("kept_layers"):
        return len(draft["kept_layers"])
    if draft.get("layers") and draft.get("parameters_shared_with_target"):
        return int(draft["layers"])
    raise InputError(f"dataset {metadata.get('dataset')!r} is not a self-speculative draft recording")


def tau_at(stats, l: int) -> float:
    """Expected tokens per round at speculation length l from a source's conditional rates: 1 + Σ_{i≤l} S(i)
    (beyond the recorded draft length, α_tail per extra position, as replay extrapolates)."""
    alpha = list(stats.alpha_i) + [stats.alpha_tail] * max(0, l - len(stats.alpha_i))
    # α_i is 0/0 (NaN) only where no round reached position i, i.e. where the survival is already 0
    return float(1.0 + np.cumprod(np.nan_to_num(np.asarray(alpha[:l], dtype=float), nan=0.0)).sum())


def _scenario(store, acceptance, target_compute: str, input_tokens: int, output_tokens: int):
    from specedge.scenario import Scenario

    tasks = pd.DataFrame({"input_tokens": [input_tokens], "output_tokens": [output_tokens], "distance_m": [100.0]})
    return Scenario.from_preset("paper", pair="smollm2-135m/smollm2-135m", tasks=tasks, acceptance=acceptance,
                                store=store, draft_compute_trace=target_compute,
                                verify_compute_trace=target_compute, **SCENARIO_OVERRIDES)


def _goodput(sc, plan: dict, replications: int, seed: int) -> tuple[float, float]:
    from specedge.replay import evaluate

    reps = evaluate(sc, plan, replications=replications, seed=seed).replications
    tpot = float(reps["mean_tpot_s"].mean())
    return 1.0 / tpot, float(reps["tokens_per_round"].mean())


def goodput_curve(store, datasets: list[str], *, target_compute: str = DEFAULT_TARGET_COMPUTE,
                  draft_compute: str = DEFAULT_DRAFT_COMPUTE, lengths=range(1, 13), input_tokens: int = 64,
                  output_tokens: int = 64, replications: int = 32, seed: int = 0) -> pd.DataFrame:
    """One row per (candidate, l) plus one AD row: layers, τ(l), goodput (tokens/s), speedup over AD, status.

    ``draft_compute`` missing from the store: goodput columns NaN, ``status`` = :data:`PENDING`."""
    from specedge.latency.compute import MeasuredCompute
    from specedge.latency.cards import load_model_card
    from specedge.scenario import _acceptance

    if not datasets:
        raise InputError("goodput curve: no candidate datasets")
    pending = draft_compute not in store or target_compute not in store
    rows = []
    ad_goodput = np.nan
    partial = partial_layers = None
    if not pending:
        sc0 = _scenario(store, "expected", target_compute, input_tokens, output_tokens)
        ad_goodput, _ = _goodput(sc0, {"batches": [[0]], "speculation_length": 1, "mode": "ad",
                                       "bandwidth_hz": [sc0.bandwidth_hz]}, 1, seed)
        frame = store.read(draft_compute)
        partial_layers = draft_layers_of_compute(store.info(draft_compute).metadata)
        partial = MeasuredCompute.from_trace(load_model_card("smollm2-135m"), frame, source=draft_compute)
    full_layers = None
    for ds in datasets:
        md = store.info(ds).metadata
        k = draft_layers(md)
        full_layers = int(md["draft"]["target_layers"])
        source = _acceptance(ds, 0.0, store)
        sc, status, cost = None, PENDING, {"draft_decode_ms": np.nan, "per_layer_ms": np.nan, "head_ms": np.nan}
        if not pending:
            sc = _scenario(store, ds, target_compute, input_tokens, output_tokens)
            draft = LayerScaledCompute(sc.draft, sc.verify_compute, partial, full_layers, partial_layers, k)
            sc = replace(sc, draft_compute=draft)
            per = float(draft.per_layer_s(1, 1, input_tokens)) * 1e3
            cost = {"draft_decode_ms": float(draft.latency_s(1, 1, input_tokens)) * 1e3, "per_layer_ms": per,
                    "head_ms": float(sc.verify_compute.latency_s(1, 1, input_tokens)) * 1e3 - full_layers * per}
            status = MEASURED if per > 0 else INCONSISTENT
        for l in lengths:
            good, tpr = np.nan, tau_at(source.stats, int(l))
            if sc is not None:
                good, tpr = _goodput(sc, {"batches": [[0]], "speculation_length": int(l), "mode": "sd-serial",
                                          "bandwidth_hz": [sc.bandwidth_hz]}, replications, seed)
            rows.append({"dataset": ds, "draft": md["draft"]["name"], "layers": k, "l": int(l),
                         "tau_recorded": float(source.stats.tau), "tokens_per_round": tpr,
                         "goodput_tok_per_s": good, "speedup_vs_ad": good / ad_goodput, **cost, "status": status})
    rows.append({"dataset": "", "draft": "AD (target alone)", "layers": full_layers, "l": 0, "tau_recorded": 1.0,
                 "tokens_per_round": 1.0, "goodput_tok_per_s": ad_goodput, "speedup_vs_ad": 1.0,
                 "draft_decode_ms": np.nan, "per_layer_ms": np.nan, "head_ms": np.nan,
                 "status": PENDING if pending else MEASURED})
    return pd.DataFrame(rows)


def draft_layers_of_compute(metadata: dict) -> int:
    """Layers a draft compute trace measured (``record smollm2-compute --exit-layers K`` records ``model_description``)."""
    desc = metadata.get("model_description") or metadata.get("model") or {}
    if isinstance(desc, dict) and desc.get("layers"):
        return int(desc["layers"])
    raise InputError(f"compute dataset {metadata.get('dataset')!r}: its metadata does not say how many layers it ran")


def best_per_candidate(curve: pd.DataFrame) -> pd.DataFrame:
    """Each candidate's best l (argmax of goodput over l), best first; the AD row last.

    With the compute part pending there is no best l (τ(l) only grows with l): each candidate's row at its largest
    l, with ``l_best`` = NaN."""
    sd = curve[curve["l"] > 0]
    if sd["status"].eq(PENDING).any():
        best = sd.loc[sd.groupby("dataset", sort=False)["l"].idxmax()].assign(l_best=np.nan)
        return best.sort_values("tokens_per_round", ascending=False, kind="stable").reset_index(drop=True)
    best = sd.loc[sd.groupby("dataset", sort=False)["goodput_tok_per_s"].idxmax()]
    best = best.assign(l_best=best["l"]).sort_values("goodput_tok_per_s", ascending=False, kind="stable")
    ad = curve[curve["l"] == 0].assign(l_best=0)
    return pd.concat([best, ad], ignore_index=True)
