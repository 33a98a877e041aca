"""Fuzz every tool format: mutated, truncated and random inputs are either ingested as valid data or refused
with one message naming the file (exit 2 class), never a traceback, never a changed store."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from conftest import SAMPLES, tree_digest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specedge.errors import InputError
from specedge.traces.ingest import ingest
from specedge.traces.store import open_store

CASES = {
    "specbench": ["specbench.jsonl", "specbench_recycling.jsonl"],
    "vllm": ["vllm_metrics.prom", "vllm_v0_metrics.prom", "vllm_server.log", "vllm_bench_serve.txt",
             "vllm_bench_serve.json", "vllm_offline_spec_decode.txt", "vllm_requests.jsonl", "vllm_per_request.jsonl"],
    "sglang": ["sglang.jsonl", "sglang_totals.jsonl", "sglang_v04.jsonl"],
    "llamacpp": ["llamacpp.txt", "llamacpp_simple.txt", "llamacpp_server.jsonl", "llamacpp_server.log"],
}
_NUMBER = re.compile(rb"-?\d+(\.\d+)?")


@st.composite
def mutated(draw, fmt: str):
    name = draw(st.sampled_from(CASES[fmt]))
    data = (SAMPLES / name).read_bytes()
    how = draw(st.sampled_from(["truncate", "drop_line", "number", "token", "duplicate_line", "random"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how in ("drop_line", "duplicate_line"):
        lines = data.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        lines[i:i + 1] = [] if how == "drop_line" else [lines[i], lines[i]]
        data = b"".join(lines)
    elif how in ("number", "token"):
        spans = [m.span() for m in _NUMBER.finditer(data)]
        a, b = draw(st.sampled_from(spans))
        new = (str(draw(st.integers(-10**6, 10**6))).encode() if how == "number"
               else draw(st.sampled_from([b"", b"nan", b"-1", b"1e308", b"\"x\"", b"null", b"[]", b"{", b"0.5"])))
        data = data[:a] + new + data[b:]
    else:
        data = draw(st.binary(max_size=300))
    variant = draw(st.sampled_from([None, "speculative", "speculative-simple"])) if fmt == "llamacpp" else None
    return name, data, variant


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_mutated_inputs_ingest_or_refuse_cleanly(fmt):
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "store")
        counter = iter(range(10**6))
        outcomes = {"ok": 0, "refused": 0}

        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(mutated(fmt))
        def check(case):
            name, data, variant = case
            path = Path(tmp) / name
            path.write_bytes(data)
            before = tree_digest(store.root)
            dataset = f"f{next(counter)}"
            try:
                info = ingest(store, fmt, path, dataset, variant=variant)
            except InputError as exc:  # the one-message refusal the CLI prints with exit status 2
                message = str(exc)
                assert len(message.splitlines()) == 1 and name in message, message
                assert tree_digest(store.root) == before
                outcomes["refused"] += 1
                return
            numbers = info.metadata["tool_numbers"]
            a, d, r = numbers["accepted_tokens"], numbers["draft_tokens"], numbers["rounds"]
            assert a is None or a >= 0
            assert d is None or a is None or a <= d
            assert r is None or r >= 0
            assert dataset in open_store(store.root) and all(v.ok for v in store.verify())
            outcomes["ok"] += 1

        check()
        assert outcomes["refused"] > 0
