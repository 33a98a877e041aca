"""`traces show --json` reports each tool's own rounds, τ and m, null where the file does not define them.

The expected values are read from the sample files here with a regex or json.loads and the equations
τ = 1 + A/R, m = A/D, independently of the parsers.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import SAMPLES

from specedge.cli import main


@pytest.fixture
def show(tmp_path, capsys):
    root = str(tmp_path / "store")
    counter = iter(range(1000))

    def run(fmt: str, name: str, *args: str) -> dict:
        dataset = f"d{next(counter)}"
        capsys.readouterr()
        rc = main(["ingest", fmt, str(SAMPLES / name), "--dataset", dataset, *args, "--store", root])
        out = capsys.readouterr()
        assert rc == 0, out.err
        assert main(["traces", "show", dataset, "--json", "--store", root]) == 0
        return json.loads(capsys.readouterr().out)

    return run


def _ints(pattern: str, text: str) -> list[int]:
    return [int(float(x)) for x in re.findall(pattern, text, flags=re.M)]


def _check(shown: dict, rounds, accepted, draft_tokens) -> None:
    assert shown["rounds"] == rounds
    if rounds is None or accepted is None:
        assert shown["tau"] is None
    else:
        assert shown["tau"] == pytest.approx(1 + accepted / rounds, rel=1e-12)
    if draft_tokens is None or accepted is None:
        assert shown["acceptance_ratio"] is None
    else:
        assert shown["acceptance_ratio"] == pytest.approx(accepted / draft_tokens, rel=1e-12)


# ------------------------------------------------------------------------------------------ Spec-Bench
def test_specbench_tau_is_the_mean_accept_length_and_m_is_undefined(show):
    lengths = [x for line in (SAMPLES / "specbench.jsonl").read_text().splitlines()
               for c in json.loads(line)["choices"] for x in c["accept_lengths"]]
    shown = show("specbench", "specbench.jsonl")
    _check(shown, len(lengths), sum(lengths) - len(lengths), None)
    assert shown["tau"] == pytest.approx(sum(lengths) / len(lengths))  # Spec-Bench's "#Mean accepted tokens"
    assert shown["numbers_from"] == "tool" and shown["inferred"] == {}


def test_specbench_drafted_gives_m_labelled_inferred(show):
    lengths = [x for line in (SAMPLES / "specbench.jsonl").read_text().splitlines()
               for c in json.loads(line)["choices"] for x in c["accept_lengths"]]
    shown = show("specbench", "specbench.jsonl", "--drafted", "6")
    _check(shown, len(lengths), sum(lengths) - len(lengths), 6 * len(lengths))
    assert "--drafted 6" in shown["inferred"]["acceptance_ratio"] and "tau" not in shown["inferred"]


def test_specbench_token_recycling_steps_are_one_short_per_turn(show, tmp_path):
    records = [json.loads(x) for x in (SAMPLES / "specbench_recycling.jsonl").read_text().splitlines()]
    lengths = [x for r in records for c in r["choices"] for x in c["accept_lengths"]]
    shown = show("specbench", "specbench_recycling.jsonl")
    _check(shown, len(lengths), sum(lengths) - len(lengths), None)
    from specedge.traces.ingest import parse

    table = parse("specbench", SAMPLES / "specbench_recycling.jsonl").table.to_pandas()
    q81 = table[table["request_id"] == "81"]
    assert q81.groupby("turn").size().tolist() == [s + 1 for s in records[0]["choices"][0]["decoding_steps"]]
    assert (q81["accepted"] + 1).tolist() == records[0]["choices"][0]["accept_lengths"]


# ------------------------------------------------------------------------------------------ vLLM
def _prom_sum(text: str, name: str) -> int:
    return sum(_ints(rf"^vllm:spec_decode_{name}_total\{{[^}}]*\}} (\S+)$", text))


def test_vllm_prometheus_uses_num_draft_tokens_not_k_times_drafts(show):
    text = (SAMPLES / "vllm_metrics.prom").read_text()
    r, d, a = (_prom_sum(text, n) for n in ("num_drafts", "num_draft_tokens", "num_accepted_tokens"))
    assert d < 3 * r  # the sample has short (n-gram style) drafts
    _check(show("vllm", "vllm_metrics.prom"), r, a, d)


def test_vllm_baseline_is_subtracted(show):
    after = (SAMPLES / "vllm_metrics.prom").read_text()
    before = (SAMPLES / "vllm_metrics_before.prom").read_text()
    r, d, a = (_prom_sum(after, n) - _prom_sum(before, n)
               for n in ("num_drafts", "num_draft_tokens", "num_accepted_tokens"))
    shown = show("vllm", "vllm_metrics.prom", "--baseline", str(SAMPLES / "vllm_metrics_before.prom"))
    _check(shown, r, a, d)
    assert shown["metadata"]["baseline_file"] == "vllm_metrics_before.prom"
    assert shown["metadata"]["baseline_subtracted"] is True


def test_vllm_counters_without_per_position_are_totals(show):
    text = (SAMPLES / "vllm_metrics_no_per_pos.prom").read_text()
    shown = show("vllm", "vllm_metrics_no_per_pos.prom")
    assert shown["kind"] == "totals"
    _check(shown, *(_prom_sum(text, n) for n in ("num_drafts", "num_accepted_tokens", "num_draft_tokens")))


def test_vllm_v0_counters_define_m_but_not_rounds(show):
    text = (SAMPLES / "vllm_v0_metrics.prom").read_text()
    a, d = _prom_sum(text, "num_accepted_tokens"), _prom_sum(text, "num_draft_tokens")
    shown = show("vllm", "vllm_v0_metrics.prom")
    _check(shown, None, a, d)
    gauge = float(re.search(r"^vllm:spec_decode_draft_acceptance_rate\{.*\} (\S+)$", text, re.M).group(1))
    assert shown["acceptance_ratio"] == pytest.approx(gauge)  # V0's own gauge


def test_vllm_server_log_intervals_are_summed(show):
    text = (SAMPLES / "vllm_server.log").read_text()
    a, d = sum(_ints(r"Accepted: (\d+) tokens", text)), sum(_ints(r"Drafted: (\d+) tokens", text))
    shown = show("vllm", "vllm_server.log")
    _check(shown, None, a, d)
    assert shown["kind"] == "totals" and shown["rows"] == text.count("SpecDecoding metrics:")
    assert "ESTIMATED" in shown["metadata"]["note_rounds"]


@pytest.mark.parametrize("name, labels", [
    ("vllm_bench_serve.txt", ("Drafts", "Accepted tokens", "Draft tokens")),
    ("vllm_offline_spec_decode.txt", ("Number of drafts", "Accepted tokens", "Draft tokens generated")),
])
def test_vllm_printed_blocks(show, name, labels):
    text = (SAMPLES / name).read_text()
    r, a, d = (_ints(rf"^{re.escape(label)}:\s+(\d+)", text)[0] for label in labels)
    shown = show("vllm", name)
    _check(shown, r, a, d)
    length = float(re.search(r"(?:Mean acceptance|Acceptance) length:\s+(\S+)", text).group(1))
    assert abs(shown["tau"] - length) <= 0.005


def test_vllm_bench_json_matches_its_own_ratios(show):
    doc = json.loads((SAMPLES / "vllm_bench_serve.json").read_text())
    shown = show("vllm", "vllm_bench_serve.json")
    _check(shown, doc["spec_decode_num_drafts"], doc["spec_decode_accepted_tokens"], doc["spec_decode_draft_tokens"])
    assert shown["tau"] == pytest.approx(doc["spec_decode_acceptance_length"], rel=1e-12)
    assert 100 * shown["acceptance_ratio"] == pytest.approx(doc["spec_decode_acceptance_rate"], rel=1e-12)
    survival = [sum(h["count"] for h in shown["histogram"] if h["accepted"] > i) / shown["rounds"]
                for i in range(len(doc["spec_decode_per_position_acceptance_rates"]))]
    assert survival == pytest.approx(doc["spec_decode_per_position_acceptance_rates"], rel=1e-12)


# ------------------------------------------------------------------------------------------ SGLang
@pytest.mark.parametrize("name, acc_key, prop_key", [
    ("sglang.jsonl", "spec_num_correct_drafts", "spec_num_proposed_drafts"),
    ("sglang_totals.jsonl", "spec_accept_token_num", "spec_draft_token_num"),
])
def test_sglang_numbers_are_its_counts(show, name, acc_key, prop_key):
    infos = [json.loads(x)["meta_info"] for x in (SAMPLES / name).read_text().splitlines()]
    spec = [i for i in infos if i.get("spec_verify_ct")]
    assert len(spec) < len(infos)  # a request that finished at the prompt pass is in the sample
    r, a, d = (sum(i[k] for i in spec) for k in ("spec_verify_ct", acc_key, prop_key))
    shown = show("sglang", name)
    _check(shown, r, a, d)
    for i in spec:  # SGLang's per-request rate is the same ratio
        assert i["spec_accept_rate"] == pytest.approx(i[acc_key] / i[prop_key])


def test_sglang_v04_accepted_is_inferred_and_labelled(show):
    infos = [json.loads(x)["meta_info"] for x in (SAMPLES / "sglang_v04.jsonl").read_text().splitlines()]
    r = sum(i["spec_verify_ct"] for i in infos)
    a = sum(i["completion_tokens"] - i["spec_verify_ct"] - 1 for i in infos)
    shown = show("sglang", "sglang_v04.jsonl")
    _check(shown, r, a, None)
    assert "completion_tokens - spec_verify_ct - 1" in shown["inferred"]["tau"]
    shown = show("sglang", "sglang_v04.jsonl", "--drafted", "3")
    _check(shown, r, a, 3 * r)
    assert "--drafted 3" in shown["inferred"]["acceptance_ratio"]


# ------------------------------------------------------------------------------------------ llama.cpp
def _summary(name: str) -> dict[str, float]:
    text = (SAMPLES / name).read_text()
    values = {k: int(v) for k, v in re.findall(r"^(n_\w+)\s*=\s*(\d+)$", text, re.M)}
    values["accept"] = float(re.search(r"^accept\s*=\s*(\S+)%$", text, re.M).group(1))
    return values


def test_llamacpp_m_equals_the_printed_accept_and_rounds_need_the_variant(show):
    s = _summary("llamacpp.txt")
    shown = show("llamacpp", "llamacpp.txt")
    _check(shown, None, s["n_accept"], s["n_drafted"])
    assert abs(100 * shown["acceptance_ratio"] - s["accept"]) <= 5e-4
    _check(show("llamacpp", "llamacpp.txt", "--variant", "speculative"),
           s["n_predict"] - s["n_accept"] - 1, s["n_accept"], s["n_drafted"])
    s = _summary("llamacpp_simple.txt")
    shown = show("llamacpp", "llamacpp_simple.txt", "--variant", "speculative-simple")
    _check(shown, s["n_predict"] - s["n_accept"], s["n_accept"], s["n_drafted"])
    assert abs(100 * shown["acceptance_ratio"] - s["accept"]) <= 5e-4


def test_llamacpp_server_totals_without_rounds(show):
    rows = [json.loads(x)["timings"] for x in (SAMPLES / "llamacpp_server.jsonl").read_text().splitlines()]
    a, d = sum(t.get("draft_n_accepted", 0) for t in rows), sum(t.get("draft_n", 0) for t in rows)
    shown = show("llamacpp", "llamacpp_server.jsonl")
    _check(shown, None, a, d)
    assert shown["kind"] == "totals" and shown["metadata"]["llamacpp_responses_without_drafts"] == 1
    log = (SAMPLES / "llamacpp_server.log").read_text()
    pairs = [(int(x), int(y)) for x, y in re.findall(r"\(\s*(\d+) accepted /\s*(\d+) generated\)", log)]
    _check(show("llamacpp", "llamacpp_server.log"), None, sum(p[0] for p in pairs), sum(p[1] for p in pairs))


# ------------------------------------------------------------------------------------------ plain tables
def test_csv_numbers_come_from_the_table(show):
    import pandas as pd

    frame = pd.read_csv(SAMPLES / "acceptance.csv")
    shown = show("csv", "acceptance.csv")
    assert shown["numbers_from"] == "table"
    _check(shown, len(frame), int(frame["accepted"].sum()), int(frame["drafted"].sum()))


@pytest.mark.parametrize("args, fragment", [
    (["vllm", "vllm_metrics.prom", "--baseline", "vllm_metrics.prom"], None),  # self-baseline: zero drafts
    (["sglang", "sglang.jsonl", "--baseline", "vllm_metrics_before.prom"], "--baseline applies to vllm"),
    (["llamacpp", "llamacpp.txt", "--variant", "simple"], "--variant 'simple'"),
    (["vllm", "vllm_metrics_before.prom", "--baseline", "vllm_metrics.prom"], "the counter went down"),
])
def test_option_misuse_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    fmt, name, *rest = args
    rest = [str(SAMPLES / x) if x.endswith(".prom") else x for x in rest]
    capsys.readouterr()
    rc = main(["ingest", fmt, str(SAMPLES / name), "--dataset", "x", *rest, "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert (fragment or "0 drafts") in err
    assert not (tmp_path / "s" / "x").exists()


def test_vllm_per_request_detailed_metrics_are_a_per_round_trace(show, tmp_path, capsys):
    lines = [json.loads(x) for x in (SAMPLES / "vllm_per_request.jsonl").read_text().splitlines()]
    specs = [r["metrics"]["speculative_decoding"] for r in lines if r["metrics"]["speculative_decoding"]]
    r = sum(s["num_spec_steps"] for s in specs)
    a = sum(s["num_accepted_draft_tokens"] for s in specs)
    d = sum(s["num_draft_tokens"] for s in specs)
    shown = show("vllm", "vllm_per_request.jsonl")
    _check(shown, r, a, d)
    assert shown["kind"] == "acceptance" and shown["requests"] == len(specs)
    from specedge.traces.ingest import parse

    table = parse("vllm", SAMPLES / "vllm_per_request.jsonl").table.to_pandas()
    for line in lines:
        spec = line["metrics"]["speculative_decoding"]
        if spec:
            rows = table[table["request_id"] == line["id"]].sort_values("round")
            assert rows["accepted"].tolist() == spec["per_step_accepted"]
            assert rows["drafted"].tolist() == spec["per_step_drafted"]
    # summary level (no per-step arrays): the summed histograms, same numbers
    for line in lines:
        if line["metrics"]["speculative_decoding"]:
            for key in ("per_step_accepted", "per_step_drafted"):
                del line["metrics"]["speculative_decoding"][key]
    summary = tmp_path / "summary.jsonl"
    summary.write_text("".join(json.dumps(x) + "\n" for x in lines))
    capsys.readouterr()
    assert main(["ingest", "vllm", str(summary), "--dataset", "s", "--store", str(tmp_path / "s2")]) == 0
    capsys.readouterr()
    assert main(["traces", "show", "s", "--json", "--store", str(tmp_path / "s2")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "aggregate"
    _check(shown, r, a, d)
    assert [h["count"] for h in shown["histogram"]] == [sum(s["acceptance_histogram"][j] for s in specs)
                                                       for j in range(4)]
