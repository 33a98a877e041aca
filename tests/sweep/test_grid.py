"""Grid files: parsing, cell enumeration and ids, and one clear error per malformed field."""

from __future__ import annotations

import pytest

from specedge.errors import InputError
from specedge.sweep.grid import Cell, Grid, GridError

GOOD = """
[grid]
presets = ["paper"]
pairs = ["llama-68m/llama-7b", "tinyllama-1.1b/llama-7b"]
acceptance = ["expected"]
policies = ["ad", "paper"]
seeds = [0, 1]
replications = 2
chunk_size = 3
[grid.fixed]
tasks = 10
[grid.axes]
alpha = [0.6, 0.8]
bandwidth_hz = [10e6, 20000000]
"""


def _write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_enumerates_the_product_lazily_with_stable_distinct_ids(tmp_path):
    grid = Grid.load(_write(tmp_path, GOOD))
    assert grid.size == 2 * 2 * 2 * 2 * 2
    cells = list(grid.cells())
    assert len(cells) == grid.size
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == len(ids)
    # the same grid read again gives the same ids in the same order
    assert [c.cell_id for c in Grid.load(_write(tmp_path, GOOD, "again.toml")).cells()] == ids
    first = cells[0]
    assert dict(first.overrides) == {"tasks": 10, "alpha": 0.6, "bandwidth_hz": 10e6}
    assert first.replications == 2
    assert grid.override_types() == {"tasks": "int64", "alpha": "float64", "bandwidth_hz": "float64"}


def test_cell_id_depends_on_every_field():
    base = Cell("paper", "a/b", "expected", "ad", 0, 1, (("alpha", 0.8),))
    variants = [
        Cell("other", "a/b", "expected", "ad", 0, 1, (("alpha", 0.8),)),
        Cell("paper", "a/c", "expected", "ad", 0, 1, (("alpha", 0.8),)),
        Cell("paper", "a/b", "iid", "ad", 0, 1, (("alpha", 0.8),)),
        Cell("paper", "a/b", "expected", "paper", 0, 1, (("alpha", 0.8),)),
        Cell("paper", "a/b", "expected", "ad", 1, 1, (("alpha", 0.8),)),
        Cell("paper", "a/b", "expected", "ad", 0, 2, (("alpha", 0.8),)),
        Cell("paper", "a/b", "expected", "ad", 0, 1, (("alpha", 0.9),)),
    ]
    assert len({base.cell_id, *(v.cell_id for v in variants)}) == 1 + len(variants)


BAD = {
    "no grid table": ("[other]\nx = 1\n", "no [grid] table"),
    "not toml": ("[grid\npresets = [", "not valid TOML"),
    "unknown field": (GOOD.replace("chunk_size = 3", "chunk_sise = 3"), "unknown field(s) chunk_sise"),
    "missing policies": (GOOD.replace('policies = ["ad", "paper"]\n', ""), "missing field(s) policies"),
    "policies not strings": (GOOD.replace('policies = ["ad", "paper"]', "policies = [1, 2]"), "field 'policies'"),
    "empty pairs": (GOOD.replace('pairs = ["llama-68m/llama-7b", "tinyllama-1.1b/llama-7b"]', "pairs = []"),
                    "field 'pairs' must be a non-empty list"),
    "duplicate seed": (GOOD.replace("seeds = [0, 1]", "seeds = [0, 0]"), "lists a value twice"),
    "negative seed": (GOOD.replace("seeds = [0, 1]", "seeds = [-1]"), "integers >= 0"),
    "zero replications": (GOOD.replace("replications = 2", "replications = 0"), "field 'replications'"),
    "float chunk": (GOOD.replace("chunk_size = 3", "chunk_size = 2.5"), "field 'chunk_size'"),
    "axis not a list": (GOOD.replace("alpha = [0.6, 0.8]", "alpha = 0.6"), "axes.alpha must be a non-empty list"),
    "empty axis": (GOOD.replace("alpha = [0.6, 0.8]", "alpha = []"), "axes.alpha must be a non-empty list"),
    "mixed axis": (GOOD.replace("alpha = [0.6, 0.8]", 'alpha = [0.6, "high"]'), "mixes numbers and strings"),
    "axis and fixed": (GOOD.replace("tasks = 10", "alpha = 0.7"), "both a fixed override and a sweep axis"),
    "reserved name": (GOOD.replace("tasks = 10", "policy = 'x'"), "clash with result columns"),
    "table value": (GOOD.replace("tasks = 10", "tasks = {a = 1}"), "fixed.tasks must be a number"),
    "extra table": (GOOD + "\n[more]\nx = 1\n", "unknown top-level table(s) more"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_grid_is_one_clear_error_naming_file_and_field(tmp_path, name):
    text, expected = BAD[name]
    path = _write(tmp_path, text)
    with pytest.raises(GridError) as info:
        Grid.load(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert isinstance(info.value, InputError)  # exit status 2 on the command line


def test_missing_grid_file_is_an_input_error(tmp_path):
    with pytest.raises(GridError, match="no such file"):
        Grid.load(tmp_path / "absent.toml")
