"""scripts/measure_fidelity.py's repeat rounds: each round a seeded permutation of the plans, not one fixed order."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "measure_fidelity.py"


def _script():
    spec = importlib.util.spec_from_file_location("measure_fidelity_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_round_is_a_permutation_and_reproducible():
    m = _script()
    for n in (1, 2, 6, 9):
        for r in range(5):
            order = m.round_order(n, r)
            assert sorted(order) == list(range(n))
            assert order == m.round_order(n, r)


def test_rounds_differ_and_no_plan_keeps_its_place():
    m = _script()
    orders = [m.round_order(6, r) for r in range(6)]
    assert len({tuple(o) for o in orders}) == 6
    # in a fixed order plan i would run at place i every round; here every plan has at least two places
    for plan in range(6):
        assert len({o.index(plan) for o in orders}) >= 2
