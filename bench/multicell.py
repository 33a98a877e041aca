"""asv benchmarks: several cells sharing a verifier (specedge.multicell.online) on the online engine.

Target (issue 13, one core): 16 cells x 10^4 requests each in <= 30 s. The case: the ``multi-cell`` preset repeated
to N cells (RTX 3080 / Jetson AGX Orin / RTX 4500 SBSs, LLaMA-68M / TinyLlama-1.1B drafts, one RTX 4500 Ada MBS),
Poisson arrivals at 0.02 requests/s per cell, FCFS continuous batching at l = 4, FCFS verifier. The compiled driver
(:mod:`specedge.multicell.fast`) advances the cells one job at a time through the online kernel, so its time grows
with the number of jobs (about 70 per request at this load); ``track_us_per_job`` reports that cost.

The target case once, from the repository root: ``PYTHONPATH=. python -m bench.multicell 16 10000``.
"""

from __future__ import annotations

import time


def make_case(cells: int, requests: int, seed: int = 0):
    from specedge.multicell import online as mco
    from specedge.multicell.topology import load_topology

    topo = load_topology("multi-cell").with_num_cells(cells)
    scs = tuple(topo.cell_scenario(c, seed=seed, tasks=1) for c in range(cells))
    return topo, scs, mco.workloads(topo, rate_rps=0.02, num_requests=requests, seed=seed, scenarios=scs)


def run(topo, scs, ws, verifier_policy: str = "fcfs"):
    from specedge.multicell import online as mco

    return mco.simulate(topo, ws, "fcfs", verifier_policy=verifier_policy, scenarios=scs)


class TimeMultiCell:
    params = ([4, 16], [100, 10000])
    param_names = ["cells", "requests_per_cell"]
    timeout = 1800

    def setup(self, cells, requests):
        self.case = make_case(cells, requests)
        run(*make_case(1, 5))  # compile outside the timing

    def time_multicell(self, cells, requests):
        run(*self.case)


class TrackMultiCell:
    params = (["fcfs", "pipeline-aware"],)
    param_names = ["verifier_policy"]
    unit = "us/job"
    timeout = 600

    def setup(self, verifier_policy):
        self.case = make_case(4, 200)
        run(*make_case(1, 5))

    def track_us_per_job(self, verifier_policy):
        t0 = time.perf_counter()
        result = run(*self.case, verifier_policy=verifier_policy)
        return (time.perf_counter() - t0) / sum(r.jobs for r in result.runs) * 1e6


if __name__ == "__main__":
    import sys

    cells, requests = (int(v) for v in sys.argv[1:3])
    run(*make_case(1, 5))  # compile outside the timing
    case = make_case(cells, requests)
    t0 = time.perf_counter()
    result = run(*case)
    elapsed = time.perf_counter() - t0
    jobs = sum(r.jobs for r in result.runs)
    print(f"{cells} cells x {requests} requests: {elapsed:.1f} s, {jobs} jobs, {elapsed / jobs * 1e6:.2f} us/job")
