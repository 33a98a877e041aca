"""The paper DP's outputs, recorded and compared bit for bit: a speed change to :func:`specedge.policies.dp.solve`
must return exactly the same plans (bounds, per-batch l) and surrogate costs.

Cases: every shipped pair (paper preset, alpha 0.8, seed 0) at K = 1000 and 10^4 with the per-l DP, the
per-batch-l DP and the serial extra mode in one pass (what ``dp-refined`` asks for), ``paper-dp``'s plan there and
on the paper preset at K = 1000; and 60 random small scenarios (every mode, ``max_batch``, planning outputs,
alpha per l, host overhead, a small SBS memory, predictors hidden from the affine path, per_l off, odd l lists).

Run from the repository root:
``.venv/bin/python -m bench.dp_plans record before.pkl`` (at the old commit), then
``.venv/bin/python -m bench.dp_plans compare before.pkl`` after the change (exit 1 if anything differs).
``--small`` leaves out K = 10^4 (about 30 s in all with it, one quiet core).
"""

from __future__ import annotations

import pickle
import sys

import numpy as np

from bench.quiet_table import OTHER_PAIRS, PAIRS, _scenario


class _Opaque:
    """Hides that a predictor is affine (the DP's generic path)."""

    def __init__(self, inner):
        self.inner, self.model = inner, inner.model

    def latency_s(self, b, x, c):
        return self.inner.latency_s(b, x, c)


def _pack(sol) -> dict:
    return dict(order=sol.order.tolist(), l_values=sol.l_values.tolist(), cost=sol.cost_by_l_s.tolist(),
                bounds=sol.bounds_by_l, per_batch=sol.per_batch, per_batch_cost=sol.per_batch_cost_s,
                extra={m: (c.tolist(), b) for m, (c, b) in sol.extra.items()})


def _random_cases(n_cases: int = 60):
    from specedge.scenario import Scenario

    rng = np.random.default_rng(12345)
    pairs = PAIRS + OTHER_PAIRS
    for n in range(n_cases):
        k, pair = int(rng.integers(1, 70)), pairs[int(rng.integers(len(pairs)))]
        kw = {}
        if rng.random() < 0.3:
            kw.update(sbs_job_overhead_s=0.004, sbs_job_overhead_per_seq_s=0.001, mbs_job_overhead_s=0.01,
                      mbs_job_overhead_per_token_s=0.0005)
        if rng.random() < 0.3 and "smollm2" not in pair and "stdlib" not in pair:
            kw["sbs_memory_bytes"] = float(rng.choice([6e9, 8e9, 1e10]))
        sc = Scenario.from_preset("paper", pair=pair, tasks=k, seed=int(rng.integers(1000)),
                                  alpha=float(rng.choice([0.5, 0.8, 0.95, 1.0])),
                                  output_tokens_max=int(rng.choice([200, 800, 2048])),
                                  input_tokens_max=int(rng.choice([64, 256, 512])), **kw)
        mode = ("sd-pipeline", "sd-serial", "ad")[n % 3]
        opts = dict(mode=mode, per_l=n % 6 != 5, per_batch_l=True)
        if mode != "ad" and n % 2 == 0:
            opts["extra_modes"] = ("sd-serial",) if mode == "sd-pipeline" else ("sd-pipeline", "sd-serial")
        if n % 5 == 1:
            opts["max_batch"] = int(rng.integers(1, 10))
        if n % 7 == 2:
            opts["outputs"] = sc.tasks["output_tokens"].to_numpy() * rng.uniform(0.5, 1.5, k)
        if n % 9 == 4:
            opts["l_values"] = [3, 1, 7]
        if n % 4 == 3 and mode != "ad":
            opts["alpha"] = rng.uniform(0.4, 0.95, len(opts.get("l_values", range(10))))
        if n % 8 == 6:
            object.__setattr__(sc, "draft_compute", _Opaque(sc.draft_compute))
            object.__setattr__(sc, "verify_compute", _Opaque(sc.verify_compute))
        yield ("random", n), sc, opts


def record(large: bool = True) -> dict:
    from specedge.policies import dp

    out = {}
    for tasks in (1000, 10000) if large else (1000,):
        for pair in PAIRS + OTHER_PAIRS:
            sc = _scenario(tasks, pair)
            out[("solve", pair, tasks)] = _pack(dp.solve(sc, per_batch_l=True, extra_modes=("sd-serial",)))
            plan = dp.PaperDP().plan(sc)
            out[("paper-dp", pair, tasks)] = (plan.batches, plan.speculation_length, plan.meta["surrogate_s"])
    plan = dp.PaperDP().plan(_scenario(1000))
    out[("paper-dp", "paper preset", 1000)] = (plan.batches, plan.speculation_length, plan.meta["surrogate_s"])
    for key, sc, opts in _random_cases():
        try:
            out[key] = _pack(dp.solve(sc, **opts))
        except Exception as exc:  # an error is an outcome too: it must stay the same
            out[key] = ("error", type(exc).__name__, str(exc))
    return out


def compare(before: dict, after: dict) -> list[str]:
    """The keys whose outputs differ (plans or costs, bit for bit); keys missing on either side count."""
    return [str(k) for k in sorted(set(before) | set(after), key=str) if before.get(k) != after.get(k)]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("record", "compare"):
        print(__doc__)
        return 2
    after = record(large="--small" not in argv)
    if argv[0] == "record":
        with open(argv[1], "wb") as fh:
            pickle.dump(after, fh)
        print(f"recorded {len(after)} cases to {argv[1]}")
        return 0
    with open(argv[1], "rb") as fh:
        before = pickle.load(fh)
    if "--small" in argv:
        before = {k: v for k, v in before.items() if 10000 not in k}
    bad = compare(before, after)
    print(f"{len(after)} cases, {len(bad)} differ" + "".join(f"\n  {k}" for k in bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
