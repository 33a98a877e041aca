"""Pass calibration with a contention term, fitted on a pair's *other* real runs (issue 10, rank fidelity).

Compute traces time passes in a tight loop, co-running with the other model's measurer (both cores busy). In a
real run a pass differs from the grid in two ways this module measures and models [A]:

- *contention*: the other node may be idle (a verify-bound pair's draft node waits most of the time), so the
  pass shares the last-level cache and memory bandwidth with less than the grid assumed;
- *calibration*: the run's passes are not the grid's (host work between passes, a new KV cache per batch, the
  first pass of a shape), which a constant factor and a constant per pass absorb.

Per pass p of a node, u_p in [0, 1] is the share of the pass's wall time during which the *other* node had a job
running (:func:`busy_overlap`, from the run's ``job`` records), and g_p the base predictor's latency at the pass's
shape (b, x, c). Per node and pass class (by shape, as :class:`~specedge.latency.compute.MeasuredCompute` routes
queries: x = 1 decode, c = 0 prefill, else verify) the model is

    t_p = a·g_p + d + k·u_p·g_p                                                                         [A]

fitted by least squares (``a >= 0``) to the passes of the pair's other quiet runs (:func:`fit_pass_calibration`);
k is dropped (0) where u does not vary (std < 0.05) and a class with fewer than ``MIN_PASSES`` passes uses the
node's pooled fit. k > 0 is a contention slowdown (slower when the other node is busy).

To predict a plan, u is not known: :func:`contention_pair` replays the plan, takes each node's duration-weighted
share of its job time during which the other node's replayed jobs run (:func:`replayed_busy_share`), sets that u
in the calibrated predictor (:class:`CalibratedCompute`) and replays again (``iterations`` times, a fixed point).
The run being predicted is never used: ``holdout="run"`` fits on every other quiet run of the pair, ``"plan"``
(default, stricter: what predicting a new plan would have) also leaves out the repeats of the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from specedge.errors import InputError
from specedge.fidelity.memo import built

#: Fewer passes than this in a (node, class) and the node's pooled fit is used for that class.
MIN_PASSES = 30
#: Below this standard deviation of u the contention slope k cannot be told from a and is dropped.
MIN_U_STD = 0.05
CLASSES = ("prefill", "decode", "verify")


def pass_class(new_tokens, context_tokens) -> np.ndarray:
    """'decode' (x = 1), 'prefill' (c = 0) or 'verify', as MeasuredCompute routes a query."""
    x = np.asarray(new_tokens, dtype=np.float64)
    c = np.asarray(context_tokens, dtype=np.float64)
    return np.where(x == 1, "decode", np.where(c == 0, "prefill", "verify"))


def busy_overlap(start_s, end_s, other_start_s, other_end_s) -> np.ndarray:
    """Per interval [start, end]: the share of it covered by the (non-overlapping) intervals of the other node."""
    s = np.asarray(start_s, dtype=np.float64)
    e = np.asarray(end_s, dtype=np.float64)
    os_ = np.asarray(other_start_s, dtype=np.float64)
    oe = np.asarray(other_end_s, dtype=np.float64)
    if os_.size == 0:
        return np.zeros(s.shape)
    order = np.argsort(os_, kind="stable")
    os_, oe = os_[order], oe[order]
    if np.any(os_[1:] < oe[:-1] - 1e-12):
        raise InputError("busy_overlap: the other node's intervals overlap each other")
    cum = np.concatenate([[0.0], np.cumsum(oe - os_)])
    xs = np.column_stack([os_, oe]).ravel()
    ys = np.column_stack([cum[:-1], cum[1:]]).ravel()
    covered = np.interp(e, xs, ys) - np.interp(s, xs, ys)
    width = e - s
    return np.where(width > 0, covered / np.where(width > 0, width, 1.0), 0.0).clip(0.0, 1.0)


def pass_overlap(parts: dict) -> pd.DataFrame:
    """The run's ``pass`` records with ``u`` (other node's busy share during the pass) and ``t_s`` (duration)."""
    jobs, passes = parts["job"], parts["pass"]
    out = []
    for node, other in (("draft", "verify"), ("verify", "draft")):
        p = passes[passes["node"] == node]
        o = jobs[jobs["node"] == other]
        u = busy_overlap(p["start_s"], p["end_s"], o["start_s"], o["end_s"])
        out.append(p.assign(u=u, t_s=(p["end_s"] - p["start_s"]).to_numpy(np.float64)))
    return pd.concat(out, ignore_index=True)


#: each run's passes with what no predictor changes (node, class, u, measured t_s, shape), keyed by run key
_PASSES_CACHE: dict = {}
#: each run's base predictions g_s (one float64 array) against one pair of grid predictors, keyed by
#: (run key, predictor key): a run is fitted on by every other run's calibration, under each session's grid.
#: Both hold at most :data:`specedge.fidelity.memo.MEMO_ENTRIES` (about grids × runs of a pair are needed).
_SAMPLES_CACHE: dict = {}


def _predictor_key(pred):
    """A key naming a predictor by the dataset it was built from (None: not cacheable)."""
    source = getattr(pred, "source", None)
    if not isinstance(source, str) or source in ("", "trace", "custom", "scenario"):
        return None
    return (type(pred).__name__, source, getattr(pred, "allow_extrapolation", None))


def _run_passes(parts) -> dict:
    """The predictor-independent columns of one run's calibration samples, as numpy arrays in pass order."""
    p = pass_overlap(parts)
    out = {"node": p["node"].to_numpy(), "cls": pass_class(p["new_tokens"], p["context_tokens"]),
           "u": p["u"].to_numpy(), "t_s": p["t_s"].to_numpy(),
           **{k: p[k].to_numpy(np.float64) for k in ("batch_size", "new_tokens", "context_tokens")}}
    return {k: _read_only(v) for k, v in out.items()}


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a)  # an own copy: shared through the memo
    a.setflags(write=False)
    return a


