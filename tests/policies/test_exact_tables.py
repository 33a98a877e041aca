"""The exact makespan's flat stage tables (ExactMakespan._add via exact_kernel.live_cells) against the replay where
the per-cell details matter: many members of one batch finishing in the same round with a large downlink (the
round's tail is the largest remaining download among them), and the rounds, ready times and summed stage times
of each built batch; the move kernel's early-stop bounds (running sums, switch bound) never exceed a move's own
makespan."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specedge import evaluate
from specedge.policies import dp
from specedge.policies.exact import ExactMakespan
from specedge.policies.incremental import Tables, edits
from specedge.policies.refine import _time_moves
from tests.policies.helpers import PAIRS, small

EXTRAS = [{}, {"fronthaul_delay_s": 0.02}, {"release": "batch-uploads", "downlink_s_per_token": 0.003}]


def _replayed(sc, order, bw, plan, mode):
    return evaluate(sc, dp.make_plan(sc, order, [(j, i) for j, i, _ in plan], [l for *_, l in plan], bw,
                                     mode)).latency_s


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", ["sd-pipeline", "ad"])
def test_downlink_tail_of_members_finishing_together_equals_the_replay(seed, mode):
    sc = small(12, seed=seed, pair=PAIRS[seed % 3], output_max=40, release="batch-uploads",
               downlink_s_per_token=0.05)
    order = dp.sorted_order(sc)
    bw = sc.uniform_bandwidth_hz() if seed % 2 else sc.optimal_bandwidth_hz()  # uniform: unequal uploads
    ev = ExactMakespan(sc, order, bw, mode)
    plans = [((0, 12, 2),), ((0, 12, 5),), ((0, 5, 3), (5, 12, 4)), ((0, 1, 1), (1, 12, 6))]
    got = ev.makespans(plans)
    via_tables = Tables(ExactMakespan(sc, order, bw, mode)).plans(plans)
    for plan, ms, ms_tables in zip(plans, got, via_tables):
        want = _replayed(sc, order, bw, plan, mode)
        assert ms == pytest.approx(want, rel=1e-9)
        assert ms_tables == pytest.approx(want, rel=1e-9)


def test_row_tables_match_each_batch():
    sc = small(9, seed=3, pair=PAIRS[1], output_max=120, release="batch-uploads")
    order = dp.sorted_order(sc)
    ev = ExactMakespan(sc, order, sc.uniform_bandwidth_hz(), "sd-pipeline")  # unequal uploads
    assert np.ptp(ev.upload) > 0
    keys = [(0, 9, 4), (2, 5, 1), (4, 5, 7), (0, 3, 4)]
    Tables(ev).row_ids(keys)
    outs = sc.tasks["output_tokens"].to_numpy()[order]
    for j, i, l in keys:
        u = ev._rows[(j, i, l)]
        per_round = ev._tokens(l)
        # rounds: the most any member needs to commit its output at L(l) tokens per round
        assert ev.nr[u] == max(int(np.ceil(o / per_round - 1e-9)) for o in outs[j:i])
        assert ev.ready[u] == ev.upload[j:i].max()
        jobs = ev.jobs_of(u)
        assert ev.sum_d[u] == pytest.approx(ev.td[jobs].sum(), rel=1e-12)
        assert ev.sum_v[u] == pytest.approx(ev.tv[jobs].sum(), rel=1e-12)
        assert (ev.td[jobs] > 0).all() and (ev.tv[jobs] > 0).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(4, 16), seed=st.integers(0, 500), extras=st.sampled_from(EXTRAS))
def test_no_move_is_stopped_below_its_own_makespan(k, seed, extras):
    """Every early-stop bound of the move kernel (the running sums and the switch bound after round 0) is a
    lower bound: timed against a bar just above its own exact makespan, each move comes back exact, never +inf."""
    sc = small(k, seed=seed, pair=PAIRS[seed % 3], output_max=400, **extras)
    order = dp.sorted_order(sc)
    ev = ExactMakespan(sc, order, sc.optimal_bandwidth_hz(), "sd-pipeline")
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, k), size=min(k - 1, 3), replace=False).tolist())
    base = tuple((j, i, int(rng.integers(2, 7))) for j, i in zip([0] + cuts, cuts + [k]))
    moves = edits(base, 1, 8, True)
    tables = Tables(ev)
    rows = tables.row_ids(list(base))
    exact = _time_moves(tables, rows, moves, np.inf, shared_bar=False)
    for move, want in zip(moves, exact):
        got = _time_moves(tables, rows, [move], want * (1 + 1e-9), shared_bar=False)[0]
        assert got == want
