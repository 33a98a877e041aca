"""The paper's qualitative claims from its five figure sweeps, as checked statements with numbers.

The paper sweeps alpha, the maximum input length, the maximum output length, the number of tasks K and the
uplink bandwidth B (docs/model.md section 7). What it says about each sweep is rebuilt from secondary summaries
[P, as reported]; each statement below is checked by replaying the preset at the sweep's points:

- alpha: SD is faster than AD at every alpha for each pair, and SD's advantage grows with alpha;
- B: the optimal allocation beats the uniform one at every B, and its gain grows as B shrinks;
- K: the latency grows with K;
- max input length: the latency grows with it, and the DP beats heuristic batching at every length;
- max output length: the latency grows with it, and the pipeline beats no pipeline at every length.

"Grows" means non-decreasing from point to point with a tolerance of :data:`MONOTONE_TOL_PCT` percent of the
value [A]. ``change`` numbers are 100 (T_policy / T_baseline - 1), as in :mod:`specedge.experiments`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: Relative slack (percent) allowed in "grows" / "shrinks" [A].
MONOTONE_TOL_PCT = 0.5
PAIR = "tinyllama-1.1b/llama-7b"
PAIRS = ("llama-68m/llama-7b", "tinyllama-1.1b/llama-7b", "tinyllama-1.1b/llama-13b")
ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
BANDWIDTHS_HZ = (10e6, 25e6, 50e6)
TASKS = (30, 60, 100)
INPUT_MAX = (256, 512, 1024, 1792)
OUTPUT_MAX = (512, 1024, 1792)


def _latency(preset, pair, alpha, tasks, seed, policy, overrides) -> float:
    from specedge import experiments as ex

    return ex._run(ex._scenario(preset, pair, alpha, tasks, seed, **overrides), policy).latency_s


def _change(new: float, old: float) -> float:
    return 100.0 * (new / old - 1.0)


def _grows(values) -> bool:
    v = np.asarray(values, dtype=np.float64)
    return bool((np.diff(v) >= -MONOTONE_TOL_PCT / 100.0 * np.abs(v[:-1])).all())


def _fmt(xs, vs, unit: str = "") -> str:
    return ", ".join(f"{x:g}: {v:.3g}{unit}" for x, v in zip(xs, vs))


def _row(sweep, statement, passed, numbers, preset) -> dict:
    return {"preset": preset, "sweep": sweep, "statement": statement, "passed": bool(passed), "numbers": numbers}


def qualitative_claims(preset: str = "paper", *, seed: int = 0, overrides: Mapping | None = None) -> pd.DataFrame:
    """One row per statement: ``sweep``, ``statement``, ``passed``, ``numbers`` (the values it was judged on)."""
    over = dict(overrides or {})
    rows = []
    dp = "paper-dp"
    # alpha: SD vs AD per pair
    for pair in PAIRS:
        ch = [_change(_latency(preset, pair, a, 100, seed, dp, over), _latency(preset, pair, a, 100, seed, "ad", over))
              for a in ALPHAS]
        rows.append(_row("alpha", f"SD is faster than AD at every α ({pair})", all(c < 0 for c in ch),
                         "SD vs AD, % by α: " + _fmt(ALPHAS, ch, "%"), preset))
        rows.append(_row("alpha", f"SD's advantage over AD grows with α ({pair})", _grows([-c for c in ch]),
                         "SD vs AD, % by α: " + _fmt(ALPHAS, ch, "%"), preset))
    # bandwidth: optimal vs uniform, 68M/7B
    pair = PAIRS[0]
    opt = [_latency(preset, pair, 0.8, 100, seed, dp, {**over, "bandwidth_hz": b}) for b in BANDWIDTHS_HZ]
    uni = [_latency(preset, pair, 0.8, 100, seed, "uniform-bandwidth", {**over, "bandwidth_hz": b})
           for b in BANDWIDTHS_HZ]
    gain = [_change(o, u) for o, u in zip(opt, uni)]
    mhz = [b / 1e6 for b in BANDWIDTHS_HZ]
    rows.append(_row("bandwidth", f"the optimal allocation beats the uniform one at every B ({pair})",
                     all(g < 0 for g in gain), "optimal vs uniform, % by B (MHz): " + _fmt(mhz, gain, "%"), preset))
    rows.append(_row("bandwidth", f"the optimal allocation's gain grows as B shrinks ({pair})",
                     _grows([-g for g in gain][::-1]), "optimal vs uniform, % by B (MHz): " + _fmt(mhz, gain, "%"),
                     preset))
    # K
    lat = [_latency(preset, PAIR, 0.8, k, seed, dp, over) for k in TASKS]
    rows.append(_row("tasks", f"the latency grows with K ({PAIR})", _grows(lat),
                     "DP latency, s by K: " + _fmt(TASKS, lat, " s"), preset))
    # max input
    lat = [_latency(preset, PAIR, 0.8, 100, seed, dp, {**over, "input_tokens_max": i}) for i in INPUT_MAX]
    heur = [_latency(preset, PAIR, 0.8, 100, seed, "heuristic-batching", {**over, "input_tokens_max": i})
            for i in INPUT_MAX]
    rows.append(_row("input length", f"the latency grows with the maximum input length ({PAIR})", _grows(lat),
                     "DP latency, s by max input: " + _fmt(INPUT_MAX, lat, " s"), preset))
    ch = [_change(d, h) for d, h in zip(lat, heur)]
    rows.append(_row("input length", f"the DP beats heuristic batching at every maximum input length ({PAIR})",
                     all(c < 0 for c in ch), "DP vs heuristic, % by max input: " + _fmt(INPUT_MAX, ch, "%"),
                     preset))
    # max output
    lat = [_latency(preset, PAIR, 0.8, 100, seed, dp, {**over, "output_tokens_max": o}) for o in OUTPUT_MAX]
    ser = [_latency(preset, PAIR, 0.8, 100, seed, "sd-serial", {**over, "output_tokens_max": o}) for o in OUTPUT_MAX]
    rows.append(_row("output length", f"the latency grows with the maximum output length ({PAIR})", _grows(lat),
                     "DP latency, s by max output: " + _fmt(OUTPUT_MAX, lat, " s"), preset))
    ch = [_change(p, s) for p, s in zip(lat, ser)]
    rows.append(_row("output length", f"the pipeline beats no pipeline at every maximum output length ({PAIR})",
                     all(c < 0 for c in ch), "pipeline vs no pipeline, % by max output: "
                     + _fmt(OUTPUT_MAX, ch, "%"), preset))
    return pd.DataFrame(rows)
