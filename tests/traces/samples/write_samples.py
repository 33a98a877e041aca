"""Writes the tool-format samples in this folder with each tool's own format strings (see README.md for the
source file and commit each one is copied from). Run from anywhere: ``python tests/traces/samples/write_samples.py``.

The counts are invented but consistent (every ratio a tool prints is computed here the way the tool computes
it, from the same counts); the tests compare ingest against the counts written here, never against code
shared with the parsers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def vllm_prom(path: Path, engines: dict[str, dict]) -> None:
    """vllm/v1/spec_decode/metrics.py SpecDecodingProm via prometheus_client text exposition."""
    out = []
    for name, doc in (("num_drafts", "Number of spec decoding drafts."),
                      ("num_draft_tokens", "Number of draft tokens."),
                      ("num_accepted_tokens", "Number of accepted tokens.")):
        out += [f"# HELP vllm:spec_decode_{name}_total {doc}", f"# TYPE vllm:spec_decode_{name}_total counter"]
        for eng, c in engines.items():
            out.append(f'vllm:spec_decode_{name}_total{{engine="{eng}",model_name="{MODEL}"}} {float(c[name])}')
        for eng in engines:
            out.append(f'vllm:spec_decode_{name}_created{{engine="{eng}",model_name="{MODEL}"}} 1.7328e+09')
    out += ["# HELP vllm:spec_decode_num_accepted_tokens_per_pos_total Accepted tokens per draft position.",
            "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter"]
    for eng, c in engines.items():
        for pos, v in enumerate(c["per_pos"]):
            out.append(f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine="{eng}",model_name="{MODEL}",'
                       f'position="{pos}"}} {float(v)}')
            out.append(f'vllm:spec_decode_num_accepted_tokens_per_pos_created{{engine="{eng}",model_name="{MODEL}",'
                       f'position="{pos}"}} 1.7328e+09')
    out.append(f'vllm:num_requests_running{{engine="0",model_name="{MODEL}"}} 3.0')
    path.write_text("\n".join(out) + "\n")


def vllm_server_log(path: Path) -> None:
    """SpecDecodingLogging.log after LoggingStatLogger's 'Engine %03d:' line (vllm/v1/metrics/loggers.py)."""
    lines = []
    intervals = [  # (engine, drafts, draft tokens, accepted, per-position counts)
        ("000", 130, 390, 300, [120, 100, 80]), ("001", 90, 270, 150, [70, 50, 30]),
        ("000", 200, 584, 474, [187, 153, 134]),
    ]
    for k, (eng, drafts, dtoks, acc, pos) in enumerate(intervals):
        t = f"07-10 12:00:{10 * (k + 1):02d}"
        prefix = f"(APIServer pid=4711) INFO {t} [loggers.py:123] "
        lines.append(prefix + f"Engine {eng}: Avg prompt throughput: 120.3 tokens/s, Avg generation throughput: "
                     "60.1 tokens/s, Running: 4 reqs, Waiting: 0 reqs, GPU KV cache usage: 2.1%, Prefix cache hit "
                     "rate: 0.0%")
        rates = ", ".join(f"{p / drafts:.3f}" for p in pos)
        lines.append(prefix.replace("loggers.py:123", "metrics.py:96") + "SpecDecoding metrics: "
                     f"Mean acceptance length: {1 + acc / drafts:.2f}, Accepted throughput: {acc / 10:.2f} tokens/s, "
                     f"Drafted throughput: {dtoks / 10:.2f} tokens/s, Accepted: {acc} tokens, Drafted: {dtoks} tokens, "
                     f"Per-position acceptance rate: {rates}, Avg Draft acceptance rate: {100 * acc / dtoks:.1f}%")
    path.write_text("\n".join(lines) + "\n")


