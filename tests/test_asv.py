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


#: Small cases for the one-call run of every suite: parameters to call with, module globals and class
#: attributes to patch (the long sweeps' sizes). A suite not listed runs at its first parameter combination.
SMALL = {
    "optimizer.OptimalityGap": {"globals": {"GAP_INSTANCES": 2}},
    "optimizer.BaselineReduction": {"globals": {"PAIRS": ["llama-68m/llama-7b"], "BASELINES": ["ad", "paper-dp"]},
                                    "params": ("ad",), "small_scenarios": True},
    "optimizer.Contract": {"params": (100,)},
    "optimizer.Optimizers": {"params": (100, "dp-refined")},
    "ingest.IngestAcceptance": {"params": (2000, "parquet"), "class": {"params": ([2000], ["csv", "parquet"])}},
    "ingest.DerivedStatistics": {"params": (2000,)},
    "fidelity.FidelityAllShippedRuns": {"globals": {"RUN_IDS": "two stdlib runs"}},
    "fidelity.FidelityProtocol": {"globals": {"RUN_IDS": "two stdlib runs"}},
}


def _two_stdlib_runs() -> list[str]:
    catalog = json.loads((ROOT / "traces" / "catalog.json").read_text())["datasets"]
    runs = sorted(k for k, d in catalog.items() if d.get("kind") == "run" and k.startswith("run-stdlib"))
    return runs[:2] or None


def _suites(monkeypatch):
    discovery = pytest.importorskip("asv_runner.discovery")
    monkeypatch.delenv("SPECEDGE_BENCH_LARGE", raising=False)
    monkeypatch.syspath_prepend(str(ROOT))
    suites: dict[str, list] = {}
    for bench in discovery.disc_benchmarks(str(ROOT / "bench")):
        suites.setdefault(bench.name.rsplit(".", 1)[0] if "." in bench.name else bench.name, []).append(bench)
    return suites


def test_every_suite_runs_one_benchmark(monkeypatch, tmp_path):
    """Every suite in bench/: setup_cache (if any), setup, ONE benchmark body called once (not timed), teardown,
    on the small case of ``SMALL`` (or its first parameters): catches a body that fails, not only a setup or a
    teardown. Suites that skip (NotImplementedError, e.g. no shipped run) count as run."""
    import inspect
    import time

    suites = _suites(monkeypatch)
    monkeypatch.chdir(tmp_path)  # asv runs setup_cache in a directory of its own (ingest writes its inputs there)
    assert len(suites) >= 15
    ran, took = [], {}
    for name, benches in sorted(suites.items()):
        bench = sorted(benches, key=lambda b: (not b.name.rsplit(".", 1)[-1].startswith("time_"), b.name))[0]
        small = SMALL.get(name, {})
        glb = bench.func.__globals__
        for key, value in small.get("globals", {}).items():
            monkeypatch.setitem(glb, key, _two_stdlib_runs() if value == "two stdlib runs" else value)
        if small.get("small_scenarios"):
            scenario = glb["_scenario"]
            monkeypatch.setitem(glb, "_scenario", lambda tasks, pair, seed=0, **kw: scenario(10, pair, seed, **kw))
        owner = getattr(bench.func, "__self__", None)
        for key, value in small.get("class", {}).items():
            monkeypatch.setattr(type(owner), key, value)
        started = time.perf_counter()
        try:
            cache = bench.do_setup_cache() if bench.setup_cache_key is not None else None
        except NotImplementedError:
            ran.append(name)
            continue
        bench.set_cache(cache)
        if "params" in small:
            bench._current_params = tuple(small["params"])
        elif bench._params:
            bench.set_param_idx(0)
        skipped = bench.do_setup()
        try:
            if not skipped:
                args = bench._build_params()
                assert len(inspect.signature(bench.func).parameters) == len(args), bench.name
                bench.func(*args)
        finally:
            bench.do_teardown()
        ran.append(name)
        took[name] = time.perf_counter() - started
    assert sorted(ran) == sorted(suites)
    print({k: round(v, 2) for k, v in sorted(took.items(), key=lambda kv: -kv[1])})
