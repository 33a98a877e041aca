"""A sweep grid: presets × pairs × acceptance sources × policies × seeds × sweep axes, read from TOML.

The TOML form (``examples/grid.toml`` is a worked example)::

    [grid]
    presets = ["paper"]                      # scenario presets
    pairs = ["llama-68m/llama-7b"]           # draft/target card names
    acceptance = ["expected", "iid"]         # "expected", "iid" or a trace dataset id in the store
    policies = ["ad", "paper"]               # policy names or policy presets (policies/*.toml)
    seeds = [0, 1, 2]                        # scenario seeds (task draw, trace assignment, sampling)
    replications = 1                         # Monte Carlo replications per cell (sampled acceptance only)
    chunk_size = 16                          # cells per unit of work (one Parquet file per finished chunk)

    [grid.fixed]                             # scenario overrides applied to every cell
    tasks = 100

    [grid.axes]                              # sweep axes: each a list; the grid is their product
    alpha = [0.6, 0.7, 0.8, 0.9]

A *cell* is one point of the grid. Its id is a hash of everything that defines it, so that a rerun of the
same (or an overlapping) grid recognises the cells it already finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specedge.errors import InputError

#: Columns that identify a cell in the results (before its override columns).
KEY_COLUMNS = ("cell_id", "preset", "pair", "acceptance", "policy", "seed", "replications")
#: Fields of a ``[grid]`` table.
GRID_FIELDS = ("presets", "pairs", "acceptance", "policies", "seeds", "replications", "chunk_size", "fixed", "axes")
#: Default cells per chunk (one Parquet file per finished chunk).
DEFAULT_CHUNK_SIZE = 16


class GridError(InputError):
    """A malformed grid: names the file and the field and says what was expected."""


@dataclass(frozen=True)
class Cell:
    """One point of a grid: the scenario it builds, the policy it runs and the seed it uses."""

    preset: str
    pair: str
    acceptance: str
    policy: str
    seed: int
    replications: int
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def cell_id(self) -> str:
        """A stable 16-hex-digit hash of everything that defines the cell."""
        payload = json.dumps(self.key(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    def key(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "pair": self.pair,
            "acceptance": self.acceptance,
            "policy": self.policy,
            "seed": self.seed,
            "replications": self.replications,
            "overrides": dict(self.overrides),
        }

    def row(self) -> dict[str, Any]:
        """The cell's key columns and override columns, as they appear in a results table."""
        return {
            "cell_id": self.cell_id,
            "preset": self.preset,
            "pair": self.pair,
            "acceptance": self.acceptance,
            "policy": self.policy,
            "seed": self.seed,
            "replications": self.replications,
            **dict(self.overrides),
        }


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep. :meth:`cells` enumerates their product lazily, in a fixed order."""

    presets: tuple[str, ...]
    pairs: tuple[str, ...]
    acceptance: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    replications: int = 1
    fixed: tuple[tuple[str, Any], ...] = ()
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    chunk_size: int = DEFAULT_CHUNK_SIZE
    source: str = field(default="grid", compare=False)

    # ------------------------------------------------------------------ enumeration
    @property
    def size(self) -> int:
        n = len(self.presets) * len(self.pairs) * len(self.acceptance) * len(self.policies) * len(self.seeds)
        for _, values in self.axes:
            n *= len(values)
        return n

    @property
    def override_names(self) -> tuple[str, ...]:
        """Names of the override columns: the fixed overrides, then the axes."""
        return tuple(k for k, _ in self.fixed) + tuple(k for k, _ in self.axes)

    def cells(self) -> Iterator[Cell]:
        """Every cell, lazily (a large grid is never materialised)."""
        axis_names = [k for k, _ in self.axes]
        axis_values = [v for _, v in self.axes]
        for preset, pair, acc, policy, seed in itertools.product(
            self.presets, self.pairs, self.acceptance, self.policies, self.seeds
        ):
            for point in itertools.product(*axis_values):
                overrides = tuple(self.fixed) + tuple(zip(axis_names, point))
                yield Cell(preset, pair, acc, policy, int(seed), self.replications, overrides)

    def override_types(self) -> dict[str, str]:
        """Arrow-friendly type of each override column: ``bool``, ``int64``, ``float64`` or ``string``."""
        out: dict[str, str] = {}
        for name, values in list((k, (v,)) for k, v in self.fixed) + list(self.axes):
            out[name] = _column_type(values, f"{self.source}: override {name!r}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped form (``[grid]`` table contents)."""
        return {
            "presets": list(self.presets),
            "pairs": list(self.pairs),
            "acceptance": list(self.acceptance),
            "policies": list(self.policies),
            "seeds": list(self.seeds),
            "replications": self.replications,
            "chunk_size": self.chunk_size,
            "fixed": dict(self.fixed),
            "axes": {k: list(v) for k, v in self.axes},
        }

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "grid", defaults: Mapping[str, Any] | None = None
                     ) -> Grid:
        """Build a grid from a ``[grid]``-shaped mapping; ``defaults`` fills fields the mapping lacks.

        Every problem raises :class:`GridError` naming ``source`` and the field.
        """
        if not isinstance(data, Mapping):
            raise GridError(f"{source}: expected a table of grid fields, got {type(data).__name__}")
        merged: dict[str, Any] = dict(defaults or {})
        merged.update(data)
        unknown = sorted(set(merged) - set(GRID_FIELDS))
        if unknown:
            raise GridError(f"{source}: unknown field(s) {', '.join(unknown)}; grid fields are "
                            f"{', '.join(GRID_FIELDS)}")
        missing = [k for k in ("presets", "pairs", "acceptance", "policies") if k not in merged]
        if missing:
            raise GridError(f"{source}: missing field(s) {', '.join(missing)} (each a list of strings)")
        fixed = _table(merged.get("fixed", {}), f"{source}: field 'fixed'")
        axes = _table(merged.get("axes", {}), f"{source}: field 'axes'")
        both = sorted(set(fixed) & set(axes))
        if both:
            raise GridError(f"{source}: {', '.join(both)} is both a fixed override and a sweep axis; keep one")
        clash = sorted((set(fixed) | set(axes)) & set(KEY_COLUMNS + RESERVED_COLUMNS))
        if clash:
            raise GridError(f"{source}: override name(s) {', '.join(clash)} clash with result columns; "
                            "use the grid's own fields for those")
        for name, value in fixed.items():
            _scalar(value, f"{source}: fixed.{name}")
        axis_items = []
        for name, values in axes.items():
            if not isinstance(values, list) or not values:
                raise GridError(f"{source}: axes.{name} must be a non-empty list of values, got {values!r}")
            for i, v in enumerate(values):
                _scalar(v, f"{source}: axes.{name}[{i}]")
            axis_items.append((name, tuple(values)))
        grid = cls(
            presets=_strings(merged["presets"], f"{source}: field 'presets'"),
            pairs=_strings(merged["pairs"], f"{source}: field 'pairs'"),
            acceptance=_strings(merged["acceptance"], f"{source}: field 'acceptance'"),
            policies=_strings(merged["policies"], f"{source}: field 'policies'"),
            seeds=_ints(merged.get("seeds", [0]), f"{source}: field 'seeds'"),
            replications=_positive_int(merged.get("replications", 1), f"{source}: field 'replications'"),
            fixed=tuple(fixed.items()),
            axes=tuple(axis_items),
            chunk_size=_positive_int(merged.get("chunk_size", DEFAULT_CHUNK_SIZE), f"{source}: field 'chunk_size'"),
            source=source,
        )
        grid.override_types()  # mixed-type axes fail here, at parse time
        return grid

    @classmethod
    def load(cls, path: str | Path) -> Grid:
        """Read the ``[grid]`` table of a TOML file."""
        path = Path(path)
        data = read_toml(path)
        if "grid" not in data:
            raise GridError(f"{path}: no [grid] table (see examples/grid.toml for the format)")
        extra = sorted(set(data) - {"grid"})
        if extra:
            raise GridError(f"{path}: unknown top-level table(s) {', '.join(extra)}; a grid file has only [grid]")
        return cls.from_mapping(data["grid"], source=f"{path} [grid]")