def _predictions(passes: dict, base_draft, base_verify) -> np.ndarray:
    g = np.empty(len(passes["node"]))
    for node, pred in (("draft", base_draft), ("verify", base_verify)):
        sel = passes["node"] == node
        g[sel] = pred.latency_s(passes["batch_size"][sel], passes["new_tokens"][sel], passes["context_tokens"][sel])
    return _read_only(g)


def calibration_samples(parts_list, base_draft, base_verify, run_ids=None, cache_keys=None) -> pd.DataFrame:
    """One row per pass of the given runs: run, node, class, u, measured t_s and the base prediction g_s.
    ``cache_keys``: one key per run (its store, id and checksum) to reuse each run's passes, and its predictions
    by grid predictors built from named datasets."""
    cols, sizes = _sample_arrays(parts_list, base_draft, base_verify, cache_keys)
    labels = list(run_ids) if run_ids else list(range(len(parts_list)))
    run = np.repeat(np.array(labels, dtype=object if run_ids else np.int64), sizes)
    return pd.DataFrame({"run": run, **cols})


def _sample_arrays(parts_list, base_draft, base_verify, cache_keys=None) -> tuple[dict, list]:
    """(the columns node, cls, u, t_s, g_s of :func:`calibration_samples` as numpy arrays, passes per run)."""
    cols: dict[str, list] = {"node": [], "cls": [], "u": [], "t_s": [], "g_s": []}
    pkey = (_predictor_key(base_draft), _predictor_key(base_verify))
    for i, parts in enumerate(parts_list):
        rkey = None if cache_keys is None else cache_keys[i]
        passes = built(rkey, lambda parts=parts: _run_passes(parts), _PASSES_CACHE)
        gkey = None if rkey is None or None in pkey else (rkey, pkey)
        cols["g_s"].append(built(gkey, lambda passes=passes: _predictions(passes, base_draft, base_verify),
                                 _SAMPLES_CACHE))
        for c in ("node", "cls", "u", "t_s"):
            cols[c].append(passes[c])
    return {c: np.concatenate(v) for c, v in cols.items()}, [len(g) for g in cols["g_s"]]


@dataclass(frozen=True)
class PassCalibration:
    """t = a·g + d_s + k·u·g for one pass class of one node (fitted; see the module docstring)."""

    a: float = 1.0
    d_s: float = 0.0
    k: float = 0.0
    num_passes: int = 0
    dropped: tuple[str, ...] = ()

    def apply(self, g_s, u) -> np.ndarray:
        g = np.asarray(g_s, dtype=np.float64)
        return np.maximum(self.a * g + self.d_s + self.k * np.asarray(u, dtype=np.float64) * g, 0.0)

    def to_dict(self) -> dict:
        return {"a": self.a, "d_s": self.d_s, "k": self.k, "num_passes": self.num_passes,
                "dropped": list(self.dropped)}


