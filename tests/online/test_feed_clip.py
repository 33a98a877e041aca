"""A feed's potential accepted counts are clipped to l_max when staged (``engine.stage``).

A round commits min(G, l) + 1 with l <= l_max, so clipping G to l_max changes no run, except that the kernel
stores staged draws as int8: a feed that says "accept everything" with a count above 127 (a MatrixFeed is
free to) would wrap around without the clip (258 -> 2). The clip makes any G >= l_max mean "all l accepted".
"""

import numpy as np

from specedge.online import MatrixFeed, OnlineConfig, simulate, synthetic


def test_counts_above_int8_mean_every_draft_accepted(paper_sc):
    w = synthetic(paper_sc.params, rate_rps=0.3, num_requests=20, seed=2)
    width = int(w.output_tokens.max())
    cfg = OnlineConfig(max_speculation_length=6)
    everything = simulate(paper_sc, w, "fcfs", cfg, feed=MatrixFeed(np.full((20, width), 258)))
    at_lmax = simulate(paper_sc, w, "fcfs", cfg, feed=MatrixFeed(np.full((20, width), 6)))
    np.testing.assert_array_equal(everything.completion_s, at_lmax.completion_s)
    np.testing.assert_array_equal(everything.rounds, at_lmax.rounds)
    # fcfs drafts l = 4: every round commits 5 tokens
    np.testing.assert_array_equal(everything.rounds, -(-w.output_tokens // 5))
