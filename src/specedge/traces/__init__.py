"""Traces: what was measured, stored as versioned Parquet datasets with a catalog.

- :mod:`specedge.traces.schema`: the v1 Arrow schemas (acceptance, compute, aggregate) and ``register_kind``;
- :mod:`specedge.traces.store`: ``open_store`` / ``TraceStore`` (list, info, read, write, verify);
- :mod:`specedge.traces.stats`: τ, m, survival S(i), conditional α_i, histogram, per-request summaries;
- :mod:`specedge.traces.ingest`: Spec-Bench, vLLM, SGLang, llama.cpp, CSV and Parquet readers;
- :mod:`specedge.traces.validate`: the vectorised checks every write and ingest runs first.

See ``design/traces.md`` for the semantics.
"""

from __future__ import annotations
