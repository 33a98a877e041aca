"""Per-request and aggregate metrics of an online run.

Per request k (arrival a_k, upload end u_k, first round start s_k, first token f_k, completion e_k, O_k tokens):
upload = u_k - a_k; queueing = s_k - u_k; TTFT = f_k - a_k; TPOT = (e_k - f_k) / (O_k - 1) (NaN for O_k = 1, and
such a request meets any TPOT target); e2e = e_k - a_k. Aggregates: p50/p90/p99 of each; throughput = sum O_k /
duration with duration = max e_k - min a_k; SLO attainment = share of requests with TTFT <= ``ttft_slo_s`` and
TPOT <= ``tpot_slo_s``; goodput = requests meeting both per second of duration (DistServe's definition); node
utilisation = busy time / duration (SBS: drafting, MBS: verification); ``ad_round_share`` = rounds run without
speculation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge.online.engine import OnlineRun

PERCENTILES = (50, 90, 99)


def requests(run: OnlineRun) -> pd.DataFrame:
    w = run.workload
    out = w.output_tokens.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (run.completion_s - run.first_token_s) / np.maximum(out - 1, 1), np.nan)
    return pd.DataFrame({
        "arrival_s": w.arrival_s, "input_tokens": w.input_tokens, "output_tokens": w.output_tokens,
        "upload_s": run.upload_end_s - w.arrival_s, "queueing_s": run.start_s - run.upload_end_s,
        "ttft_s": run.first_token_s - w.arrival_s, "tpot_s": tpot, "e2e_s": run.completion_s - w.arrival_s,
        "rounds": run.rounds, "slot": run.slot,
    })


def summarize(run: OnlineRun) -> dict:
    """The aggregate metrics (see the module docstring) as a flat JSON-ready dict."""
    w = run.workload
    req = requests(run)
    cfg = run.config
    duration = float(run.completion_s.max() - w.arrival_s.min())
    tpot = req["tpot_s"].to_numpy()
    ok = (req["ttft_s"].to_numpy() <= cfg.ttft_slo_s) & (np.isnan(tpot) | (tpot <= cfg.tpot_slo_s))
    out: dict = {"policy": run.policy, "requests": int(w.num_requests), "workload": w.name,
                 "offered_rate_rps": w.offered_rate_rps, "duration_s": duration,
                 "throughput_tokens_per_s": float(w.output_tokens.sum() / duration) if duration > 0 else float("nan"),
                 "throughput_rps": float(w.num_requests / duration) if duration > 0 else float("nan")}
    for col in ("upload_s", "queueing_s", "ttft_s", "tpot_s", "e2e_s"):
        vals = req[col].to_numpy()
        vals = vals[np.isfinite(vals)]
        base = col[:-2]
        out[f"{base}_mean_s"] = float(vals.mean()) if vals.size else float("nan")
        for q in PERCENTILES:
            out[f"{base}_p{q}_s"] = float(np.percentile(vals, q)) if vals.size else float("nan")
    out.update({
        "ttft_slo_s": cfg.ttft_slo_s, "tpot_slo_s": cfg.tpot_slo_s, "slo_attainment": float(ok.mean()),
        "goodput_rps": float(ok.sum() / duration) if duration > 0 else float("nan"),
        "sbs_utilisation": run.sbs_busy_s / duration if duration > 0 else float("nan"),
        "mbs_utilisation": run.mbs_busy_s / duration if duration > 0 else float("nan"),
        "jobs": run.jobs, "mean_batch_size": run.member_rounds / max(run.jobs, 1),
        "tokens_per_member_round": float(w.output_tokens.sum() / max(run.member_rounds, 1)),
        "ad_round_share": float(run.l_histogram[0] / max(run.l_histogram.sum(), 1)),
        "mean_speculation_length": float((np.arange(run.l_histogram.size) * run.l_histogram).sum()
                                         / max(run.l_histogram.sum(), 1)),
    })
    return out
