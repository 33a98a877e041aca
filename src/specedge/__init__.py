"""specedge: trace-driven analytical benchmark suite for speculative-decoding LLM serving at the edge.

Data flows one way: traces -> latency -> policies -> replay -> report.
"""

from __future__ import annotations

from specedge.errors import SpecedgeError

__version__ = "0.1.0"

__all__ = ["SpecedgeError", "__version__"]
