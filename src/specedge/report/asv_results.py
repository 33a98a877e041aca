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
from pathlib import Path

import pandas as pd

#: Columns of :func:`all_results`.
ROW_COLUMNS = ["benchmark", "type", "params", "value", "unit", "commit", "date", "machine", "env"]


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


def all_results(results_dir: Path | None = None) -> pd.DataFrame:
    """Every stored asv result as rows (benchmark, type, params, value, unit, commit, date, machine, env),
    oldest first; an empty frame when there are none. ``date`` is a UTC timestamp (asv's commit date)."""
    results_dir = Path(results_dir) if results_dir is not None else find_results_dir()
    if not results_dir.is_dir():
        return pd.DataFrame(columns=ROW_COLUMNS)
    meta = _load_plain(results_dir / "benchmarks.json") if (results_dir / "benchmarks.json").is_file() else None
    meta = meta if isinstance(meta, dict) else {}
    rows = []
    for path in sorted(results_dir.glob("*/*.json")):
        if path.name == "machine.json":
            continue
        data = _load(path)
        if data is None:
            continue
        columns = data["result_columns"]
        machine = str(data.get("params", {}).get("machine", path.parent.name))
        for name, values in data["results"].items():
            record = dict(zip(columns, values))
            params = record.get("params") or []
            result = record.get("result")
            if not isinstance(result, list):
                result = [result]
            combos = list(itertools.product(*params)) if params else [()]
            info = meta.get(name) if isinstance(meta.get(name), dict) else {}
            names = info.get("param_names", [f"p{i}" for i in range(len(params))])
            for combo, value in zip(combos, result):
                rows.append({
                    "benchmark": name,
                    "type": info.get("type", name.rsplit(".", 1)[-1].split("_", 1)[0]),
                    "params": ", ".join(f"{n}={v}" for n, v in zip(names, combo)),
                    "value": float(value) if isinstance(value, (int, float)) else float("nan"),
                    "unit": info.get("unit", ""),
                    "commit": str(data.get("commit_hash", ""))[:8],
                    "date": pd.to_datetime(int(data.get("date") or 0), unit="ms", utc=True),
                    "machine": machine,
                    "env": str(data.get("env_name", "")),
                })
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    return frame.sort_values(["date", "benchmark", "params"], kind="stable").reset_index(drop=True)


def latest(results: pd.DataFrame) -> pd.DataFrame:
    """The newest value of each (machine, benchmark, params): what a partial ``asv run`` left current."""
    if results.empty:
        return results
    ok = results[results["value"].notna()]
    return (ok.groupby(["machine", "benchmark", "params"], sort=True).tail(1)
            .sort_values(["machine", "benchmark", "params"]).reset_index(drop=True))


def _load_plain(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
