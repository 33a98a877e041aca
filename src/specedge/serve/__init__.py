"""A real two-node speculative-decoding serving run on this machine (issue 7).

- :mod:`specedge.serve.engine`: ragged batched forward passes (padding, per-sequence lengths) over the project's
  byte-GPT;
- :mod:`specedge.serve.nodes`: what the two node processes share (pinning, model, warm-up, pipe timing, timed
  passes, records) and their entry point; :mod:`specedge.serve.draft_node` and
  :mod:`specedge.serve.verify_node`: the draft node and the verify node (pipelined round robin);
- :mod:`specedge.serve.run`: the coordinator (spawn, emulated uplink, collection) and :func:`write_run`;
- :mod:`specedge.serve.dataset`: the ``run`` dataset kind (registered with the trace store on import);
- :mod:`specedge.serve.workload`: the CPU scenario, plan checks, prompts; :mod:`specedge.serve.measure`: compute
  traces of the serving engine.

torch is imported only inside the node processes and the measurer.
"""

from __future__ import annotations

from specedge.serve import dataset as _dataset  # noqa: F401  (registers the "run" kind)
