"""asv benchmarks: the online engine (specedge.online) and its pure-Python reference (bench/reference_online.py).

Target on one core: 10^5 requests in <= 10 s, and >= 20x the reference on the same case. The case: the paper
preset (LLaMA-68M/7B, expected acceptance alpha = 0.8), Poisson arrivals, FCFS continuous batching at l = 4, 4 slots
of up to 32, equal-share uplink. ``LOADS`` labels the arrival rate: ``light`` 0.1 requests/s (the MBS about 70 %
busy) and ``heavy`` 0.4 requests/s (saturated: the queue grows, batches fill). The reference is timed on 300
requests (it scans lists per admission); ``track_speedup`` reports engine/reference time per request on that case.
"""

from __future__ import annotations

import time

LOADS = {"light": 0.1, "heavy": 0.4}


def make_case(num_requests: int, load: str, seed: int = 0):
    from specedge import Scenario
    from specedge.online import synthetic

    sc = Scenario.from_preset("paper", pair="llama-68m/llama-7b", tasks=1, seed=seed)
    return sc, synthetic(sc.params, rate_rps=LOADS[load], num_requests=num_requests, seed=seed)


def run_engine(sc, w):
    from specedge.online import OnlineConfig, simulate
    from specedge.online.policies import FCFS

    return simulate(sc, w, FCFS(speculation_length=4), OnlineConfig(num_slots=4, max_batch_size=32))


def run_reference(sc, w, run):
    import numpy as np

    from bench import reference_online as ref

    order = np.argsort(run.upload_end_s, kind="stable")
    return ref.simulate(sc, w.arrival_s[order].tolist(), w.input_tokens[order].tolist(),
                        w.output_tokens[order].tolist(), run.upload_end_s[order].tolist(), num_slots=4,
                        max_batch=32, l=4)


class TimeOnline:
    params = ([1000, 100000], list(LOADS))
    param_names = ["requests", "load"]
    timeout = 300

    def setup(self, n, load):
        self.sc, self.w = make_case(n, load)
        run_engine(*make_case(50, load))  # compile outside the timing

    def time_engine(self, n, load):
        run_engine(self.sc, self.w)

    def peakmem_engine(self, n, load):
        run_engine(self.sc, self.w)


class TimeReference:
    params = (list(LOADS),)
    param_names = ["load"]
    timeout = 600

    def setup(self, load):
        self.sc, self.w = make_case(300, load)
        self.run = run_engine(self.sc, self.w)

    def time_reference(self, load):
        run_reference(self.sc, self.w, self.run)


def track_speedup(load="heavy"):
    """Reference time / engine time on 300 requests (one run each after compilation)."""
    sc, w = make_case(300, load)
    run = run_engine(sc, w)
    t0 = time.perf_counter()
    run = run_engine(sc, w)
    t_engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_reference(sc, w, run)
    return (time.perf_counter() - t0) / t_engine


track_speedup.params = (list(LOADS),)
track_speedup.param_names = ["load"]
track_speedup.unit = "x"
