"""pytest-benchmark: the report's fidelity analysis on the shipped store (``traces/``), which grows with every real
run recorded: :class:`~specedge.fidelity.repeats.FidelityStudy` (every run replayed with observed and recorded
acceptance), its per-plan rows and rank fidelity (what ``specedge fidelity --rank`` and the report's fidelity
section compute), and the report's whole fidelity section (tables and figures, nothing written).

Runs once in the normal test run on two stdlib runs (addopts has --benchmark-disable); measure the whole store
with ``python -m pytest bench/test_fidelity_speed.py --benchmark-enable``. The in-process memos
(:mod:`specedge.fidelity.memo`, the records and calibration caches) are emptied before each round, so a round
costs what a cold report build pays.
"""

from __future__ import annotations

import pytest

from specedge.fidelity import memo
from specedge.provenance import REPO_ROOT

STORE = REPO_ROOT / "traces"
PAIR = "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"


def _run_ids(benchmark):
    """Every static run when measuring, else the last two stdlib runs (a short check in the normal test run)."""
    from specedge.traces.store import open_store

    if not (STORE / "catalog.json").is_file():
        pytest.skip("needs the shipped trace store")
    runs = sorted(i.id for i in open_store(STORE).list() if i.kind == "run" and not i.metadata.get("online")
                  and (benchmark.enabled or i.metadata.get("pair") == PAIR))
    if not runs:
        pytest.skip("no shipped static run")
    return None if benchmark.enabled else runs[-2:]


def test_fidelity_study_and_rank(benchmark):
    from specedge.fidelity.repeats import FidelityStudy

    run_ids = _run_ids(benchmark)

    def analyse():
        memo.clear()
        study = FidelityStudy(STORE, run_ids)
        return study, study.plan_rows(), study.rank()

    study, plans, rank = benchmark.pedantic(analyse, rounds=1, iterations=1)
    assert len(study.results) == len(study.index) > 0 and len(plans) and rank
    benchmark.extra_info["runs"] = len(study.index)


class _Section:
    """Collects what the section writes (the report's section object, without files)."""

    def __init__(self):
        self.items = []

    def text(self, s):
        self.items.append(("text", s))

    def note(self, s):
        self.items.append(("note", s))

    def table(self, name, frame, **kw):
        self.items.append(("table", name, len(frame)))

    def figure(self, name, payload, **kw):
        self.items.append(("figure", name))


def test_fidelity_report_section(benchmark):
    from specedge.fidelity.report import write_fidelity_section

    if _run_ids(benchmark) is not None:
        pytest.skip("the whole section is measured only with --benchmark-enable (every shipped run)")

    def section():
        memo.clear()
        sec = _Section()
        write_fidelity_section(sec, STORE)
        return sec

    sec = benchmark.pedantic(section, rounds=1, iterations=1)
    assert {i[1] for i in sec.items if i[0] == "table"} >= {"fidelity-plans", "fidelity-rank", "fidelity"}