#: Result columns that overrides may not be named after (they hold the sweep's own bookkeeping).
RESERVED_COLUMNS = ("status", "error", "wall_s", "cpu_s")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is one clear GridError."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise GridError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise GridError(f"{path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise GridError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise GridError(f"{path}: not a UTF-8 text file") from None


# ---------------------------------------------------------------------------------------- field checks
def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise GridError(f"{where} must be a table (name = value), got {type(value).__name__}")
    return dict(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise GridError(f"{where} must be a non-empty list of non-empty strings, got {value!r}")
    if len(set(value)) != len(value):
        raise GridError(f"{where} lists a value twice: {value!r}")
    return tuple(value)


def _ints(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise GridError(f"{where} must be a non-empty list of integers >= 0, got {value!r}")
    if len(set(value)) != len(value):
        raise GridError(f"{where} lists a value twice: {value!r}")
    return tuple(int(v) for v in value)


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GridError(f"{where} must be an integer >= 1, got {value!r}")
    return int(value)


def _scalar(value: Any, where: str) -> None:
    if not isinstance(value, (bool, int, float, str)):
        raise GridError(f"{where} must be a number, a string or a boolean, got {type(value).__name__}")


def _column_type(values: tuple[Any, ...], where: str) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if any(isinstance(v, bool) for v in values):
        raise GridError(f"{where} mixes booleans with other values")
    if all(isinstance(v, int) for v in values):
        return "int64"
    if all(isinstance(v, (int, float)) for v in values):
        return "float64"
    if all(isinstance(v, str) for v in values):
        return "string"
    raise GridError(f"{where} mixes numbers and strings: {list(values)!r}")
