"""Exact makespans of ``dp-refined``'s plans on every shipped pair (paper preset, alpha 0.8, seed 0) at K = 1000
and K = 10^4, recorded to JSON and compared against an earlier record: a speed change to the search must give
the same or lower makespans.

Run from the repository root:
``.venv/bin/python -m bench.refine_makespans record before.json`` (at the old commit), then
``.venv/bin/python -m bench.refine_makespans compare before.json`` (after the change; exit 1 if any is worse).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.quiet_table import OTHER_PAIRS, PAIRS, _scenario


def makespans(tasks_list=(1000, 10000)) -> dict:
    from specedge.policies import get_policy

    refined = get_policy("dp-refined")
    out = {}
    for tasks in tasks_list:
        for pair in PAIRS + OTHER_PAIRS:
            sc = _scenario(tasks, pair)
            started = time.perf_counter()
            plan = refined.plan(sc)
            wall = time.perf_counter() - started
            out[f"{pair} K={tasks}"] = {"makespan_s": float(plan.meta["exact_makespan_s"]), "wall_s": wall,
                                        "batches": len(plan.batches),
                                        "plan": [[len(b), int(l)] for b, l in
                                                 zip(plan.batches, np.broadcast_to(plan.speculation_length,
                                                                                   (len(plan.batches),)))]}
            row = out[f"{pair} K={tasks}"]
            print(f"{pair} K={tasks}: {row['makespan_s']:.4f} s, {row['batches']} batches, {wall:.2f} s", flush=True)
    return out


def main(argv: list[str]) -> int:
    what, path = argv[0], argv[1]
    tasks = tuple(int(x) for x in argv[2:]) or (1000, 10000)
    now = makespans(tasks)
    if what == "record":
        with open(path, "w") as fh:
            json.dump(now, fh, indent=1)
        return 0
    with open(path) as fh:
        before = json.load(fh)
    worse = 0
    print(f"{'case':<48} {'before s':>12} {'after s':>12} {'change':>10}")
    for key, row in now.items():
        if key not in before:
            continue
        b, a = before[key]["makespan_s"], row["makespan_s"]
        worse += a > b * (1 + 1e-12)
        same = "same plan" if row["plan"] == before[key]["plan"] else "other plan"
        flag = "  WORSE" if a > b * (1 + 1e-12) else ""
        print(f"{key:<48} {b:>12.4f} {a:>12.4f} {(a - b) / b:>+10.2e} {same}{flag}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
