"""The report's opening section: the policy × pair summary and the assumptions table."""

from __future__ import annotations

import pandas as pd
import pytest

from specedge.report import front


def _cells() -> pd.DataFrame:
    rows = []
    for pair, base in (("d/t1", 100.0), ("d/t2", 200.0)):
        for seed, f in ((0, 1.0), (1, 2.0)):
            for policy, ratio in (("paper-dp", 1.0), ("dp-refined", 0.9), ("ad", 1.5 if seed == 0 else 1.2)):
                for acc, extra in (("expected", 1.0), ("iid", 3.0)):
                    rows.append({"preset": "paper", "pair": pair, "seed": seed, "policy": policy, "acceptance": acc,
                                 "status": "ok", "makespan_s": base * f * ratio * extra})
    rows.append({"preset": "paper", "pair": "d/t1", "seed": 2, "policy": "ad", "acceptance": "expected",
                 "status": "error", "makespan_s": float("nan")})
    return pd.DataFrame(rows)


def test_policy_by_pair_means_and_paired_change_against_paper_dp():
    table = front.policy_by_pair(_cells(), "expected").set_index("policy")
    assert list(table.index) == ["paper-dp", "dp-refined", "ad"]  # the report's policy order
    # d/t1: paper-dp over seeds (100, 200) -> 150; dp-refined 0.9 of it; iid rows left out
    assert table.loc["paper-dp", "d/t1 makespan_s"] == pytest.approx(150.0)
    assert table.loc["dp-refined", "d/t2 makespan_s"] == pytest.approx(270.0)
    assert table.loc["dp-refined", "d/t1 vs paper-dp (%)"] == pytest.approx(-10.0)
    # d/t2, ad: seed 0 300 vs 200 (+50 %), seed 1 480 vs 400 (+20 %): paired mean +35 % (unpaired would be +30 %)
    assert table.loc["ad", "d/t2 makespan_s"] == pytest.approx(390.0)
    assert table.loc["ad", "d/t2 vs paper-dp (%)"] == pytest.approx(35.0)
    assert table.loc["paper-dp", "d/t2 vs paper-dp (%)"] == pytest.approx(0.0)


def test_reference_source_prefers_expected():
    assert front.reference_source(["iid", "expected", "x"]) == "expected"
    assert front.reference_source(["x", "iid"]) == "x"


def test_assumptions_table_has_tags_units_and_says_what_the_config_set():
    table = front.assumptions("paper", "llama-68m/llama-7b", (("alpha", 0.7), ("tasks", 40),
                                                               ("bandwidth_hz", 10e6))).set_index("parameter")
    assert table.loc["pair", "value"] == "llama-68m/llama-7b"
    assert table.loc["alpha", "value"] == "0.7" and table.loc["alpha", "source"] == "report config"
    assert table.loc["num_tasks", "value"] == "40" and table.loc["num_tasks", "source"] == "report config"
    assert table.loc["bandwidth_hz", "value"] == "1e+07" and table.loc["bandwidth_hz", "unit"] == "Hz"
    assert table.loc["bits_per_token", "source"] == "preset paper"
    assert set(table["tag"]) <= {"[P]", "[A]", "[P/A]"} and "[A]" in set(table["tag"])


def test_cells_with_extrapolated_rounds_get_a_note_and_a_table(tmp_path):
    from specedge.report.document import Report
    from specedge.report.sections import _extrapolation

    report = Report(tmp_path / "out", "t")
    sec = report.section("s", "S")
    ok = pd.DataFrame({"pair": ["a", "a", "b"], "acceptance": ["x", "x", "y"], "policy": ["p", "p", "q"],
                       "extrapolated_rounds": [3.0, 0.0, 5.0]})
    _extrapolation(sec, "ex", ok)
    assert [b.kind for b in sec.blocks] == ["note", "table"]
    assert "2 of 3 cells replayed 8 round(s)" in sec.blocks[0].text
    assert report.tables["ex"]["extrapolated_rounds"].tolist() == [3.0, 5.0]
    quiet = report.section("q", "Q")
    _extrapolation(quiet, "none", ok.assign(extrapolated_rounds=0.0))
    assert quiet.blocks == []


def test_policy_by_pair_keeps_the_grid_order_of_pairs():
    table = front.policy_by_pair(_cells(), "expected", pairs=["d/t2", "d/t1"])
    assert [c for c in table.columns if c.endswith("makespan_s")] == ["d/t2 makespan_s", "d/t1 makespan_s"]
