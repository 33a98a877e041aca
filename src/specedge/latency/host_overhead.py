"""Host overhead of a stage job: the time a node spends on a job outside its forward passes.

A real serving engine does more per job than its forward passes: it samples and accepts drafts, crops and
compacts KV caches, removes finished rows, serialises and sends the result. Compute traces time passes only, so
a model without this term under-predicts every job by it (issue 10 measured 8–15% of job time on a quiet CPU).
Serving simulators profile it as its own component (Vidur: scheduling, sampling, input preparation, output
processing). Here it is one term per node and job [A]:

    t_host(b, x) = a + s·b + t·b·x                                                                  [A]

- b: the job's batch size (live sequences);
- x: tokens per sequence the job moves: the speculation length l for an SD draft job (l drafts produced and
  sent) and an SD verify job (l drafts checked, one result per sequence sent back), 1 for an AD job [A];
- a (s), s (s per sequence), t (s per token): the scenario parameters ``{sbs,mbs}_job_overhead_s``,
  ``{sbs,mbs}_job_overhead_per_seq_s`` and ``{sbs,mbs}_job_overhead_per_token_s``; the ``paper`` preset keeps
  all six at 0 (the paper's model has no host overhead).

A stage job then takes  T_job = Σ passes T_pass(b, x_p, c_p) + t_host(b, x)  (:mod:`specedge.latency.rounds`
adds the term in every stage-time function, so replay and every optimizer see it).

The constants are *fitted* (:func:`fit_job_overhead`) to a real run's records (:mod:`specedge.serve.dataset`):
per (node, batch, round) job, the measured time outside passes  y = (end − start) − Σ (pass end − pass start),
regressed on [1, b, b·x] by non-negative least squares (:func:`scipy.optimize.lsq_linear`, BVLS). Terms the runs
cannot identify are left out of the fit (kept at 0) and named in ``dropped``: t when every job has the same x
(b·x is then a multiple of b), s and t when every job has the same b.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from specedge.errors import InputError

#: Scenario parameter names of the three constants, per node prefix ("sbs" = draft node, "mbs" = verify node).
PARAM_SUFFIXES = ("job_overhead_s", "job_overhead_per_seq_s", "job_overhead_per_token_s")
NODE_PREFIX = {"draft": "sbs", "verify": "mbs"}


@dataclass(frozen=True)
class JobOverhead:
    """t_host(b, x) = a_s + per_seq_s·b + per_token_s·b·x seconds per job [A] (see the module docstring)."""

    a_s: float = 0.0
    per_seq_s: float = 0.0
    per_token_s: float = 0.0
    source: str = "scenario"

    def __post_init__(self) -> None:
        for name in ("a_s", "per_seq_s", "per_token_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"job overhead {name} must be a finite number >= 0 s, got {value!r}")

    @property
    def is_zero(self) -> bool:
        return self.a_s == 0 and self.per_seq_s == 0 and self.per_token_s == 0

    def job_s(self, batch_size, tokens_per_seq) -> np.ndarray:
        """Seconds of host work of jobs of ``batch_size`` sequences moving ``tokens_per_seq`` tokens each."""
        b = np.asarray(batch_size, dtype=np.float64)
        x = np.asarray(tokens_per_seq, dtype=np.float64)
        return self.a_s + self.per_seq_s * b + self.per_token_s * b * x

    def params(self, node: str) -> dict[str, float]:
        """The scenario parameters that set this overhead on ``node`` ("draft" or "verify")."""
        prefix = NODE_PREFIX[node]
        return {f"{prefix}_{s}": float(v) for s, v in zip(PARAM_SUFFIXES, (self.a_s, self.per_seq_s,
                                                                             self.per_token_s))}

    @classmethod
    def from_params(cls, params, node: str) -> JobOverhead:
        prefix = NODE_PREFIX[node]
        a, s, t = (float(getattr(params, f"{prefix}_{suffix}")) for suffix in PARAM_SUFFIXES)
        return cls(a, s, t, source="scenario")


def job_overhead_s(pred, batch_size, tokens_per_seq) -> np.ndarray | float:
    """The host overhead the compute predictor ``pred`` carries (``pred.job_overhead``), 0 when it has none."""
    ovh = getattr(pred, "job_overhead", None)
    if ovh is None or ovh.is_zero:
        return 0.0
    return ovh.job_s(batch_size, tokens_per_seq)


def with_job_overhead(pred, overhead: JobOverhead | None):
    """``pred`` carrying ``overhead`` (a predictor dataclass with a ``job_overhead`` field); None or a zero
    overhead returns ``pred`` without one."""
    if overhead is None or overhead.is_zero:
        return replace(pred, job_overhead=None) if getattr(pred, "job_overhead", None) is not None else pred
    if not hasattr(pred, "job_overhead"):
        raise InputError(f"compute predictor {type(pred).__name__} has no job_overhead field; it cannot carry a "
                         "host overhead")
    return replace(pred, job_overhead=overhead)


# ------------------------------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class JobOverheadFit:
    """A fitted :class:`JobOverhead` of one node with its fit statistics (values are *fitted*, not measured)."""

    node: str
    overhead: JobOverhead
    r2: float
    num_jobs: int
    median_outside_s: float
    outside_share: float
    dropped: tuple[str, ...] = ()
    residuals_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict:
        o = self.overhead
        return {"node": self.node, "a_s": o.a_s, "per_seq_s": o.per_seq_s, "per_token_s": o.per_token_s,
                "r2": self.r2, "num_jobs": self.num_jobs, "median_outside_s": self.median_outside_s,
                "outside_share": self.outside_share, "dropped": list(self.dropped), "source": o.source,
                "label": "fitted"}


def outside_pass_times(jobs: pd.DataFrame, passes: pd.DataFrame) -> pd.DataFrame:
    """Per job: node, batch, round, batch_size b, tokens per sequence x, job duration and its time outside passes.

    ``jobs``/``passes``: the ``job`` and ``pass`` records of a run (:func:`specedge.serve.dataset.split_records`).
    x is the job's speculation length, or 1 for a job without one (AD).
    """
    need = {"node", "batch", "round", "batch_size", "start_s", "end_s"}
    for name, frame in (("job", jobs), ("pass", passes)):
        missing = sorted(need - set(frame.columns))
        if missing:
            raise InputError(f"{name} records lack column(s) {', '.join(missing)}")
    key = ["node", "batch", "round"]
    inside = (passes.assign(t=passes["end_s"] - passes["start_s"]).groupby(key)["t"].sum())
    j = jobs.set_index(key)
    duration = (j["end_s"] - j["start_s"]).to_numpy(np.float64)
    in_pass = inside.reindex(j.index).fillna(0.0).to_numpy(np.float64)
    if "speculation_length" in j.columns:
        x = pd.to_numeric(j["speculation_length"], errors="coerce").fillna(1).to_numpy(np.float64)
    else:
        x = np.ones(len(j))
    return pd.DataFrame({"node": j.index.get_level_values("node"), "batch": j.index.get_level_values("batch"),
                         "round": j.index.get_level_values("round"),
                         "batch_size": j["batch_size"].to_numpy(np.float64), "tokens_per_seq": x,
                         "job_s": duration, "outside_s": duration - in_pass}).reset_index(drop=True)


def fit_job_overhead(samples: pd.DataFrame, node: str, *, source: str = "fitted") -> JobOverheadFit:
    """Non-negative least squares of outside_s on [1, b, b·x] over ``samples`` rows of ``node`` (the frame of
    :func:`outside_pass_times`, possibly concatenated over several runs)."""
    from scipy.optimize import lsq_linear

    part = samples[samples["node"] == node]
    if part.empty:
        raise InputError(f"no {node} jobs to fit a host overhead to")
    y = part["outside_s"].to_numpy(np.float64)
    b = part["batch_size"].to_numpy(np.float64)
    x = part["tokens_per_seq"].to_numpy(np.float64)
    columns = {"a_s": np.ones_like(b), "per_seq_s": b, "per_token_s": b * x}
    dropped = []
    if np.unique(b).size < 2:
        dropped += ["per_seq_s", "per_token_s"]
    elif np.unique(x).size < 2:
        dropped += ["per_token_s"]
    names = [n for n in columns if n not in dropped]
    design = np.column_stack([columns[n] for n in names])
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    sol = lsq_linear(design / scale, y, bounds=(0.0, np.inf), method="bvls")
    # bvls honours the bound only to rounding (it has returned -5e-20 on a real run's jobs): clip to the bound
    coef = dict(zip(names, np.maximum(sol.x, 0.0) / scale))
    values = {n: float(coef.get(n, 0.0)) for n in columns}
    overhead = JobOverhead(values["a_s"], values["per_seq_s"], values["per_token_s"], source=source)
    residuals = y - overhead.job_s(b, x)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residuals**2)) / ss_tot if ss_tot > 0 else float("nan")
    total = float(part["job_s"].sum())
    return JobOverheadFit(node=node, overhead=overhead, r2=r2, num_jobs=int(len(part)),
                          median_outside_s=float(np.median(y)), outside_share=float(y.sum() / total) if total > 0
                          else float("nan"), dropped=tuple(dropped), residuals_s=residuals)


def fit_run_overheads(parts_list, *, source: str = "fitted") -> dict[str, JobOverheadFit]:
    """{"draft": fit, "verify": fit} over the records of one or more runs (each a dict of record frames; one that
    carries ``"outside"`` — its :func:`outside_pass_times`, computed once by a caller that caches runs — skips the
    recomputation)."""
    samples = pd.concat([p["outside"] if "outside" in p else outside_pass_times(p["job"], p["pass"])
                         for p in parts_list], ignore_index=True)
    return {node: fit_job_overhead(samples, node, source=source) for node in ("draft", "verify")}
