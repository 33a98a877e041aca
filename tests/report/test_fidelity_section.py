"""Section 6 of the report: replay against the real serving runs in the store."""

from __future__ import annotations

import pandas as pd

from specedge.report import sections
from specedge.report.build import _Stages
from specedge.report.config import load_config
from specedge.report.document import Report
from specedge.traces.store import open_store


def _context(tmp_path, store) -> sections.Context:
    report = Report(out=tmp_path / "out", title="t")
    return sections.Context(report=report, cfg=load_config(quick=True), store=str(store), workers=1,
                            stages=_Stages(None))


def test_a_store_without_runs_gets_a_note_not_a_table(tmp_path):
    ctx = _context(tmp_path, open_store(tmp_path / "empty").root)
    sections.fidelity(ctx)
    (sec,) = ctx.report.sections
    assert [b.kind for b in sec.blocks] == ["note"]
    assert "serve-real" in sec.blocks[0].text


def test_the_shipped_runs_are_tabled_per_run_and_predictor(tmp_path):
    store = open_store()
    runs = {i.id for i in store.list() if i.kind == "run" and not i.metadata.get("online")}
    online = {i.id for i in store.list() if i.kind == "run" and i.metadata.get("online")}
    assert runs and online, "the repository ships real serving runs, static and online"
    ctx = _context(tmp_path, store.root)
    sections.fidelity(ctx)
    table = pd.read_csv(tmp_path / "out" / "tables" / "fidelity.csv")
    assert set(table["run"]) == runs
    assert {"affine", "roofline", "measured"} <= set(table["predictor"])
    on = pd.read_csv(tmp_path / "out" / "tables" / "fidelity-online.csv")
    assert set(on["run"]) == online and {"affine", "stage-times"} <= set(on["predictor"])
    assert on[["median_e2e_error", "makespan_error"]].ge(0).all().all()
    assert table[["median_task_error", "p90_task_error", "makespan_error"]].ge(0).all().all()
    points = pd.read_csv(tmp_path / "out" / "tables" / "fidelity-data.csv")
    assert {"measured_s", "predicted_s", "predictor", "plan"} <= set(points.columns)
    assert (tmp_path / "out" / "figures" / "fidelity.png").stat().st_size > 0
