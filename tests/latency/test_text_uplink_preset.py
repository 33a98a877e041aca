"""The text-uplink preset: the paper's setting with 16-bit token ids as the upload payload."""

from __future__ import annotations

import numpy as np

from specedge import Plan, Scenario, evaluate


def _one_batch_plan(sc: Scenario, bandwidth_hz: np.ndarray) -> Plan:
    order = np.argsort(sc.tasks["input_tokens"].to_numpy(), kind="stable")
    return Plan(batches=(tuple(int(i) for i in order),), speculation_length=(4,), bandwidth_hz=tuple(bandwidth_hz))


def test_text_payload_is_sixteen_bits_per_token_and_inherits_the_rest():
    paper = Scenario.from_preset("paper", tasks=20, seed=3)
    text = Scenario.from_preset("text-uplink", tasks=20, seed=3)
    assert np.array_equal(text.tasks["payload_bits"], 16.0 * text.tasks["input_tokens"])
    assert text.bandwidth_hz == paper.bandwidth_hz
    assert np.array_equal(text.tasks["input_tokens"], paper.tasks["input_tokens"])


def test_bandwidth_allocation_barely_matters_with_a_text_payload():
    def gain(preset: str) -> float:
        sc = Scenario.from_preset(preset, tasks=30, seed=1)
        uniform = evaluate(sc, _one_batch_plan(sc, sc.uniform_bandwidth_hz())).latency_s
        optimal = evaluate(sc, _one_batch_plan(sc, sc.optimal_bandwidth_hz())).latency_s
        assert optimal <= uniform
        return 1 - optimal / uniform

    assert gain("text-uplink") < 0.001   # milliseconds of upload against seconds of compute
    assert gain("paper") > 0.10          # the calibrated payload makes the upload dominate
