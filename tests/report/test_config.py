"""Report configs: the built-in ones parse, a user's file merges onto a base, bad fields are clear errors."""

from __future__ import annotations

import pytest

from specedge.report.config import load_config
from specedge.sweep.grid import GridError


def test_builtin_configs_parse_and_quick_is_smaller():
    default, quick = load_config(), load_config(quick=True)
    assert default.name == "default" and quick.name == "quick"
    assert quick.comparison.size < default.comparison.size
    assert {s.name for s in default.sweeps} == {"alpha", "input", "output", "tasks", "bandwidth"}
    for spec in default.sweeps:
        assert spec.x in dict(spec.grid.axes)
    assert set(default.baselines) <= set(default.comparison.policies)


def test_user_config_merges_onto_its_base(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("""
base = "quick"
[report]
title = "mine"
[comparison]
policies = ["ad", "paper-dp"]
baselines = ["ad"]
[sweeps.bandwidth]
enabled = false
[optimizer]
enabled = false
""")
    cfg = load_config(path)
    assert cfg.title == "mine" and cfg.name == "mine"
    assert cfg.comparison.policies == ("ad", "paper-dp")
    assert cfg.comparison.pairs == load_config(quick=True).comparison.pairs  # kept from the base
    assert [s.name for s in cfg.sweeps] == ["alpha"]
    assert cfg.optimizer["enabled"] is False


BAD = {
    "unknown table": ("[reprt]\ntitle = 'x'\n", "unknown table(s) reprt"),
    "bad base": ("base = 'huge'\n", "field 'base' must be one of"),
    "bad workers": ("base = 'quick'\n[report]\nworkers = 0\n", "field 'workers'"),
    "unknown report field": ("base = 'quick'\n[report]\ncolour = 'red'\n", "unknown field(s) colour"),
    "baseline not compared": ("base = 'quick'\n[comparison]\nbaselines = ['oracle']\n", "field 'baselines'"),
    "x not an axis": ("base = 'quick'\n[sweeps.alpha]\nx = 'tasks'\n", "field 'x' must name one of"),
    "bad scale": ("base = 'quick'\n[sweeps.alpha]\nx_scale = -1\n", "field 'x_scale'"),
    "grid field": ("base = 'quick'\n[sweeps.alpha]\nseeds = 'all'\n", "field 'seeds'"),
    "optimizer tasks": ("base = 'quick'\n[optimizer]\ntasks = 'eight'\n", "field 'tasks'"),
    "traces field": ("base = 'quick'\n[traces]\nshow = true\n", "unknown field(s) show"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_is_one_error_naming_file_and_field(tmp_path, name):
    text, expected = BAD[name]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(GridError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)
