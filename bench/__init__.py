"""specedge's benchmarks: asv suites (``bench/<area>.py``), pytest-benchmark tests (``bench/test_*.py``) and the
straightforward reference implementations the fast paths are checked and timed against.

asv runs the benchmarks against an installed wheel, where the card loader cannot find this checkout's
``models/``; importing this package points it there (unless the caller already set ``SPECEDGE_MODELS``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout these benchmarks belong to.
CHECKOUT = Path(__file__).resolve().parents[1]

os.environ.setdefault("SPECEDGE_MODELS", str(CHECKOUT / "models"))
