"""The local search's incremental evaluation (policies/incremental.py, policies/exact_kernel.py) against the
batched numpy recursion (ExactMakespan.makespans, itself checked against the replay in test_exact_oracle.py) and
against the replay; the early stop never hides the best move; the search's plan replays to the makespan it
claims, lazy or steepest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specedge import evaluate
from specedge.policies import dp, get_policy
from specedge.policies.exact import ExactMakespan
from specedge.policies.incremental import MoveIndex, MoveLists, Tables, edits
from specedge.policies.refine import _Fits, _time_moves, local_search
from tests.policies.helpers import PAIRS, small

EXTRAS = [{}, {"fronthaul_delay_s": 0.02}, {"release": "batch-uploads", "downlink_s_per_token": 0.003}]


def _random_plan(rng, k: int, l_hi: int = 6) -> tuple:
    cuts = sorted(rng.choice(np.arange(1, k), size=rng.integers(0, min(k - 1, 6) + 1), replace=False).tolist())
    bounds = list(zip([0] + cuts, cuts + [k]))
    return tuple((j, i, int(rng.integers(1, l_hi + 1))) for j, i in bounds)


def _setup(k, seed, mode, extras):
    sc = small(k, seed=seed, pair=PAIRS[seed % 3], output_max=150, **extras)
    order = dp.sorted_order(sc)
    bw = sc.optimal_bandwidth_hz()
    return sc, order, bw, ExactMakespan(sc, order, bw, mode)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(2, 14), seed=st.integers(0, 500), mode=st.sampled_from(["sd-pipeline", "sd-serial", "ad"]),
       extras=st.sampled_from(EXTRAS))
def test_every_move_equals_the_numpy_recursion(k, seed, mode, extras):
    sc, order, bw, ev = _setup(k, seed, mode, extras)
    rng = np.random.default_rng(seed)
    base = _random_plan(rng, k)
    moves = edits(base, 1, 6, True)
    plans = [base[:m0] + new + base[m1:] for m0, m1, new in moves]
    want = ev.makespans(plans)
    tables = Tables(ev)
    got = _time_moves(tables, tables.row_ids(list(base)), moves, np.inf, shared_bar=False)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(tables.plans(plans[:5]), want[:5], rtol=1e-12)
    # and the replay, for a few of them
    for plan, ms in list(zip(plans, got))[:3]:
        replayed = evaluate(sc, dp.make_plan(sc, order, [(j, i) for j, i, _ in plan], [l for *_, l in plan], bw,
                                             mode)).latency_s
        assert ms == pytest.approx(replayed, rel=1e-9)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(3, 14), seed=st.integers(0, 500), mode=st.sampled_from(["sd-pipeline", "sd-serial"]),
       extras=st.sampled_from(EXTRAS), cut=st.floats(0.97, 1.01))
def test_early_stop_never_hides_the_best_move(k, seed, mode, extras, cut):
    """A stopped move gets +inf only when it cannot beat the bar (or, shared, a move before it); the arg-min and
    every value that is not stopped are exact."""
    _, _, _, ev = _setup(k, seed, mode, extras)
    base = _random_plan(np.random.default_rng(seed + 1), k)
    moves = edits(base, 1, 6, True)
    tables = Tables(ev)
    rows = tables.row_ids(list(base))
    exact = _time_moves(tables, rows, moves, np.inf, shared_bar=False)
    bar = float(exact.min()) * cut
    for shared in (False, True):
        got = _time_moves(tables, rows, moves, bar, shared_bar=shared)
        ok = np.isfinite(got)
        np.testing.assert_allclose(got[ok], exact[ok], rtol=1e-12)
        assert (exact[~ok] > bar * (1 - 1e-9)).all() or shared
        if exact.min() < bar * (1 - 1e-9):
            assert int(np.argmin(got)) == int(np.argmin(exact))


@pytest.mark.parametrize("lazy", [True, False])
@pytest.mark.parametrize("pair", PAIRS)
def test_search_plan_replays_to_its_makespan(lazy, pair):
    sc = small(60, seed=3, pair=pair, output_max=300)
    plan = get_policy("dp-refined", lazy=lazy).plan(sc)
    assert evaluate(sc, plan).latency_s == pytest.approx(plan.meta["exact_makespan_s"], rel=1e-9)
    assert plan.meta["exact_makespan_s"] <= plan.meta["pool_best_s"] * (1 + 1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_wide_search_replays_and_improves(monkeypatch, seed):
    """The wide search (more than WIDE batches: predicted moves, several disjoint moves at once), run on a small
    instance by lowering WIDE and starting from small batches; it must take at least one multi-move step."""
    from specedge.policies import refine

    monkeypatch.setattr(refine, "WIDE", 4)
    taken = []
    disjoint = refine._disjoint
    monkeypatch.setattr(refine, "_disjoint", lambda moves, m_n: taken.append(len(out := disjoint(moves, m_n)))
                        or out)
    sc = small(60, seed=seed, pair=PAIRS[1], output_max=300)
    order = dp.sorted_order(sc)
    bw = sc.optimal_bandwidth_hz()
    ev = ExactMakespan(sc, order, bw, "sd-pipeline")
    start = tuple((j, i, 2) for j, i in dp.solve(sc, l_values=[2], max_batch=4).bounds_by_l[0])
    res = local_search(ev, [start], _Fits(sc, order), l_lo=1, l_hi=10, per_batch_l=True, max_iterations=100,
                       tolerance=1e-5)
    assert len(start) > 4 and res.makespan_s < res.start_makespan_s and max(taken) >= 2
    plan = dp.make_plan(sc, order, [(j, i) for j, i, _ in res.candidate], [l for *_, l in res.candidate], bw,
                        "sd-pipeline")
    assert evaluate(sc, plan).latency_s == pytest.approx(res.makespan_s, rel=1e-9)


def test_lazy_search_reaches_a_local_optimum():
    """No single move of the lazy search's result improves it by more than the tolerance (all timed exactly)."""
    sc = small(80, seed=5, pair=PAIRS[2], output_max=300)
    order = dp.sorted_order(sc)
    ev = ExactMakespan(sc, order, sc.optimal_bandwidth_hz(), "sd-pipeline")
    fits = _Fits(sc, order)
    start = tuple((j, i, 3) for j, i in dp.solve(sc, l_values=[3]).bounds_by_l[0])
    res = local_search(ev, [start], fits, l_lo=1, l_hi=10, per_batch_l=True, max_iterations=200, tolerance=1e-5)
    moves = [m for m in edits(res.candidate, 1, 10, True) if all(fits(j, i) for j, i, _ in m[2])]
    check = ExactMakespan(sc, order, sc.optimal_bandwidth_hz(), "sd-pipeline")
    times = check.makespans([res.candidate[:m0] + new + res.candidate[m1:] for m0, m1, new in moves])
    assert check.makespans([res.candidate])[0] == pytest.approx(res.makespan_s, rel=1e-12)
    assert times.min() >= res.makespan_s * (1 - 1e-5) * (1 - 1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(2, 30), seed=st.integers(0, 500), per_batch_l=st.booleans())
