import pytest

from specedge import Scenario


@pytest.fixture(scope="session")
def paper_sc():
    return Scenario.from_preset("paper", pair="llama-68m/llama-7b", tasks=12, seed=3)