def _fit(g: np.ndarray, u: np.ndarray, t: np.ndarray) -> PassCalibration:
    """The least-squares fit of one set of passes (base predictions g, busy shares u, measured times t)."""
    from scipy.optimize import lsq_linear

    dropped = () if np.std(u) >= MIN_U_STD else ("k",)
    cols = [g, np.ones_like(g)] + ([] if dropped else [g * u])
    design = np.column_stack(cols)
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    lo = [0.0, -np.inf] + ([] if dropped else [-np.inf])
    sol = lsq_linear(design / scale, t, bounds=(lo, np.inf))
    coef = sol.x / scale
    return PassCalibration(a=float(coef[0]), d_s=float(coef[1]), k=0.0 if dropped else float(coef[2]),
                           num_passes=int(len(g)), dropped=dropped)


def fit_pass_calibration(samples, node: str) -> dict[str, PassCalibration]:
    """{class: PassCalibration} of ``node`` from :func:`calibration_samples` rows (pooled fit for small classes);
    ``samples``: that frame, or a mapping of its columns node, cls, g_s, u, t_s as arrays (what the study passes:
    selected with numpy masks in row order, the same passes in the same order as the frame's)."""
    col = {c: np.asarray(samples[c]) for c in ("node", "cls")}
    num = {c: np.asarray(samples[c], dtype=np.float64) for c in ("g_s", "u", "t_s")}
    mine = col["node"] == node
    if not mine.any():
        raise InputError(f"no {node} passes to fit a pass calibration to")
    g, u, t, cls_of = num["g_s"][mine], num["u"][mine], num["t_s"][mine], col["cls"][mine]
    pooled = _fit(g, u, t)
    out = {}
    for cls in CLASSES:
        sub = cls_of == cls
        out[cls] = (_fit(g[sub], u[sub], t[sub]) if int(sub.sum()) >= MIN_PASSES
                    else replace(pooled, dropped=pooled.dropped + ("pooled",)))
    return out


@dataclass(frozen=True)
class CalibratedCompute:
    """A compute predictor: ``base``'s pass latency g through the node's :class:`PassCalibration` of its class at
    the other node's busy share ``other_busy`` (u); carries a host overhead like the other predictors."""

    model: object
    base: object = field(repr=False)
    calibration: dict = field(repr=False)
    other_busy: float = 1.0
    source: str = "fitted"
    job_overhead: object = None

    def latency_s(self, batch_size, new_tokens, context_tokens) -> np.ndarray:
        b, x, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (batch_size, new_tokens,
                                                                                   context_tokens)))
        g = np.asarray(self.base.latency_s(b, x, c), dtype=np.float64)
        cls = pass_class(x, c)
        out = np.empty(g.shape)
        for name in np.unique(cls):
            sel = cls == name
            out[sel] = self.calibration[str(name)].apply(g[sel], self.other_busy)
        return out


def replayed_busy_share(run) -> dict[str, float]:
    """Per node, the share of its replayed job time during which the other node's replayed jobs run
    (a replay :class:`~specedge.replay.core.Run`)."""
    d_end, d_dur = np.asarray(run.job_draft_end_s), np.asarray(run.job_draft_s)
    v_end, v_dur = np.asarray(run.job_verify_end_s), np.asarray(run.job_verify_s)
    out = {}
    for node, (end, dur), (o_end, o_dur) in (("draft", (d_end, d_dur), (v_end, v_dur)),
                                             ("verify", (v_end, v_dur), (d_end, d_dur))):
        u = busy_overlap(end - dur, end, o_end - o_dur, o_end)
        out[node] = float(np.sum(u * dur) / np.sum(dur)) if np.sum(dur) > 0 else 0.0
    return out


def holdout_runs(store, run_id: str, meta: dict, holdout: str = "plan") -> list[str]:
    """The pair's other quiet runs to fit on: all but ``run_id`` ("run") or also without its plan's repeats
    ("plan": every run of the same schedule, :mod:`specedge.fidelity.schedule`, whichever policy made it)."""
    from specedge.fidelity.compare import pair_runs

    if holdout not in ("run", "plan"):
        raise InputError(f"contention holdout {holdout!r}: expected 'run' or 'plan'")
    others = pair_runs(store, meta, exclude=run_id)
    if holdout == "plan":
        from specedge.fidelity.schedule import run_schedule

        mine = run_schedule(meta)  # only the candidates' schedules: hashing every run's per call cost seconds
        others = [r for r in others if run_schedule(store.info(r).metadata) != mine]
    return others


