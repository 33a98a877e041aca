"""specedge: trace-driven analytical benchmark suite for speculative-decoding LLM serving at the edge.

Data flows one way: traces -> latency -> policies -> replay -> report.
"""

from __future__ import annotations

from specedge.errors import SpecedgeError

__version__ = "0.1.0"

__all__ = ["Plan", "Scenario", "SpecedgeError", "__version__", "evaluate", "optimize"]

# Imported on first use, so that `import specedge` (and the CLI's start-up) stays light.
_LAZY = {"Scenario": "specedge.scenario", "Plan": "specedge.plan", "evaluate": "specedge.replay",
         "optimize": "specedge.policies"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'specedge' has no attribute {name!r}")
