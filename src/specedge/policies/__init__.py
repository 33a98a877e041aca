"""Serving policies: a scenario in, a plan out (batches, speculation length per batch, bandwidth, mode).

>>> import specedge
>>> sc = specedge.Scenario.from_preset("paper", tasks=8, seed=0)
>>> plan = specedge.optimize(sc, policy="paper-dp")
>>> sorted(i for b in plan.batches for i in b) == list(range(8))
True

Built-in policies (see the README section "Policies"): the paper's baselines (:mod:`.baselines`), the paper's
optimizer and the per-batch-l DP (:mod:`.dp`), the exact-makespan refinement (:mod:`.refine`, the default),
trace-aware planning (:mod:`.trace_aware`), adaptive l (:mod:`.adaptive`) and the exhaustive oracle
(:mod:`.oracle`). Add one with :func:`register_policy`, an entry point, a ``file.py:Class`` or a TOML preset
(:mod:`.base`).
"""

from __future__ import annotations

from specedge.policies.base import (
    BUILTINS,
    DEFAULT_POLICY,
    ENTRY_POINT_GROUP,
    Policy,
    PolicyPreset,
    available_policies,
    available_presets,
    get_policy,
    load_preset,
    policy_name,
    register_policy,
    replay,
)

__all__ = ["BUILTINS", "DEFAULT_POLICY", "ENTRY_POINT_GROUP", "Policy", "PolicyPreset", "available_policies",
           "available_presets", "get_policy", "load_preset", "optimize", "policy_name", "register_policy", "replay"]


def optimize(scenario, policy=None, **params):
    """The plan of ``policy`` (a name, ``file.py:Class``, preset, class or instance; default specedge's best,
    :data:`DEFAULT_POLICY`) for ``scenario``; keyword arguments are the policy's parameters."""
    from specedge.errors import PolicyError
    from specedge.plan import Plan

    pol = get_policy(policy, **params)
    plan = pol.plan(scenario)
    if isinstance(plan, dict):
        plan = Plan.from_dict(plan, source=f"plan of policy {policy_name(pol)!r}")
    if not isinstance(plan, Plan):
        raise PolicyError(f"policy {policy_name(pol)!r} returned {type(plan).__name__}, not a specedge.plan.Plan")
    plan.validate(scenario.num_tasks)
    return plan.with_scenario(scenario)  # the plan records what it was made for (specedge.plan.scenario_record)