def busy_fixed_point(sc, plan, make, *, seed: int = 0, iterations: int = 3):
    """({"draft", "verify"} predictors, u, history): ``make(u)`` builds the two predictors for each node's other-
    node busy share u; start at u = 1 (the co-run grid's assumption), replay ``plan``, take the replayed shares
    (:func:`replayed_busy_share`) and repeat until they move by less than 1e-3 or ``iterations`` replays."""
    from specedge.replay import evaluate

    u = {"draft": 1.0, "verify": 1.0}
    history = []
    for _ in range(max(1, iterations)):
        preds = make(u)
        res = evaluate(replace(sc, draft_compute=preds["draft"], verify_compute=preds["verify"]), plan, seed=seed)
        new = replayed_busy_share(res.runs[0])
        history.append(new)
        if all(abs(new[n] - u[n]) < 1e-3 for n in u):
            break
        u = new
    return make(u), u, history


def contention_pair(sc, plan, base, fit_parts, *, name: str | None = None, seed: int = 0, iterations: int = 3,
                    run_ids=None, overheads=None, cache_keys=None):
    """(PredictorPair, info): ``base`` (a PredictorPair, passes only) calibrated on ``fit_parts`` (record dicts of
    other runs) with u set by replaying ``plan`` on ``sc`` to a fixed point. ``overheads``: {"draft", "verify"}
    JobOverhead carried by the calibrated predictors (None: the base predictors' own)."""
    from specedge.fidelity.predictors import PredictorPair

    pkey = (_predictor_key(base.draft), _predictor_key(base.verify))  # the fit is what the samples' cache keys say
    key = None if cache_keys is None or None in pkey else ("pass_calibration", tuple(cache_keys), pkey)

    def fit():  # on the samples' columns as arrays (the frame of calibration_samples, without building it)
        samples = _sample_arrays(fit_parts, base.draft, base.verify, cache_keys)[0]
        return {node: fit_pass_calibration(samples, node) for node in ("draft", "verify")}

    cal = built(key, fit)
    ovh = overheads or {node: getattr(getattr(base, node), "job_overhead", None) for node in ("draft", "verify")}

    def make(u):
        return {node: CalibratedCompute(getattr(base, node).model, getattr(base, node), cal[node], u[node],
                                        source=f"calibrated on {len(fit_parts)} other run(s)",
                                        job_overhead=ovh[node]) for node in ("draft", "verify")}

    preds, u, history = busy_fixed_point(sc, plan, make, seed=seed, iterations=iterations)
    info = {"runs": list(run_ids or []), "other_busy": u, "iterations": history,
            **{node: {cls: c.to_dict() for cls, c in cal[node].items()} for node in cal}}
    pair = PredictorPair(name or f"{base.name}-contention", preds["draft"], preds["verify"],
                         "grid calibrated on the pair's other runs' passes, t = a g + d + k u g")
    return pair, info


def with_contention(store, run_id: str, meta: dict, sc, plan, predictors, overhead, *, holdout: str | None = "plan",
                    base_name: str = "measured", seed: int = 0) -> tuple[list, dict]:
    """``predictors`` plus ``<base_name>-contention`` (:func:`contention_pair` on the base pair named
    ``base_name``, fitted on :func:`holdout_runs`), and a description for the diagnostics; unchanged (with the
    reason) when ``holdout`` is None, there is no such base, or no other quiet run to fit on."""
    from specedge.fidelity.compare import _records
    from specedge.serve.dataset import split_records

    from specedge.fidelity.blend import with_blend

    if holdout is None:
        return predictors, {"source": "off"}
    base = next((p for p in predictors if p.name == base_name), None)
    if base is None:
        return predictors, {"source": "none", "reason": f"no {base_name!r} predictor to calibrate"}
    predictors, blend_info = with_blend(store, sc, plan, predictors, base, overhead, seed=seed)
    others = holdout_runs(store, run_id, meta, holdout)
    if not others:
        return predictors, {"source": "none", "holdout": holdout, "blend": blend_info,
                            "reason": "no other quiet run of the pair to fit on (the run itself is never used)"}
    parts = [_records(store, r, split_records) for r in others]
    from specedge.fidelity.memo import version_key

    keys = [version_key(store, r) for r in others]
    pair, info = contention_pair(sc, plan, base, parts, seed=seed, run_ids=others, overheads=overhead,
                                 cache_keys=keys)
    return [*predictors, pair], {"source": "pair", "holdout": holdout, "blend": blend_info, **info}
