"""Read asv's results JSON (``.asv/results/<machine>/<commit>-<env>.json``) without importing asv.

asv (api version 2) writes one file per (machine, commit, environment): ``results`` maps a benchmark name to a row
whose columns ``result_columns`` names (``result``, ``params``, ``version``, ``started_at``, ``duration``,
``stats_*``, ...); ``result`` is a list with one value per combination of the benchmark's ``params``
(itertools.product order), ``None`` where that combination failed or was skipped. ``benchmarks.json`` in the
results folder gives each benchmark's type (time, peakmem, track) and unit.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class AsvRun:
    """The newest results file found and its rows (one per benchmark and parameter combination)."""

    path: Path
    machine: str
    commit: str
    date_ms: int
    env: str
    rows: pd.DataFrame
    files: int


def find_results_dir(start: Path | None = None) -> Path:
    """``<repository>/.asv/results`` for a source checkout, else ``./.asv/results``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "asv.conf.json").is_file():
            return parent / ".asv" / "results"
    return (start or Path.cwd()) / ".asv" / "results"


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "results" not in data or "result_columns" not in data:
        return None
    return data


def latest_run(results_dir: Path | None = None) -> AsvRun | None:
    """The most recent asv results file (by its ``date``), expanded to rows; None when there is none."""
    results_dir = Path(results_dir) if results_dir is not None else find_results_dir()
    if not results_dir.is_dir():
        return None
    candidates = []
    for path in results_dir.glob("*/*.json"):
        if path.name == "machine.json":
            continue
        data = _load(path)
        if data is not None:
            candidates.append((int(data.get("date") or 0), path, data))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], str(c[1])))
    date_ms, path, data = candidates[-1]
    meta = {}
    bench_json = results_dir / "benchmarks.json"
    if bench_json.is_file():
        loaded = _load_plain(bench_json)
        meta = loaded if isinstance(loaded, dict) else {}
    columns = data["result_columns"]
    rows = []
    for name, values in data["results"].items():
        record = dict(zip(columns, values))
        params = record.get("params") or []
        result = record.get("result")
        if not isinstance(result, list):
            result = [result]
        combos = list(itertools.product(*params)) if params else [()]
        info = meta.get(name, {}) if isinstance(meta.get(name), dict) else {}
        names = info.get("param_names", [f"p{i}" for i in range(len(params))])
        for combo, value in zip(combos, result):
            rows.append({
                "benchmark": name,
                "type": info.get("type", name.rsplit(".", 1)[-1].split("_", 1)[0]),
                "params": ", ".join(f"{n}={v}" for n, v in zip(names, combo)),
                "value": float(value) if isinstance(value, (int, float)) else float("nan"),
                "unit": info.get("unit", ""),
            })
    return AsvRun(path=path, machine=str(data.get("params", {}).get("machine", path.parent.name)),
                  commit=str(data.get("commit_hash", ""))[:12], date_ms=date_ms, env=str(data.get("env_name", "")),
                  rows=pd.DataFrame(rows, columns=["benchmark", "type", "params", "value", "unit"]),
                  files=len(candidates))


def _load_plain(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
