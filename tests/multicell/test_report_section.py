"""Report section 9 (several cells): tables, figure, Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd

from specedge.report import multicell_section as ms
from specedge.report import sections
from specedge.report.build import _Stages
from specedge.report.config import load_config
from specedge.report.document import Report


def test_pareto_front_by_hand():
    #            a    b    c    d    e
    x = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    y = np.array([5.0, 3.0, 1.0, 4.0, 6.0])
    # d is beaten by b (2 <= 2, 3 < 4); e by a (1 <= 1, 5 < 6); a, b, c trade off
    assert ms.pareto_front(x, y).tolist() == [True, True, True, False, False]
    # duplicates: neither beats the other strictly
    assert ms.pareto_front([1.0, 1.0], [2.0, 2.0]).tolist() == [True, True]


def test_section_writes_its_tables_and_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(ms, "REQUESTS", 8)
    monkeypatch.setattr(ms, "LENGTHS", (1, 4))
    monkeypatch.setattr(ms, "USERS", (2, 4))
    report = Report(out=tmp_path / "out", title="t")
    ctx = sections.Context(report=report, cfg=load_config(quick=True), store=None, workers=1, stages=_Stages(None))
    ms.section(ctx)
    online = pd.read_csv(tmp_path / "out" / "tables" / "multicell-online.csv")
    assert len(online) == len(ms.VERIFIER_POLICIES) * 2 + 1 and online["pareto"].any()
    dip = pd.read_csv(tmp_path / "out" / "tables" / "dipsd-throughput.csv")
    assert set(dip["scheme"]) == {"dip-sd", "sd-greedy", "ad-greedy", "ad"} and set(dip["users"]) == {2, 4}
    assert (tmp_path / "out" / "figures" / "multicell-energy-latency.png").stat().st_size > 0
    online_dip = pd.read_csv(tmp_path / "out" / "tables" / "dipsd-online.csv")
    assert set(online_dip["scheme"]) == {"dip-sd", "sd-greedy", "ad-greedy", "ad"}
    paper = pd.read_csv(tmp_path / "out" / "tables" / "dipsd-paper.csv")
    assert paper["paper"].tolist() == [17.89, 1.93]
    text = " ".join(b.text for b in report.sections[0].blocks if b.kind == "text")
    assert "17.89" in text and "1.93" in text


def test_dip_sd_has_its_own_colour_far_from_paper_dp():
    from matplotlib.colors import to_rgb

    from specedge.report import palette

    assert "dip-sd" in palette.POLICY_STYLES  # not a hashed colour (it drew a blue beside paper-dp's)
    dist = np.linalg.norm(np.subtract(to_rgb(palette.colour("dip-sd")), to_rgb(palette.colour("paper-dp"))))
    assert dist > 0.3
