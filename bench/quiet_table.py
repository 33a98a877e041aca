"""One quiet-machine check of issue 14's numbers, printed as a table (about 2-3 minutes on one quiet core):

- the contract: ``specedge.optimize(sc)`` / ``specedge.optimize(sc, "paper-dp")``, paper preset, K = 1000
  (ratio of minima of 5 interleaved calls each; contract <= 3);
- ``dp-refined`` on every shipped pair at K = 1000 (minima of 3 interleaved calls) and K = 10^4 (1 call each;
  the paper's three pairs, Qwen3 and SmolLM2; the other shipped card pairs at K = 1000 only):
  time, ``paper-dp``'s time beside it and the ratio, the call's own peak allocation (tracemalloc), the exact
  makespan (goals: <= 300 ms / <= 150 MB at K = 1000, <= 5 s / <= 1 GB at K = 10^4);
- replay over the per-event reference (bench/reference_replay.py) at K = 10, 100 and 10^4 (goal >= 50x):
  interleaved samples of ~10 ms (3 repeats; 1 at K = 10^4, where the reference takes about a minute).

Run from the repository root: ``.venv/bin/python -m bench.quiet_table`` (``--skip-large`` leaves out K = 10^4).
"""

from __future__ import annotations

import sys
import time

PAIRS = ("llama-68m/llama-7b", "tinyllama-1.1b/llama-7b", "tinyllama-1.1b/llama-13b")
#: Other shipped model cards that pair up on the paper preset (the recorded and served pairs, and Qwen3).
OTHER_PAIRS = ("qwen3-1.7b/qwen3-32b", "smollm2-draft-7.1m/smollm2-135m", "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m")


def _scenario(tasks: int, pair: str | None = None):
    from specedge.scenario import Scenario

    if pair is None:
        return Scenario.from_preset("paper", tasks=tasks, seed=0)
    return Scenario.from_preset("paper", pair=pair, alpha=0.8, tasks=tasks, seed=0)


def main(argv: list[str]) -> int:
    import specedge
    from bench.measure import interleaved_minima, traced_peak_mib
    from bench.reference_replay import reference_replay
    from bench.replay import make_case
    from specedge import evaluate
    from specedge.policies import get_policy

    large = "--skip-large" not in argv
    started = time.perf_counter()
    rows = []
    warm = _scenario(20)
    specedge.optimize(warm), specedge.optimize(warm, "paper-dp")
    sc = _scenario(1000)
    t_def, t_dp = interleaved_minima([lambda: specedge.optimize(sc), lambda: specedge.optimize(sc, "paper-dp")], 5)
    rows.append(("contract optimize(sc)/optimize(sc, 'paper-dp'), paper, K=1000", f"{t_def / t_dp:.2f}x",
                 f"default {t_def * 1e3:.0f} ms, paper-dp {t_dp * 1e3:.0f} ms", "<= 3x"))
    refined, paper = get_policy("dp-refined"), get_policy("paper-dp")
    cases = [(1000, pair) for pair in PAIRS + OTHER_PAIRS]
    if large:
        cases += [(10000, pair) for pair in PAIRS + OTHER_PAIRS[:2]]
    for tasks, pair in cases:
        refined.plan(_scenario(20, pair))
        sc = _scenario(tasks, pair)
        t_ref, t_dp = interleaved_minima([lambda: refined.plan(sc), lambda: paper.plan(sc)],
                                         3 if tasks <= 1000 else 1)
        made = []
        mib = traced_peak_mib(lambda: made.append(refined.plan(sc)))
        ms = made[0].meta["exact_makespan_s"]
        goal = "<= 300 ms, <= 150 MB" if tasks <= 1000 else "<= 5 s, <= 1 GB"
        rows.append((f"dp-refined {pair}, K={tasks}", f"{t_ref:.3f} s, {mib:.0f} MiB",
                     f"paper-dp {t_dp:.3f} s ({t_ref / t_dp:.1f}x); makespan {ms:.2f} s", goal))
    for tasks in (10, 100, 10000) if large else (10, 100):
        sc, plan = make_case(tasks)
        evaluate(sc, plan)
        t_ref, t_fast = interleaved_minima([lambda: reference_replay(sc, plan), lambda: evaluate(sc, plan)],
                                           1 if tasks >= 10000 else 3, sample_s=0.01)
        rows.append((f"replay vs per-event reference, K={tasks}", f"{t_ref / t_fast:.0f}x",
                     f"reference {t_ref * 1e3:.1f} ms, replay {t_fast * 1e3:.3f} ms", ">= 50x"))
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>18}  goal {r[3]:<22} {r[2]}")
    print(f"(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
