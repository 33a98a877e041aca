"""Round trips: ingest -> read gives back exactly what the file said, for every format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from specedge.errors import InputError
from specedge.traces import stats
from specedge.traces.ingest import ingest, parse, parse_meta_items
from specedge.traces.ingest.histogram import counts_from_survival, fit_iid_positions
from specedge.traces.store import open_store


@pytest.fixture
def st_(tmp_path):
    return open_store(tmp_path / "store")


def _survival_counts(frame: pd.DataFrame) -> list[int]:
    """p[i] = rounds with accepted > i, from an aggregate frame."""
    top = int(frame["drafted"].max())
    return [int(frame.loc[frame["accepted"] > i, "count"].sum()) for i in range(top)]


def _norm(series: pd.Series) -> list:
    """Values as Python objects: missing -> None, floats rounded (float32 storage), ints as ints."""
    return [None if pd.isna(x) else round(float(x), 5) if isinstance(x, (float, np.floating)) else x
            for x in series.tolist()]


def test_specbench_round_trip(st_):
    path = SAMPLES / "specbench.jsonl"
    info = ingest(st_, "specbench", path, "sb", meta={"temperature": 0.0, "draft_model": "sps-68m"})
    assert info.kind == "acceptance" and info.source == "ingested:specbench"
    assert info.metadata["drafted_inferred"] is True and info.metadata["drafted"] == 4
    assert info.metadata["model_id"] == "vicuna-7b-v1.3-sps-68m" and info.metadata["draft_model"] == "sps-68m"
    frame = st_.read("sb")
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        choice = rec["choices"][0]
        rows = frame[frame["request_id"] == str(rec["question_id"])].sort_values(["turn", "round"])
        assert (rows["accepted"] + 1).tolist() == choice["accept_lengths"]
        assert rows.groupby("turn").size().tolist() == choice["decoding_steps"]
        assert set(rows["category"]) == {rec["category"]}
        for _, g in rows.groupby("turn"):
            assert g["round"].tolist() == list(range(len(g)))
    assert (frame["drafted"] == 4).all() and (frame["temperature"] == 0.0).all()
    assert frame["prompt_tokens"].isna().all() and frame["wall_ms"].isna().all()


def test_specbench_with_drafted_is_not_flagged(st_):
    info = ingest(st_, "specbench", SAMPLES / "specbench.jsonl", "sb6", drafted=6)
    assert info.metadata["drafted_inferred"] is False and info.metadata["drafted"] == 6
    assert (st_.read("sb6")["drafted"] == 6).all()
    assert st_.read("sb6")["temperature"].isna().all()


def test_vllm_json_round_trip(st_):
    info = ingest(st_, "vllm", SAMPLES / "vllm_requests.jsonl", "vj")
    assert info.kind == "aggregate"
    agg = st_.read("vj")
    records = [json.loads(x) for x in (SAMPLES / "vllm_requests.jsonl").read_text().splitlines()]
    expected = np.zeros(5, dtype=np.int64)
    for r in records:
        fields = r.get("spec_decode", r)
        if "acceptance_histogram" in fields:
            expected += np.asarray(fields["acceptance_histogram"])
        else:
            expected += counts_from_survival(fields["num_drafts"], np.asarray(fields["num_accepted_tokens_per_pos"]))
    assert agg["count"].tolist() == expected.tolist() and (agg["drafted"] == 4).all()
    numbers = info.metadata["tool_numbers"]
    assert stats.rounds(agg) == numbers["rounds"] == sum(r.get("spec_decode", r)["num_drafts"] for r in records)
    assert numbers["accepted_tokens"] == sum(r.get("spec_decode", r)["num_accepted_tokens"] for r in records)
    assert int((agg["accepted"] * agg["count"]).sum()) == numbers["accepted_tokens"]


def test_vllm_prometheus_round_trip(st_):
    info = ingest(st_, "vllm", SAMPLES / "vllm_metrics.prom", "vp")
    agg = st_.read("vp")
    assert _survival_counts(agg) == [1500, 1090, 690]  # engines 0 + 1, per position
    assert int(agg["count"].sum()) == 2000
    assert info.metadata["model_name"] == "meta-llama/Llama-3.1-8B-Instruct" and info.metadata["drafted"] == 3
    assert info.metadata["tool_numbers"]["draft_tokens"] == 3500 + 2400  # fewer than 3 x 2000: short drafts


def test_sglang_histogram_round_trip(st_):
    info = ingest(st_, "sglang", SAMPLES / "sglang.jsonl", "sg")
    agg = st_.read("sg")
    assert agg["count"].tolist() == [2 + 5, 3 + 1, 1 + 2, 4] and info.metadata["histogram"] == "recorded"
    assert info.metadata["drafted"] == 3 and info.metadata["drafted_inferred"] is False  # 54 proposed / 18 rounds
    assert info.metadata["sglang_requests_without_spec"] == 1 and info.metadata["tool_numbers"]["rounds"] == 18


def test_sglang_totals_are_fitted_and_flagged(st_):
    info = ingest(st_, "sglang", SAMPLES / "sglang_totals.jsonl", "sgt")
    agg = st_.read("sgt")
    assert info.metadata["histogram"] == "fitted" and "FITTED" in info.metadata["note_histogram"]
    assert info.metadata["drafted"] == 4 and info.metadata["drafted_inferred"] is False  # 800 / 200
    assert int(agg["count"].sum()) == 200 and int((agg["accepted"] * agg["count"]).sum()) == 300


def test_llamacpp_without_variant_is_totals_only(st_):
    info = ingest(st_, "llamacpp", SAMPLES / "llamacpp.txt", "ll")
    assert info.kind == "totals" and info.metadata["reported"] == {"n_draft": 16, "n_predict": 132,
                                                                    "n_drafted": 145, "n_accept": 109}
    assert info.metadata["tool_numbers"]["rounds"] is None and "--variant" in info.metadata["note_rounds"]


def test_llamacpp_variant_fits_a_flagged_histogram_with_the_right_rounds(st_):
    info = ingest(st_, "llamacpp", SAMPLES / "llamacpp.txt", "ll", variant="speculative")
    agg = st_.read("ll")
    assert info.metadata["histogram"] == "fitted"
    assert int(agg["count"].sum()) == 132 - 109 - 1  # the first token is sampled without a draft
    assert int((agg["accepted"] * agg["count"]).sum()) == 109
    assert info.metadata["drafted"] == 7 and info.metadata["drafted_inferred"] is True  # round(145 / 22)


@pytest.mark.parametrize("name, kind", [("acceptance.csv", "acceptance"), ("compute.csv", "compute"),
                                        ("aggregate.csv", "aggregate")])
def test_csv_round_trip(st_, name, kind):
    path = SAMPLES / name
    info = ingest(st_, "csv", path, "c")
    assert info.kind == kind
    back = st_.read("c")
    original = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for col in original.columns:
        if col == "dataset":
            continue
        assert _norm(back[col]) == _norm(original[col]), col
    if "dataset" in original.columns:
        assert (back["dataset"] == "c").all() and info.metadata["file_dataset"] == "old-id"


def test_parquet_round_trip_is_exact(st_, tmp_path):
    table = pacsv.read_csv(SAMPLES / "acceptance.csv")  # inferred types: int64 / double / string
    path = tmp_path / "in.parquet"
    pq.write_table(table.drop_columns(["dataset"]), path)
    info = ingest(st_, "parquet", path, "pq")
    back = st_.read_table("pq")
    for col in table.column_names:
        if col != "dataset":
            assert back.column(col).to_pylist() == pytest.approx(table.column(col).to_pylist(), nan_ok=True) \
                if pa.types.is_floating(table.schema.field(col).type) else \
                back.column(col).to_pylist() == table.column(col).to_pylist(), col
    assert info.rows == table.num_rows and "file_dataset" not in info.metadata


def test_parse_writes_nothing(tmp_path):
    parsed = parse("specbench", SAMPLES / "specbench.jsonl")
    assert parsed.kind == "acceptance" and parsed.rows == 18
    assert list(tmp_path.iterdir()) == []


def test_meta_rules(st_):
    assert parse_meta_items(["a=1", "b=x", "c=true", "d=0.5", "e=a=b"]) == {"a": 1, "b": "x", "c": True, "d": 0.5,
                                                                              "e": "a=b"}
    with pytest.raises(InputError, match="key=value"):
        parse_meta_items(["novalue"])
    with pytest.raises(InputError, match="source"):
        ingest(st_, "csv", SAMPLES / "aggregate.csv", "m", meta={"source": "recorded"})
    with pytest.raises(InputError, match="set by the specbench file"):
        ingest(st_, "specbench", SAMPLES / "specbench.jsonl", "m", meta={"drafted": 9})
    with pytest.raises(InputError, match="--drafted applies"):
        ingest(st_, "csv", SAMPLES / "aggregate.csv", "m", drafted=3)
    assert st_.list() == []


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda g: st.tuples(st.just(g), st.integers(1, 500),
                                                      st.floats(0, 1, allow_nan=False))))
def test_fit_matches_totals_exactly(args):
    gamma, rounds, frac = args
    accepted_total = int(round(frac * gamma * rounds))
    counts, alpha = fit_iid_positions(rounds, accepted_total, gamma)
    assert 0 <= alpha <= 1 and counts.shape == (gamma + 1,) and (counts >= 0).all()
    assert counts.sum() == rounds and int(np.dot(np.arange(gamma + 1), counts)) == accepted_total


def test_counts_from_survival_rejects_non_survival():
    with pytest.raises(ValueError, match="only 3 drafts"):
        counts_from_survival(3, np.array([4, 1]))
    assert counts_from_survival(10, np.array([8, 6, 3, 2])).tolist() == [2, 2, 3, 1, 2]
