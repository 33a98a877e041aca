"""An example of a policy in a file of one's own: no package, no registration needed.

Use it with ``specedge optimize --policy policies/examples/my_policy.py:ShortestOutputFirst`` or from a preset
(``policies/examples/my-policy.toml``). A policy is any class with ``plan(scenario) -> specedge.plan.Plan``;
its constructor's keyword arguments are its parameters.

This one groups tasks by output length instead of input length (shortest outputs first), so that members of a
batch finish at similar rounds, in ``num_batches`` equal batches, at one speculation length ``l``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.plan import Plan


@dataclass(frozen=True)
class ShortestOutputFirst:
    num_batches: int = 4
    l: int = 4

    def plan(self, scenario) -> Plan:
        order = np.argsort(scenario.tasks["output_tokens"].to_numpy(), kind="stable")
        groups = [g for g in np.array_split(order, min(self.num_batches, order.size)) if g.size]
        return Plan(
            batches=tuple(tuple(int(i) for i in g) for g in groups),
            speculation_length=(int(self.l),) * len(groups),
            bandwidth_hz=tuple(scenario.optimal_bandwidth_hz()),
            mode="sd-pipeline",
            meta={"policy": "shortest-output-first"},
        )
