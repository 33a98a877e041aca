"""Workloads: arrival processes, the workload trace kind, Azure/BurstGPT layouts, bad input."""

from pathlib import Path

import numpy as np
import pytest

from specedge.errors import InputError, TraceValidationError
from specedge.online.workload import from_frame, synthetic
from specedge.online.workload_kind import ingest_workload, parse_workload

DATA = Path(__file__).parent / "data"


def test_poisson_and_gamma_rates_and_cv(paper_sc):
    p = synthetic(paper_sc.params, rate_rps=2.0, num_requests=20000, seed=0)
    gaps = np.diff(p.arrival_s)
    assert gaps.mean() == pytest.approx(0.5, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)
    g = synthetic(paper_sc.params, arrivals="gamma", rate_rps=2.0, cv=3.0, num_requests=20000, seed=0)
    gg = np.diff(g.arrival_s)
    assert gg.mean() == pytest.approx(0.5, rel=0.1)
    assert gg.std() / gg.mean() == pytest.approx(3.0, rel=0.1)
    assert p.input_tokens.min() >= paper_sc.params.input_tokens_min
    assert p.output_tokens.max() <= paper_sc.params.output_tokens_max


def test_azure_layout():
    f = parse_workload(DATA / "azure_llm_2023_sample.csv", "azure")
    assert f["input_tokens"].tolist() == [374, 396, 879, 91, 1033]
    assert f["timestamp_s"].iloc[0] == 0.0
    assert f["timestamp_s"].iloc[1] == pytest.approx(4.314579)


def test_burstgpt_layout(paper_sc):
    f = parse_workload(DATA / "burstgpt_sample.csv", "burstgpt")
    assert f["output_tokens"].tolist() == [18, 230, 276, 41]
    assert f["category"].tolist() == ["ChatGPT", "ChatGPT", "GPT-4", "GPT-4"]
    w = from_frame(f, paper_sc.params, time_scale=0.5)
    np.testing.assert_allclose(w.arrival_s, [0, 20, 56.5, 57.5])


def test_bad_rows_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                   "5,ChatGPT,472,18,490,Conversation log\n7,ChatGPT,12,0,12,API log\n")
    with pytest.raises(TraceValidationError, match="line 3.*output_tokens"):
        parse_workload(bad, "burstgpt")
    assert len(parse_workload(bad, "burstgpt", drop_empty=True)) == 1
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,12,x\n")
    with pytest.raises(TraceValidationError, match="line 2: field 'GeneratedTokens'"):
        parse_workload(bad, "azure")
    bad.write_text("TIMESTAMP,Context,GeneratedTokens\n")
    with pytest.raises(TraceValidationError, match="missing column"):
        parse_workload(bad, "azure")


def test_store_round_trip_and_untouched_on_error(tmp_path):
    from specedge.traces.store import open_store

    store = open_store(tmp_path / "store")
    ingest_workload(store, DATA / "azure_llm_2023_sample.csv", "azure", "azure-sample")
    assert store.info("azure-sample").kind == "workload"
    assert len(store.read("azure-sample")) == 5
    before = sorted(p.name for p in (tmp_path / "store").rglob("*"))
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_s,input_tokens,output_tokens\n0,0,5\n")
    with pytest.raises(TraceValidationError):
        ingest_workload(store, bad, "specedge", "bad-one")
    assert sorted(p.name for p in (tmp_path / "store").rglob("*")) == before


def test_bad_rates(paper_sc):
    with pytest.raises(InputError, match="rate"):
        synthetic(paper_sc.params, rate_rps=0.0)
    with pytest.raises(InputError, match="cv"):
        synthetic(paper_sc.params, arrivals="gamma", cv=0.0)
