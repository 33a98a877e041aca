"""The result of a replay: per-task table, per-job timeline, summary with confidence intervals, planned vs replayed.

Everything but the makespan is computed on first access, so that optimizers calling :func:`specedge.evaluate`
in a loop pay only for the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from specedge.latency import planning
from specedge.latency.pipeline import autoregressive, pipelined, serial
from specedge.replay.core import PreparedPlan, Run

#: Summary metrics that get a mean and a 95% confidence half-width over replications.
METRICS = ("makespan_s", "upload_makespan_s", "mean_latency_s", "p50_latency_s", "p90_latency_s", "p99_latency_s",
           "mean_ttft_s", "p50_ttft_s", "p99_ttft_s", "mean_tpot_s", "tokens_per_round", "rounds_total",
           "extrapolated_rounds")


def tpot_s(run: Run) -> np.ndarray:
    """Time per output token after the first: (completion - first token) / (tokens - 1); nan for 1-token outputs."""
    out = run.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(out > 1, (run.completion_s - run.first_token_s) / np.maximum(out - 1, 1), np.nan)


def run_metrics(run: Run) -> dict[str, float]:
    lat = run.completion_s
    ttft = run.first_token_s
    tpot = tpot_s(run)
    return {
        "makespan_s": float(lat.max()),
        "upload_makespan_s": float(run.upload_s.max()),
        "mean_latency_s": float(lat.mean()),
        "p50_latency_s": float(np.percentile(lat, 50)),
        "p90_latency_s": float(np.percentile(lat, 90)),
        "p99_latency_s": float(np.percentile(lat, 99)),
        "mean_ttft_s": float(ttft.mean()),
        "p50_ttft_s": float(np.percentile(ttft, 50)),
        "p99_ttft_s": float(np.percentile(ttft, 99)),
        "mean_tpot_s": float(np.nanmean(tpot)) if np.isfinite(tpot).any() else float("nan"),
        "tokens_per_round": float(run.round_tokens.sum() / run.rounds.sum()),
        "rounds_total": float(run.rounds.sum()),
        "extrapolated_rounds": float(run.extrapolated_rounds.sum()),
    }


def ci95_half_width(values: np.ndarray) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (nan for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float("nan")
    if np.all(values == values[0]):
        return 0.0
    from scipy.stats import t

    return float(t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """What :func:`specedge.evaluate` returns.

    ``latency_s``: the makespan (mean over replications). ``tasks``: per-task table of replication 0 (upload_s,
    ready_s, first_token_s, completion_s, latency_s, ttft_s, tpot_s, tokens, rounds, tokens_per_round,
    extrapolated_rounds, batch, speculation_length, planned_rounds, planned_completion_s). ``jobs``: per-(round,
    batch) timeline of replication 0. ``replications``: one row of metrics per replication. ``summary``: means,
    ``*_ci95`` half-widths (replications > 1), planned makespan and its error, extrapolation flag.
    """

    scenario: object = field(repr=False)
    prepared: PreparedPlan = field(repr=False)
    runs: tuple[Run, ...] = field(repr=False)
    acceptance: str = ""

    @property
    def plan(self):
        return self.prepared.plan

    @property
    def mode(self) -> str:
        return self.prepared.mode

    @cached_property
    def latency_s(self) -> float:
        return float(np.mean([r.makespan_s for r in self.runs]))

    @cached_property
    def replications(self) -> pd.DataFrame:
        frame = pd.DataFrame([run_metrics(r) for r in self.runs])
        frame.index.name = "replication"
        return frame

    @cached_property
    def extrapolated(self) -> bool:
        """True if any round was replayed beyond a recorded draft length (extrapolated acceptance)."""
        return any(int(r.extrapolated_rounds.sum()) > 0 for r in self.runs)

    @cached_property
    def planned(self):
        """The plan's timeline under the planning assumption (O_max per batch, L(l, alpha) tokens per round)."""
        sc, prep = self.scenario, self.prepared
        draft, verify = [], []
        for m in range(prep.sizes.size):
            d, v = planning.batch_round_times_s(sc, int(prep.sizes[m]), prep.input_max[m], int(prep.output_max[m]),
                                                int(prep.l_batch[m]), mode="ad" if prep.mode == "ad" else "sd")
            draft.append(d)
            verify.append(v)
        if prep.mode == "ad":
            return autoregressive(prep.ready_s, verify)
        fn = pipelined if prep.mode == "sd-pipeline" else serial
        return fn(prep.ready_s, draft, verify, fronthaul_delay_s=sc.params.fronthaul_delay_s)

    @cached_property
    def summary(self) -> dict:
        reps = self.replications
        out: dict = {"mode": self.mode, "acceptance": self.acceptance, "replications": len(self.runs),
                     "num_tasks": int(self.scenario.num_tasks), "num_batches": int(self.prepared.sizes.size)}
        for name in METRICS:
            out[name] = float(reps[name].mean())
            if len(self.runs) > 1:
                out[f"{name}_ci95"] = ci95_half_width(reps[name].to_numpy())
        planned = self.planned.makespan_s
        out["planned_makespan_s"] = planned
        out["planned_error"] = out["makespan_s"] / planned - 1.0 if planned > 0 else float("nan")
        out["extrapolated"] = self.extrapolated
        return out

    @cached_property
    def tasks(self) -> pd.DataFrame:
        run = self.runs[0]
        prep = self.prepared
        planned_end = self.planned.batch_end_s[run.batch]
        planned_rounds = np.sum(~np.isnan(self.planned.verify_end_s), axis=1)[run.batch]
        return pd.DataFrame({
            "batch": run.batch,
            "speculation_length": prep.l_batch[run.batch],
            "input_tokens": self.scenario.tasks["input_tokens"].to_numpy(),
            "upload_s": run.upload_s,
            "ready_s": run.ready_s,
            "first_token_s": run.first_token_s,
            "completion_s": run.completion_s,
            "latency_s": run.completion_s,
            "ttft_s": run.first_token_s,
            "tpot_s": tpot_s(run),
            "tokens": run.output_tokens,
            "rounds": run.rounds,
            "tokens_per_round": run.round_tokens / run.rounds,
            "extrapolated_rounds": run.extrapolated_rounds,
            "planned_rounds": planned_rounds,
            "planned_completion_s": planned_end,
        })

    @cached_property
    def jobs(self) -> pd.DataFrame:
        r = self.runs[0]
        return pd.DataFrame({
            "round": r.job_round, "batch": r.job_batch, "batch_size": r.job_batch_size,
            "context_tokens": r.job_context, "speculation_length": r.job_l, "draft_s": r.job_draft_s,
            "verify_s": r.job_verify_s, "draft_end_s": r.job_draft_end_s, "verify_end_s": r.job_verify_end_s,
        })

    def to_dict(self, *, include_tasks: bool = False) -> dict:
        """JSON-ready summary (and optionally the per-task table as records)."""
        data = {"latency_s": self.latency_s, "summary": self.summary}
        if include_tasks:
            data["tasks"] = self.tasks.to_dict(orient="records")
        return data