def vllm_bench(path_txt: Path, path_json: Path, r: int, d: int, a: int, per_pos: list[int]) -> None:
    """vllm/benchmarks/serve.py: the printed block and the --save-result keys."""
    rates = [p / r for p in per_pos]
    block = ["{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="="),
             "{:<40} {:<10}".format("Successful requests:", 100),
             "{:<40} {:<10.2f}".format("Benchmark duration (s):", 61.52),
             "{s:{c}^{n}}".format(s="Speculative Decoding", n=50, c="-"),
             "{:<40} {:<10.2f}".format("Acceptance rate (%):", a / d * 100),
             "{:<40} {:<10.2f}".format("Acceptance length:", 1 + a / r),
             "{:<40} {:<10}".format("Drafts:", r),
             "{:<40} {:<10}".format("Draft tokens:", d),
             "{:<40} {:<10}".format("Accepted tokens:", a),
             "Per-position acceptance (%):"]
    block += ["{:<40} {:<10.2f}".format(f"  Position {i}:", x * 100) for i, x in enumerate(rates)]
    block.append("=" * 50)
    path_txt.write_text("\n".join(block) + "\n")
    result = {"date": "20250710-120000", "backend": "vllm", "model_id": MODEL, "num_prompts": 100,
              "completed": 100, "duration": 61.52, "spec_decode_acceptance_rate": a / d * 100,
              "spec_decode_acceptance_length": 1 + a / r, "spec_decode_num_drafts": r,
              "spec_decode_draft_tokens": d, "spec_decode_accepted_tokens": a,
              "spec_decode_per_position_acceptance_rates": rates}
    path_json.write_text(json.dumps(result))


def vllm_offline(path: Path, r: int, d: int, a: int) -> None:
    """examples/offline_inference/spec_decode.py print block."""
    lines = ["=========== Speculative Decoding Stats ============",
             f"Total input tokens:                      {12800:<10}",
             f"Total output tokens:                     {25600:<10}", "",
             f"Input token throughput (tok/s):          {9000.5:<10.2f}",
             f"Output token throughput (tok/s):         {2100.25:<10.2f}", "",
             f"Number of drafts:                        {r:<10}",
             f"Draft tokens generated:                  {d:<10}",
             f"Draft utilization rate:                  {a / d * 100:<10.1f}",
             f"Accepted tokens:                         {a:<10}",
             f"Mean acceptance length:                  {1 + a / r:<10.2f}",
             "===================================================="]
    path.write_text("\n".join(lines) + "\n")


def llama_summary(n_draft: int, n_predict: int, n_drafted: int, n_accept: int, head: str) -> list[str]:
    """LOG_INF summary of examples/speculative(-simple); the float is 100.0f * n_accept / n_drafted."""
    pct = float(np.float32(100.0) * np.float32(n_accept) / np.float32(n_drafted))
    return [head, "", f"n_draft   = {n_draft}", f"n_predict = {n_predict}", f"n_drafted = {n_drafted}",
            f"n_accept  = {n_accept}", f"accept    = {pct:.3f}%", "", "draft:", "", "target:", ""]


