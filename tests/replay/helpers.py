"""Small scenarios, plans and trace frames for the replay tests (no trace store needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge import Scenario


def small_scenario(k: int = 12, *, seed: int = 0, output_max: int = 160, input_max: int = 64, **kw) -> Scenario:
    return Scenario.from_preset("paper", tasks=k, seed=seed, output_tokens_max=output_max,
                                input_tokens_max=input_max, **kw)


def sorted_plan(sc: Scenario, num_batches: int, l=4, mode: str = "sd-pipeline", bandwidth: str = "uniform") -> dict:
    order = np.argsort(sc.tasks["input_tokens"].to_numpy(), kind="stable")
    bw = sc.uniform_bandwidth_hz() if bandwidth == "uniform" else sc.optimal_bandwidth_hz()
    return {"batches": [a.tolist() for a in np.array_split(order, num_batches)], "speculation_length": l,
            "bandwidth_hz": bw.tolist(), "mode": mode}


def trace_frame(num_requests: int = 6, rounds: int = 40, drafted: int = 6, alpha: float = 0.75,
                seed: int = 1) -> pd.DataFrame:
    """A recorded-looking acceptance frame: geometric acceptance truncated at ``drafted``."""
    rng = np.random.default_rng(seed)
    g = np.floor(np.log1p(-rng.random((num_requests, rounds))) / np.log(alpha)).astype(int)
    acc = np.minimum(g, drafted)
    req = np.repeat([f"r{i}" for i in range(num_requests)], rounds)
    return pd.DataFrame({"dataset": "test", "request_id": req, "turn": 0, "round": np.tile(np.arange(rounds),
                         num_requests), "drafted": drafted, "accepted": acc.ravel(), "prompt_tokens": 10,
                         "temperature": 0.0, "wall_ms": np.nan})


def aggregate_frame() -> pd.DataFrame:
    return pd.DataFrame({"drafted": [5] * 6, "accepted": [0, 1, 2, 3, 4, 5], "count": [30, 20, 15, 10, 8, 17]})
