"""CI checks the asv suites without building an environment or timing anything: ``asv check --python=same``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_asv_config_points_at_bench():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["benchmark_dir"] == "bench" and conf["repo"] == "."
    assert ".asv" in (ROOT / ".gitignore").read_text()


def test_asv_check_passes():
    asv = shutil.which("asv", path=str(Path(sys.executable).parent)) or shutil.which("asv")
    if asv is None:
        pytest.skip("asv is not installed (it is in the test extra)")
    proc = subprocess.run([asv, "check", "--python=same"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def _asv():
    asv = shutil.which("asv", path=str(Path(sys.executable).parent)) or shutil.which("asv")
    if asv is None:
        pytest.skip("asv is not installed (it is in the test extra)")
    return asv


def test_every_suite_sets_up_and_tears_down(monkeypatch):
    """Each benchmark's setup and teardown, at its first parameter combination, the way asv_runner's ``_run``
    calls them (teardown runs even when setup skips with NotImplementedError); the bodies and setup_cache
    (the long gap/reduction sweeps) are not run. This is what catches a teardown that assumes setup ran."""
    discovery = pytest.importorskip("asv_runner.discovery")
    monkeypatch.delenv("SPECEDGE_BENCH_LARGE", raising=False)
    monkeypatch.syspath_prepend(str(ROOT))
    benchmarks = list(discovery.disc_benchmarks(str(ROOT / "bench")))
    assert len(benchmarks) >= 20
    checked = set()
    for bench in benchmarks:
        if bench.setup_cache_key is not None:
            continue
        if bench._params:
            bench.set_param_idx(0)
        bench.set_cache(None)
        skipped = bench.do_setup()
        try:
            assert skipped in (True, False), bench.name
        finally:
            bench.do_teardown()
        checked.add(bench.name.rsplit(".", 1)[0])
    assert {"sweep.LargeDaskSweep", "sweep.SmallSweep", "optimizer.PaperDP", "replay.Replay"} <= checked


def test_asv_run_quick_on_cheap_benchmarks(tmp_path):
    """The real ``asv run --quick --python=same --dry-run`` (no environment built, nothing saved) on the cheap
    benchmarks, including the skipped large Dask sweep: exits 0 only if every setup, body and teardown does."""
    asv = _asv()
    env = {**__import__("os").environ, "HOME": str(tmp_path)}
    env.pop("SPECEDGE_BENCH_LARGE", None)
    subprocess.run([asv, "machine", "--yes", "--machine", "ci"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.run([asv, "run", "--python=same", "--quick", "--dry-run", "--show-stderr", "--machine", "ci",
                           "--bench", r"sweep\.(GridCells|LargeDaskSweep)"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "failed" not in proc.stdout, proc.stdout[-4000:]