def main() -> None:
    e0 = dict(num_drafts=1200, num_draft_tokens=3500, num_accepted_tokens=1980, per_pos=[900, 660, 420])
    e1 = dict(num_drafts=800, num_draft_tokens=2400, num_accepted_tokens=1300, per_pos=[600, 430, 270])
    vllm_prom(HERE / "vllm_metrics.prom", {"0": e0, "1": e1})
    b0 = dict(num_drafts=200, num_draft_tokens=580, num_accepted_tokens=300, per_pos=[140, 100, 60])
    b1 = dict(num_drafts=100, num_draft_tokens=300, num_accepted_tokens=150, per_pos=[70, 50, 30])
    vllm_prom(HERE / "vllm_metrics_before.prom", {"0": b0, "1": b1})
    v0 = ["# HELP vllm:spec_decode_draft_acceptance_rate Speulative token acceptance rate.",
          "# TYPE vllm:spec_decode_draft_acceptance_rate gauge",
          f'vllm:spec_decode_draft_acceptance_rate{{model_name="{MODEL}"}} {1512 / 2400!r}',
          "# HELP vllm:spec_decode_efficiency Speculative decoding system efficiency.",
          "# TYPE vllm:spec_decode_efficiency gauge",
          f'vllm:spec_decode_efficiency{{model_name="{MODEL}"}} {2112 / 3000!r}',
          "# HELP vllm:spec_decode_num_accepted_tokens_total Number of accepted tokens.",
          "# TYPE vllm:spec_decode_num_accepted_tokens_total counter",
          f'vllm:spec_decode_num_accepted_tokens_total{{model_name="{MODEL}"}} 1512.0',
          "# HELP vllm:spec_decode_num_draft_tokens_total Number of draft tokens.",
          "# TYPE vllm:spec_decode_num_draft_tokens_total counter",
          f'vllm:spec_decode_num_draft_tokens_total{{model_name="{MODEL}"}} 2400.0',
          "# HELP vllm:spec_decode_num_emitted_tokens_total Number of emitted tokens.",
          "# TYPE vllm:spec_decode_num_emitted_tokens_total counter",
          f'vllm:spec_decode_num_emitted_tokens_total{{model_name="{MODEL}"}} 2112.0']
    (HERE / "vllm_v0_metrics.prom").write_text("\n".join(v0) + "\n")
    vllm_server_log(HERE / "vllm_server.log")
    vllm_bench(HERE / "vllm_bench_serve.txt", HERE / "vllm_bench_serve.json", 6393, 19179, 14090, [5333, 4661, 4096])
    vllm_offline(HERE / "vllm_offline_spec_decode.txt", 3127, 9381, 6205)

    # vLLM per-request metrics (--per-request-spec-decode-metrics detailed / summary), from the docs' example shape.
    steps = [([0, 1, 3, 0, 2, 1], [3, 3, 3, 2, 3, 3]), ([2, 0, 0, 3], [3, 3, 1, 3])]
    resp = []
    for n, (acc, dr) in enumerate(steps):
        spec = {"mean_acceptance_length": 1 + sum(acc) / len(acc), "draft_acceptance_rate": sum(acc) / sum(dr),
                "acceptance_histogram": [acc.count(j) for j in range(4)], "num_spec_steps": len(acc),
                "num_accepted_draft_tokens": sum(acc), "num_draft_tokens": sum(dr), "num_spec_tokens": 3,
                "per_step_accepted": acc, "per_step_drafted": dr}
        resp.append({"id": f"cmpl-{n}", "object": "text_completion", "model": MODEL, "choices": [],
                     "usage": {"prompt_tokens": 20, "completion_tokens": len(acc) + sum(acc) + 1},
                     "metrics": {"speculative_decoding": spec}})
    resp.append({"id": "cmpl-n2", "object": "text_completion", "model": MODEL, "choices": [],
                 "metrics": {"speculative_decoding": None}})
    (HERE / "vllm_per_request.jsonl").write_text("".join(json.dumps(r) + "\n" for r in resp))

    # SGLang: newest layout (spec_num_* + aliases + histogram), one request that finished at the prompt pass.
    k = 3  # speculative_num_draft_tokens - 1
    rows = []
    for rid, hist, completion in (("a1", [2, 3, 1, 4], 28), ("a2", [5, 1, 2], 14)):
        ct = sum(hist)
        correct = sum(i * h for i, h in enumerate(hist))
        rows.append({"text": "...", "meta_info": {
            "id": rid, "prompt_tokens": 40, "completion_tokens": completion, "spec_accept_rate": correct / (ct * k),
            "spec_accept_length": completion / ct, "spec_num_correct_drafts": correct,
            "spec_num_proposed_drafts": ct * k, "spec_verify_ct": ct, "spec_accepted_drafts": correct,
            "spec_proposed_drafts": ct * k, "spec_correct_drafts_histogram": hist, "spec_accept_histogram": hist}})
    rows.append({"text": "Hi", "meta_info": {"id": "a3", "prompt_tokens": 12, "completion_tokens": 1}})
    (HERE / "sglang.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # accept_token_num layout: spec_verify_ct always written; numbers only when > 0.
    rows = [{"meta_info": {"id": "q1", "completion_tokens": 311, "spec_accept_rate": 190 / 480,
                           "spec_accept_length": 311 / 120, "spec_verify_ct": 120, "spec_accept_token_num": 190,
                           "spec_draft_token_num": 480}},
            {"meta_info": {"id": "q2", "completion_tokens": 191, "spec_accept_rate": 110 / 320,
                           "spec_accept_length": 191 / 80, "spec_verify_ct": 80, "spec_accept_token_num": 110,
                           "spec_draft_token_num": 320}},
            {"meta_info": {"id": "q3", "completion_tokens": 1, "spec_accept_rate": 0.0, "spec_accept_length": 0,
                           "spec_verify_ct": 0}}]
    (HERE / "sglang_totals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [{"meta_info": {"id": "v1", "prompt_tokens": 30, "completion_tokens": 64, "spec_verify_ct": 25}},
            {"meta_info": {"id": "v2", "prompt_tokens": 18, "completion_tokens": 40, "spec_verify_ct": 17}}]
    (HERE / "sglang_v04.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    (HERE / "llamacpp.txt").write_text("\n".join(
        ["main: prompt: 'Write a haiku about GPUs.'"]
        + llama_summary(16, 132, 145, 109, "decoded  132 tokens in    2.316 seconds, speed:   56.995 t/s")) + "\n")
    (HERE / "llamacpp_simple.txt").write_text("\n".join(
        llama_summary(16, 257, 224, 160, "decoded  257 tokens in    3.021 seconds, speed:   85.071 t/s")) + "\n")
    resp = []
    for i, (dn, da) in enumerate(((48, 31), (0, 0), (40, 22))):
        timings = {"cache_n": 0, "prompt_n": 25, "prompt_ms": 31.2, "prompt_per_token_ms": 1.248,
                   "prompt_per_second": 801.3, "predicted_n": 64, "predicted_ms": 800.1,
                   "predicted_per_token_ms": 12.5, "predicted_per_second": 80.0}
        if dn > 0:
            timings.update(draft_n=dn, draft_n_accepted=da)
        resp.append({"index": 0, "content": "...", "id_slot": 0, "stop": True, "model": "qwen2.5-7b",
                     "tokens_predicted": 64, "tokens_evaluated": 25, "timings": timings})
    (HERE / "llamacpp_server.jsonl").write_text("".join(json.dumps(r) + "\n" for r in resp))
    log = []
    for task, (a, g) in enumerate(((31, 48), (22, 40))):
        log.append(f"slot print_timing: id  0 | task {task} | ")
        log.append("prompt eval time =      31.20 ms /    25 tokens (    1.25 ms per token,   801.28 tokens "
                   "per second)")
        log.append("draft acceptance rate = {:0.5f} ({:5d} accepted / {:5d} generated)".format(
            float(np.float32(a) / np.float32(g)), a, g))
    (HERE / "llamacpp_server.log").write_text("\n".join(log) + "\n")

    # Spec-Bench Token Recycling: step counted after the break checks -> decoding_steps = len - 1 per turn.
    rec = {"question_id": 81, "category": "writing", "answer_id": "x81", "model_id": "vicuna-7b-v1.3-recycling",
           "choices": [{"index": 0, "turns": ["A ...", "B ..."], "decoding_steps": [3, 2], "new_tokens": [9, 6],
                        "wall_time": [0.1, 0.08], "accept_lengths": [3, 2, 1, 3, 2, 2, 2]}], "tstamp": 1.7e9}
    rec2 = {"question_id": 82, "category": "math", "answer_id": "x82", "model_id": "vicuna-7b-v1.3-recycling",
            "choices": [{"index": 0, "turns": ["C ..."], "decoding_steps": [1], "new_tokens": [5],
                         "wall_time": [0.05], "accept_lengths": [4, 1]}], "tstamp": 1.7e9}
    (HERE / "specbench_recycling.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(rec2) + "\n")


if __name__ == "__main__":
    main()
