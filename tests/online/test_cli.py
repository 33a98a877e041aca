"""The `specedge online` contract."""

import json
import subprocess
import sys

KEYS = ("requests", "duration_s", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p50_s",
        "e2e_p99_s", "slo_attainment", "goodput_rps")


def _cli(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from specedge.cli import main; sys.exit(main())", *args], capture_output=True, text=True, timeout=300)


def test_contract():
    r = _cli("online", "--preset", "paper", "--pair", "llama-68m/llama-7b", "--arrivals", "poisson", "--rate",
             "0.2", "--requests", "200", "--policy", "fcfs", "--seed", "3", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in KEYS:
        assert key in data
    assert data["requests"] == 200 and 0 <= data["slo_attainment"] <= 1
    assert data["ttft_p99_s"] >= data["ttft_p50_s"] > 0


def test_list_and_bad_policy():
    r = _cli("online", "--list")
    assert r.returncode == 0 and "smartspec" in r.stdout.split() and "fcfs" in r.stdout.split()
    r = _cli("online", "--policy", "nope", "--requests", "3")
    assert r.returncode == 2 and "unknown online policy 'nope'" in r.stderr
