"""What the report computes: a TOML config of grids (the built-in ones are ``configs/default.toml`` and
``configs/quick.toml``; ``examples/report.toml`` is a user's own).

    base = "quick"                  # optional: start from a built-in config and replace what this file gives
    [report]
    title = "..."
    workers = 2                     # local processes for the sweeps

    [comparison]                    # section 1: a grid (see specedge.sweep.grid), usually with replications
    presets = ["paper"]
    pairs = ["llama-68m/llama-7b"]
    acceptance = ["expected", "iid", "@traces"]
    policies = ["ad", "paper"]
    seeds = [0, 1, 2]
    baselines = ["ad", "paper"]     # reductions are reported against these policies
    [comparison.fixed]
    alpha = 0.8

    [sweeps.alpha]                  # section 2: one grid per figure; x names the axis on the x axis
    title = "Latency vs acceptance rate α"
    x = "alpha"
    ...grid fields...

    [headline]                      # section 3: the paper's headline numbers (specedge.experiments)
    enabled = true
    preset = "paper"
    seed = 0
    claims = true                   # and after it the claims audit (specedge.report.claims_section)
    [traces]                        # section 4
    enabled = true
    [optimizer]                     # section 5: optimality gap on small instances + asv results
    enabled = true
    [fidelity]                      # section 6: replay vs the real serving runs in the store (if any)
    enabled = true
    tasks = 8
    instances = 5
    policies = ["paper"]

Tables that merge a base config with a user's file replace whole fields (lists are not concatenated); a sweep
can be dropped with ``enabled = false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from specedge.sweep.grid import Grid, GridError, read_toml

BUILTIN = ("default", "quick")
TOP_LEVEL = ("base", "report", "comparison", "sweeps", "headline", "traces", "optimizer", "fidelity")
REPORT_FIELDS = ("title", "workers")
SWEEP_EXTRA = ("title", "x", "x_scale", "x_label", "metric", "caption", "enabled")
SECTION_FIELDS = {
    "headline": ("enabled", "preset", "seed", "claims"),
    "traces": ("enabled", "max_datasets"),
    "optimizer": ("enabled", "tasks", "instances", "policies", "seed"),
    "fidelity": ("enabled",),
}


@dataclass(frozen=True)
class SweepSpec:
    """One figure of section 2: a grid and how to plot it."""

    name: str
    title: str
    grid: Grid
    x: str
    x_scale: float = 1.0
    x_label: str = ""
    metric: str = "makespan_s"
    caption: str = ""


@dataclass(frozen=True)
class ReportConfig:
    """Everything :func:`specedge.report.build.build_report` needs to know about what to compute."""

    name: str
    title: str
    workers: int
    comparison: Grid | None
    baselines: tuple[str, ...]
    sweeps: tuple[SweepSpec, ...]
    headline: dict[str, Any] = field(default_factory=dict)
    traces: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def _builtin(name: str) -> tuple[dict[str, Any], str]:
    ref = resources.files("specedge.report") / "configs" / f"{name}.toml"
    with resources.as_file(ref) as path:
        return read_toml(Path(path)), f"built-in config {name!r}"


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in ("fixed", "axes"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, *, quick: bool = False) -> ReportConfig:
    """The built-in ``default`` (or ``quick``) config, or the file at ``path`` (merged onto its ``base``)."""
    if path is None:
        data, source = _builtin("quick" if quick else "default")
        return parse_config(data, source=source, name="quick" if quick else "default")
    path = Path(path)
    data = read_toml(path)
    base = data.get("base")
    if base is not None:
        if base not in BUILTIN:
            raise GridError(f"{path}: field 'base' must be one of {', '.join(BUILTIN)}, got {base!r}")
        data = _merge(_builtin(base)[0], {k: v for k, v in data.items() if k != "base"})
    return parse_config(data, source=str(path), name=path.stem)


def parse_config(data: Mapping[str, Any], *, source: str, name: str = "report") -> ReportConfig:
    """Validate a config mapping; every problem is one GridError naming ``source`` and the field."""
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise GridError(f"{source}: unknown table(s) {', '.join(unknown)}; a report config has "
                        f"{', '.join(TOP_LEVEL)}")
    report = _fields(data.get("report", {}), REPORT_FIELDS, f"{source} [report]")
    workers = report.get("workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise GridError(f"{source} [report]: field 'workers' must be an integer >= 1, got {workers!r}")

    comparison, baselines = None, ()
    if "comparison" in data:
        comp = dict(_table(data["comparison"], f"{source} [comparison]"))
        raw_baselines = comp.pop("baselines", None)
        enabled = comp.pop("enabled", True)
        if enabled:
            comparison = Grid.from_mapping(comp, source=f"{source} [comparison]")
            if raw_baselines is None:
                raw_baselines = list(comparison.policies[:1])
            if (not isinstance(raw_baselines, list)
                    or not all(isinstance(b, str) and b in comparison.policies for b in raw_baselines)):
                raise GridError(f"{source} [comparison]: field 'baselines' must list policies of the comparison "
                                f"({', '.join(comparison.policies)}), got {raw_baselines!r}")
            baselines = tuple(raw_baselines)

    sweeps = []
    for key, raw in _table(data.get("sweeps", {}), f"{source} [sweeps]").items():
        where = f"{source} [sweeps.{key}]"
        spec = dict(_table(raw, where))
        extra = {k: spec.pop(k) for k in SWEEP_EXTRA if k in spec}
        if not extra.get("enabled", True):
            continue
        grid = Grid.from_mapping(spec, source=where)
        x = extra.get("x")
        if not isinstance(x, str) or x not in dict(grid.axes):
            raise GridError(f"{where}: field 'x' must name one of the sweep's axes "
                            f"({', '.join(dict(grid.axes)) or 'none defined'}), got {x!r}")
        scale = extra.get("x_scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
            raise GridError(f"{where}: field 'x_scale' must be a number > 0, got {scale!r}")
        for text in ("title", "x_label", "caption", "metric"):
            if text in extra and not isinstance(extra[text], str):
                raise GridError(f"{where}: field {text!r} must be a string")
        sweeps.append(SweepSpec(name=key, title=extra.get("title", key), grid=grid, x=x, x_scale=float(scale),
                                x_label=extra.get("x_label", ""), metric=extra.get("metric", "makespan_s"),
                                caption=extra.get("caption", "")))

    sections = {}
    for sec, allowed in SECTION_FIELDS.items():
        table = _fields(data.get(sec, {}), allowed, f"{source} [{sec}]")
        if not isinstance(table.get("enabled", True), bool):
            raise GridError(f"{source} [{sec}]: field 'enabled' must be true or false")
        sections[sec] = {"enabled": True, **table}
    opt = sections["optimizer"]
    head = sections["headline"]
    if not isinstance(head.get("preset", "paper"), str):
        raise GridError(f"{source} [headline]: field 'preset' must be a preset name")
    if "seed" in head and (not isinstance(head["seed"], int) or isinstance(head["seed"], bool) or head["seed"] < 0):
        raise GridError(f"{source} [headline]: field 'seed' must be a non-negative integer")
    if not isinstance(head.get("claims", True), bool):
        raise GridError(f"{source} [headline]: field 'claims' must be true or false")
    for key in ("tasks", "instances", "seed"):
        if key in opt and (not isinstance(opt[key], int) or isinstance(opt[key], bool) or opt[key] < 0):
            raise GridError(f"{source} [optimizer]: field {key!r} must be a non-negative integer")
    if "policies" in opt and (not isinstance(opt["policies"], list)
                              or not all(isinstance(p, str) for p in opt["policies"])):
        raise GridError(f"{source} [optimizer]: field 'policies' must be a list of policy names")
    title = report.get("title", "specedge comparison report")
    if not isinstance(title, str):
        raise GridError(f"{source} [report]: field 'title' must be a string")
    return ReportConfig(name=name, title=title, workers=workers, comparison=comparison, baselines=baselines,
                        sweeps=tuple(sweeps), headline=sections["headline"], traces=sections["traces"],
                        optimizer=opt, fidelity=sections["fidelity"], source=source)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise GridError(f"{where}: expected a table, got {type(value).__name__}")
    return dict(value)


def _fields(value: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    table = _table(value, where)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise GridError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return table
