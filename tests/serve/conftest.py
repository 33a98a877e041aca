from __future__ import annotations

import pytest

from .tiny import served


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return served(tmp_path_factory)
