"""The paper's claims, audited: which of its numbers the latency model explains and which are fitted.

A claim i is a percent change of latency, v_i(theta) = 100 (T_policy / T_baseline - 1) [P: the paper's metric],
recomputed by replay under a preset with parameters theta (docs/model.md section 7). Modules:

- :mod:`.evaluate` -- v(theta) for the eight numeric claims, the paper's y [P], and each claim's *basis* under a
  preset: ``fitted`` when the preset's ``[calibrated]`` table says a parameter was solved on it, else
  ``predicted``;
- :mod:`.sensitivity` -- S_i(p, f) = v_i(p -> f p) - v_i for every [A] parameter p, f in {0.5, 2} [A: dB
  parameters +-3.01 dB, efficiencies capped at 1, switches flipped]; ``depends_on`` = {p : max |S_i| >= 1 point};
- :mod:`.calibrate` -- min_theta sum_i (v_i(theta) - y_i)^2 over named [A] parameters within documented bounds
  (scipy least squares, multi-start), and leave-one-claim-out predictions v_j(theta_{-j});
- :mod:`.qualitative` -- the five figure sweeps' trends as pass/fail statements with their numbers;
- :mod:`.audit` -- one row per claim for ``specedge claims`` and the report; :mod:`.cache` keeps the expensive
  results on disk keyed by the source code; :mod:`.figures` draws the tornado and leave-one-out figures.
"""
