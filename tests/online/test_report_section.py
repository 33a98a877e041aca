"""The report's online section: its grid through the sweep engine, the knee and where speculation stops paying."""

import pandas as pd
import pytest

from specedge.report import online_section as o


def test_knee_and_stop_from_a_hand_made_frame():
    cells = pd.DataFrame({
        "regime": ["r"] * 6, "policy": ["ad"] * 3 + ["fcfs"] * 3, "rate_rps": [1, 2, 3] * 2,
        "slo_attainment": [1.0, 0.95, 0.2, 1.0, 0.5, 0.1], "goodput_rps": [1, 1.9, 0.6, 1, 1, 0.3],
        "e2e_p50_s": [10, 12, 30, 5, 12.5, 40],
    })
    knees = o.summary(cells).set_index("policy")
    assert knees.loc["ad", "knee_rate_rps"] == 2 and knees.loc["fcfs", "knee_rate_rps"] == 1
    assert knees.loc["ad", "rate_at_max_goodput_rps"] == 2
    stop = o.speculation_stops_paying(cells).set_index("policy")
    assert stop.loc["fcfs", "sd_stops_paying_at_rps"] == 2  # 12.5 >= 12 at rate 2
    assert stop.loc["fcfs", "best_e2e_p50_vs_ad"] == pytest.approx(0.5)


def test_small_grid_runs_through_the_sweep_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(o, "REGIMES", {"tiny": {"rates": (0.1, 0.4), "fixed": ()},
                                       "lifted": {"rates": (2.0,), "fixed": (("bandwidth_hz", 2e9),)}})
    monkeypatch.setattr(o, "POLICIES", ("fcfs", "ad"))
    monkeypatch.setattr(o, "REQUESTS", 40)
    cells = o.run(tmp_path / "cells")
    assert len(cells) == 6 and set(cells["regime"]) == {"tiny", "lifted"}
    assert (cells["slo_attainment"].between(0, 1)).all()
    fig, data = o.figure(cells)
    assert "e2e_p50_vs_ad" in data and (data.loc[data["policy"] == "ad", "e2e_p50_vs_ad"] == 1).all()
    # a rerun finds every cell finished (the sweep engine's resume) and returns the same rows
    again = o.run(tmp_path / "cells")
    pd.testing.assert_frame_equal(cells.drop(columns=["wall_s", "cpu_s"]), again.drop(columns=["wall_s", "cpu_s"]))
