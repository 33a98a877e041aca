"""Provenance paths never name the recording machine's folders (specedge.provenance.portable_path)."""

from pathlib import Path

import pytest

from specedge.provenance import REPO_ROOT, portable_path


def test_inside_the_repository_is_repo_relative():
    assert portable_path(REPO_ROOT / "models" / "checkpoints" / "x.pt") == "models/checkpoints/x.pt"


def test_site_packages_names_the_distribution_and_version():
    import numpy

    where = Path(numpy.__file__).parent / "core"
    got = portable_path(where)
    assert got.startswith("numpy==" + numpy.__version__ + ":numpy/")
    assert "/" + "site-packages" not in got and not got.startswith("/")


def test_elsewhere_keeps_only_the_file_name(tmp_path):
    got = portable_path(tmp_path / "plans" / "p.json")
    assert got == "p.json (outside the repository)"
    assert str(tmp_path) not in got


@pytest.mark.parametrize("value", [None, "plans/p.json"])
def test_none_and_relative_paths_pass_through(value):
    assert portable_path(value) == value
