"""The report's "Acceptance per dataset" table prints the same rounds, τ and m as `traces show` for ingested
vLLM, SGLang and llama.cpp files (the tool's own counts, null where the file does not define one), and
computes them from the stored rounds only for datasets without tool numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from specedge.cli import main
from specedge.report import sections
from specedge.report.build import _Stages
from specedge.report.config import load_config
from specedge.report.document import Report

SAMPLES = Path(__file__).resolve().parents[1] / "traces" / "samples"
#: Samples that ingest as histograms (acceptance/aggregate; "totals" datasets have no histogram and no row).
#: vllm_metrics.prom's histogram gives m = 0.5467 but vLLM's own counters m = 0.5559: the case that catches a
#: table computing m from the histogram.
INGESTED = {"vllm-prom": ("vllm", "vllm_metrics.prom"), "vllm-bench": ("vllm", "vllm_bench_serve.json"),
            "vllm-requests": ("vllm", "vllm_per_request.jsonl"), "sglang": ("sglang", "sglang.jsonl")}


def _same(table_value, shown_value) -> bool:
    if shown_value is None:
        return table_value is None or (isinstance(table_value, float) and math.isnan(table_value))
    return table_value == pytest.approx(shown_value, rel=1e-9)


def test_acceptance_table_agrees_with_traces_show(tmp_path, capsys):
    from specedge.traces.store import open_store

    root = str(tmp_path / "store")
    # hand-written: a histogram whose tool defines accepted and drafted tokens but no rounds (as llama.cpp's
    # per-request lines), so τ and rounds are null in `traces show` and must be in the table too
    open_store(root).write(
        pd.DataFrame({"drafted": [4] * 5, "accepted": [0, 1, 2, 3, 4], "count": [30, 20, 15, 10, 25]}),
        "no-rounds", kind="aggregate",
        metadata={"source": "ingested:llamacpp", "note": "test fixture",
                  "tool_numbers": {"rounds": None, "accepted_tokens": 70, "draft_tokens": 100, "inferred": {}}})
    capsys.readouterr()
    assert main(["traces", "show", "no-rounds", "--json", "--store", root]) == 0
    shown = {"no-rounds": json.loads(capsys.readouterr().out)}
    for dataset, (fmt, name) in INGESTED.items():
        assert main(["ingest", fmt, str(SAMPLES / name), "--dataset", dataset, "--store", root]) == 0
        capsys.readouterr()
        assert main(["traces", "show", dataset, "--json", "--store", root]) == 0
        shown[dataset] = json.loads(capsys.readouterr().out)
    ctx = sections.Context(report=Report(out=tmp_path / "out", title="t"), cfg=load_config(quick=True), store=root,
                           workers=1, stages=_Stages(None))
    sections.traces(ctx)
    table = pd.read_csv(tmp_path / "out" / "tables" / "traces-acceptance.csv").set_index("dataset")
    # the samples must exercise both a defined and an undefined number, or the check below proves little
    assert any(s["rounds"] is None for s in shown.values()) and any(s["rounds"] for s in shown.values())
    for dataset, s in shown.items():
        assert s["numbers_from"] == "tool"
        row = table.loc[dataset]
        assert row["numbers_from"] == "tool"
        for key in ("rounds", "tau", "acceptance_ratio"):
            value = None if pd.isna(row[key]) else float(row[key])
            assert _same(value, s[key]), (dataset, key, value, s[key])
