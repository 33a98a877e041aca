"""Hypothesis: specedge's best optimizer never loses to a baseline it can express, on the same scenario."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specedge import evaluate
from specedge.policies import DEFAULT_POLICY, get_policy
from tests.policies.helpers import PAIRS, small

#: Baselines whose plans the refined DP can express: contiguous batches of the input-sorted tasks, pipelined, with
#: the closed-form bandwidth (optimal for the paper's all-uploads release), or plans whose pipelined version is no
#: slower (sd-serial). Not expressible: AD (another mode), static batching (arrival order).
EXPRESSIBLE = ("paper-dp", "dp-per-batch-l", "fixed-l", "no-batching", "max-batching", "heuristic-batching",
               "uniform-bandwidth", "sd-serial")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 8), seed=st.integers(0, 10_000), pair=st.sampled_from(PAIRS),
       alpha=st.sampled_from([0.5, 0.7, 0.8, 0.9]), output_max=st.sampled_from([60, 300, 900]))
def test_best_never_loses_to_an_expressible_baseline(k, seed, pair, alpha, output_max):
    sc = small(k, seed=seed, pair=pair, alpha=alpha, output_max=output_max)
    best = evaluate(sc, get_policy(DEFAULT_POLICY).plan(sc)).latency_s
    for name in EXPRESSIBLE:
        other = evaluate(sc, get_policy(name).plan(sc)).latency_s
        assert best <= other * (1 + 1e-9), (name, best, other)
