"""The `specedge online --preset multi-cell --cells N` contract."""

import json
import subprocess
import sys

KEYS = ("requests", "duration_s", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p50_s",
        "e2e_p99_s", "slo_attainment", "goodput_rps", "energy_j_per_token", "cells")


def _cli(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from specedge.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=300)


def test_contract():
    r = _cli("online", "--preset", "multi-cell", "--cells", "4", "--arrivals", "poisson", "--rate", "0.05",
             "--requests", "30", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in KEYS:
        assert key in data
    assert data["requests"] == 120 and data["num_cells"] == 4 and len(data["cells"]) == 4
    for cell in data["cells"]:
        assert cell["goodput_rps"] >= 0 and cell["e2e_p99_s"] > 0 and cell["requests"] == 30
    assert [c["cell"] for c in data["cells"]] == ["cell-a", "cell-b", "cell-c", "cell-a-2"]
    assert data["energy_j_per_token"] > 0
    assert data["e2e_p99_s"] >= max(c["e2e_p99_s"] for c in data["cells"]) * 0.5


def test_bad_input_exits_2_with_one_line():
    r = _cli("online", "--preset", "paper", "--cells", "2", "--requests", "3")
    assert r.returncode == 2 and "--cells needs a multi-cell preset" in r.stderr
    r = _cli("online", "--preset", "multi-cell", "--verifier-policy", "lifo", "--requests", "3")
    assert r.returncode == 2 and "unknown verifier policy 'lifo'" in r.stderr
    r = _cli("online", "--preset", "multi-cell", "--cells", "0", "--requests", "3")
    assert r.returncode == 2 and "--cells must be >= 1" in r.stderr
