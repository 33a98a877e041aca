"""The latency model: cards, FLOPs, compute predictors, uplink, memory, the pipeline recursion, planning helpers.

Submodules (import them directly; nothing heavy is imported here):

- :mod:`~specedge.latency.cards`: model and device cards (``models/cards``, ``models/devices``);
- :mod:`~specedge.latency.flops`: FLOPs and bytes of one forward pass;
- :mod:`~specedge.latency.compute`: compute-latency predictors (affine, roofline, measured);
- :mod:`~specedge.latency.network`: path loss, spectral efficiency, bandwidth allocation, upload times;
- :mod:`~specedge.latency.memory`: the SBS memory check;
- :mod:`~specedge.latency.params`: every modelling parameter, named and documented;
- :mod:`~specedge.latency.rounds`: stage times of one speculative-decoding round;
- :mod:`~specedge.latency.pipeline`: the two-stage recursion (pipelined, serial, AD);
- :mod:`~specedge.latency.planning`: the planning assumption's per-batch costs, vectorised for optimizers;
- :mod:`~specedge.latency.acceptance`: acceptance sources (expected, i.i.d., trace, aggregate).
"""
