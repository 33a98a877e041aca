"""The newer report figures (online, multicell, fidelity, acceptance models, claims tornado) keep the report's
figure standard (issue 15): at most the page's width cap, policies in their report-wide palette colour, and
non-policy series in colours that no policy has."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from specedge.report import palette
from specedge.report.figures import MAX_WIDTH_IN

matplotlib.use("Agg")
POLICY_COLOURS = {s.colour for s in palette.POLICY_STYLES.values()}


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def _width_ok(fig):
    assert fig.get_size_inches()[0] <= MAX_WIDTH_IN + 1e-9


def test_palette_styles_are_all_distinct_and_never_handed_out_by_hash():
    colours = [s.colour for s in palette.POLICY_STYLES.values()]
    assert len(set(colours)) == len(colours)
    assert not POLICY_COLOURS & set(palette.EXTRA_COLOURS)


def test_online_figure_draws_each_policy_in_its_palette_colour_within_the_cap():
    from specedge.report import online_section

    rows = []
    for regime in ("uplink-bound", "verifier-bound"):
        for k, pol in enumerate(online_section.POLICIES):
            for rate in (0.1, 0.5, 1.0):
                v = 1.0 + k + rate
                rows.append({"regime": regime, "policy": pol, "rate_rps": rate, "ttft_p50_s": v, "ttft_p99_s": 2 * v,
                             "tpot_p50_s": 0.01 * v, "e2e_p50_s": v, "e2e_p99_s": 2 * v, "goodput_rps": rate / v,
                             "slo_attainment": 1 / v, "mean_speculation_length": 3.0})
    fig, _ = online_section.figure(pd.DataFrame(rows))
    _width_ok(fig)
    for ax in fig.axes:
        got = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()
               if line.get_label() in online_section.POLICIES}
        assert got == {p: palette.colour(p) for p in online_section.POLICIES}
    _close(fig)


def test_multicell_figure_draws_ad_in_its_palette_colour_within_the_cap():
    from specedge.report import multicell_section as m

    online = pd.DataFrame({"verifier_policy": ["fcfs", "round-robin", "(AD serving)"],
                           "speculation_length": [2, 2, 0], "e2e_p50_s": [50.0, 60.0, 140.0],
                           "energy_j_per_token": [1.6, 1.5, 1.2], "pareto": [True, False, True]})
    dip = pd.DataFrame({"scheme": ["sd-greedy", "sd-greedy", "dip-sd", "ad-greedy", "ad"],
                        "speculation_length": [1, 2, 2, 0, 0], "tpot_s": [0.05, 0.06, 0.04, 0.05, 0.7],
                        "energy_j_per_token": [1.8, 2.0, 3.0, 1.5, 18.0], "pareto": [False, False, True, True, False]})
    fig, _ = m.figure(online, dip, 16)
    _width_ok(fig)
    a, b = fig.axes[:2]
    ad_a = [c for c in a.collections if c.get_label() == "AD serving"]
    ad_b = [c for c in b.collections if c.get_label() == "ad"]
    assert ad_a and ad_b
    for coll in ad_a + ad_b:
        assert to_hex(coll.get_facecolor()[0]) == palette.colour("ad")
    _close(fig)


def test_fidelity_colours_a_policy_plan_by_its_policy_and_hand_plans_by_no_policy_colour():
    from specedge.fidelity.report import _plan_colours

    def run(policy, sizes, ls):
        return SimpleNamespace(run={"policy": policy, "plan": {"batch_sizes": sizes, "speculation_length": ls}})

    colours = _plan_colours([run("dp-refined", [10, 14], [4, 5]), run(None, [4, 4], [2, 2]),
                             run(None, [2, 2, 2], [3, 3, 3])])
    assert colours["dp-refined · 10+14 l=4,5"] == palette.colour("dp-refined")
    hand = [colours["2×4 l=2"], colours["3×2 l=3"]]
    assert len(set(hand)) == 2 and not set(hand) & POLICY_COLOURS


def test_fidelity_hand_plan_colours_stay_apart_from_the_figure_s_policy_colours():
    """static-batching's green (#2ca02c) and a hand plan in the spare #31a354 read as one plan: a hand plan's colour
    keeps MIN_COLOUR_DISTANCE from every colour already in the figure."""
    import numpy as np
    from matplotlib.colors import to_rgb

    from specedge.fidelity.report import MIN_COLOUR_DISTANCE, _plan_colours

    def run(policy, sizes, ls):
        return SimpleNamespace(run={"policy": policy, "plan": {"batch_sizes": sizes, "speculation_length": ls}})

    runs = [run(p, [3] * 8, [4]) for p in ("static-batching", "dp-refined", "heuristic-batching", "no-batching")]
    runs += [run(None, [k] * (24 // k), [k % 5 + 1]) for k in (2, 4, 6, 12)]
    colours = _plan_colours(runs)
    rgb = {label: np.array(to_rgb(c)) for label, c in colours.items()}
    hand = [label for label in colours if " · " not in label]
    assert len(hand) == 4 and len({colours[h] for h in hand}) == 4
    for h in hand:
        for other, c in rgb.items():
            if other != h:
                assert np.linalg.norm(rgb[h] - c) >= MIN_COLOUR_DISTANCE, (h, other)


def test_acceptance_model_and_tornado_colours_are_no_policy_colour_and_fit_the_cap():
    from specedge.claims import figures as cfig
    from specedge.report import acceptance_models as am

    assert not set(am.MODEL_COLOURS.values()) & POLICY_COLOURS
    assert not set(cfig.FACTOR_COLOURS.values()) & POLICY_COLOURS
    claims = [f"claim {i}" for i in range(11)]
    sens = pd.DataFrame([{"claim": c, "parameter": f"p{j}", "factor": f, "change_pp": (j - 3) * (1 if f == "x2" else -1)}
                         for c in claims for j in range(12) for f in ("x0.5", "x2")])
    fig, data = cfig.tornado(sens)
    _width_ok(fig)
    bars = {to_hex(p.get_facecolor()) for ax in fig.axes for p in ax.patches}
    assert bars == set(cfig.FACTOR_COLOURS.values())
    _close(fig)
    rng = np.random.default_rng(0)
    summary = pd.DataFrame([{"dataset": f"d{i}", "model": m, "tau": 2.0 + i, "makespan_error_at_l_opt_trace_pct":
                             rng.normal(), "regret_pct": 0.0, "l_opt_model": 3, "l_opt_trace": 3,
                             "trace_ci95_pct": 1.0} for i in range(4) for m in (am.MODEL_IID, am.MODEL_POSITIONAL)])
    fig, _ = am.figure(summary, pd.DataFrame())
    _width_ok(fig)
    _close(fig)
