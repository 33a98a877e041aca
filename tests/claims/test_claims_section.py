"""The report's claims section: basis beside every agreement, the tornado and LOO figures, the cost note."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_claims_section_labels_fitted_rows_and_draws_its_figures(tmp_path, monkeypatch):
    from specedge.report import claims_section
    from specedge.report.build import _Stages
    from specedge.report.config import load_config
    from specedge.report.document import Report
    from specedge.report.sections import Context

    monkeypatch.setenv("SPECEDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(claims_section, "PRESETS", ("paper",))
    monkeypatch.setattr(claims_section, "REPORT_FIT_EVALUATIONS", 3)
    report = Report(tmp_path / "out", "t", meta={})
    ctx = Context(report=report, cfg=load_config(quick=True), store=None, workers=1, stages=_Stages(None))
    claims_section.claims(ctx)
    (sec,) = report.sections
    texts = [b.text for b in sec.blocks if b.kind in ("text", "note")]
    claim_lines = [t for t in texts if t.startswith("optimal vs uniform bandwidth")]
    assert len(claim_lines) == 3 and all("FITTED" in t for t in claim_lines)
    assert "bits_per_token was solved" in claim_lines[0]
    assert not any("agree" in t and "predicted" not in t and "FITTED" not in t for t in texts)
    assert any("leave-one-out refits" in t.lower() or "Leave-one-out refits" in t for t in texts)
    names = {b.files.get("png", "") for b in sec.blocks if b.kind == "figure"}
    assert {"figures/claims-tornado-paper.png", "figures/claims-loo.png"} <= names
    assert (tmp_path / "out" / "tables" / "claims-sensitivity.csv").is_file()
