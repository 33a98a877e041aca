"""Online serving: requests that arrive over time, continuous batching, SLO goodput, online policies.

The static replay (:mod:`specedge.replay`) serves K tasks that all arrive at t = 0 under one plan. This package
serves a workload (:mod:`~specedge.online.workload`: Poisson, Gamma, recorded traces) with the same latency model,
cards, acceptance sources and compute predictors, and comes back to the static replay exactly when every arrival
is at 0, the policy follows the plan and the uplink follows the paper's rule (tests/online/test_static_case.py).

Model (the engine, :mod:`~specedge.online.engine` + :mod:`~specedge.online.kernel`):

- uplink: :mod:`~specedge.online.uplink` (equal-finish closed form re-applied per epoch [P/A], equal share [A],
  fixed band [A]); a request can join a batch once its upload has ended;
- the SBS holds ``num_slots`` batches [A], visited round-robin (the paper's order of jobs [A]); a visit is one
  round of one batch: requests join at its boundary (continuous batching up to ``max_batch_size`` and the SBS
  memory rule, which uses the batch's padding: I_pad = the longest input since the batch last emptied, O_pad the
  same for outputs [P rule, A for a changing batch]), members that finish leave after the round [A];
- a round's stage times: joiners run their prefill and first round as in the static first round (draft prefill
  x = I_j, then l - 1 decode passes; verification x = I_j + l + 1 at c = 0), continuing members their decode
  passes at the padded context C = I_pad + the most tokens a continuing member has committed; the two groups'
  passes are summed, not fused [A: no chunked prefill]; l = 0 is an AD round (no drafting, one target pass);
- the two-stage recursion of :mod:`specedge.latency.pipeline` (pipelined or serial), job by job:
  draft_end = max(SBS free, t_m) + t_d, verify_end = max(draft_end + f, MBS free) + t_v, with t_m the batch's
  round boundary max(its previous verify_end + f, for a new batch the time it is formed);
- metrics: :mod:`~specedge.online.metrics` (TTFT, TPOT, e2e, percentiles, SLO attainment, goodput, utilisation).

Several cells (issue 13): the per-batch state is a set of arrays indexed by slot (``s_n``, ``s_req``, ``s_pad``,
``s_vend``, ...) and the SBS and MBS clocks are two scalars (``st_f[0]``, ``st_f[1]``). N cells sharing one
MBS verifier are N groups of slots with a ``slot -> cell`` index: each cell keeps its own SBS clock, uplink
(upload ends computed per cell with its own users and band), queue head and stage tables (its own draft model and
device), while every cell's verification jobs go through the one MBS clock ``mbs_free`` in the order the jobs are
issued. The recursion line ``v = max(a + f, mbs_free) + t_v`` is then the only coupling between cells; a
verifier scheduling rule other than issue order would replace the single round-robin cursor with one per cell
and a choice of the next cell (earliest draft_end first is the natural one).

Entry points: :func:`simulate` (one run), :func:`summarize` (metrics), :func:`evaluate_online_cell` (the sweep
engine's cell function, :mod:`~specedge.online.sweep`).
"""

from specedge.online.engine import Compiled, MatrixFeed, OnlineConfig, OnlineRun, SourceFeed, simulate
from specedge.online.workload import Workload, all_at_zero, from_frame, synthetic

__all__ = ["Compiled", "MatrixFeed", "OnlineConfig", "OnlineRun", "SourceFeed", "Workload", "all_at_zero",
           "from_frame", "simulate", "synthetic"]