def test_move_index_lists_the_moves_of_edits(k, seed, per_batch_l):
    """The search's move arrays (one index reused over several plans, as in the search) are edits()' moves in the
    same order, each with its MoveLists key's id (equal keys, equal ids) and whether its new batches fit."""
    sc, order, _, _ = _setup(k, seed, "sd-pipeline", {})
    memory = _Fits(sc, order)
    cap = max(1, k // 3)  # also a tighter memory, so that some moves do not fit

    def fits(j, i):
        return memory(j, i) and i - j <= cap

    index, lists, id_of = MoveIndex(1, 6, per_batch_l, fits), MoveLists(1, 6, per_batch_l), {}
    rng = np.random.default_rng(seed)
    plans = [_random_plan(rng, k) for _ in range(4)] + [((0, k, 6),), ((0, k, 3),)]
    for plan in plans:
        m0, m1, ids = index(plan)
        want = lists(plan)
        assert [(a, b, index.new[q]) for a, b, q in zip(m0.tolist(), m1.tolist(), ids.tolist())] == \
            [(a, b, new) for a, b, new, _ in want]
        for q, (*_, new, key) in zip(ids.tolist(), want):
            assert id_of.setdefault(key, q) == q
            if key[0] != "every l":  # checked at first sight; in the search every plan, so every such move, fits
                assert index.ok[q] == all(fits(j, i) for j, i, _ in new)
    assert np.isnan(index.change[: len(index.new)]).all()
    assert not index.ok[: len(index.new)].all()
