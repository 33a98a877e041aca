"""The vectorised replay of one replication: a plan and acceptance draws in, per-task and per-job arrays out.

Steps (no Python loop over rounds or tokens except the pipelined recursion itself, see
:mod:`specedge.latency.pipeline`):

1. tokens committed per (round, task): ``min(G, l) + 1`` (sampled sources) or L(l, alpha) (expected) or 1 (AD),
   round-major, tasks grouped by batch; cumulative sums give each task's round count;
2. per (round, batch): live members b and padded context C = I_max + the most tokens a live member has committed
   (finished members leave the batch [A]);
3. jobs in round-robin order, their stage times (:mod:`specedge.latency.rounds`) and the recursion;
4. per task: upload end, first token, completion, rounds, extrapolated rounds.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from specedge.errors import PlanError
from specedge.latency import memory, network, rounds
from specedge.latency.acceptance import NO_CAP, expected_tokens_per_round
from specedge.latency.pipeline import run_jobs
from specedge.plan import Plan
from specedge.replay.accounting import EXPECTED, ONE_TOKEN, SAMPLED, TRACE, account

_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class PreparedPlan:
    """A validated plan in array form; tasks are reordered so that each batch is contiguous."""

    plan: Plan
    mode: str
    order: np.ndarray  # task index at each position (batch-contiguous)
    batch_of: np.ndarray  # batch of each position
    starts: np.ndarray  # first position of each batch
    sizes: np.ndarray
    l_batch: np.ndarray  # plan's speculation length per batch
    input_max: np.ndarray  # per batch (padding)
    output_max: np.ndarray  # per batch
    output: np.ndarray  # per position
    upload_s: np.ndarray  # per task (task order)
    ready_s: np.ndarray  # per batch


#: Task columns prepare() reads, per scenario (a scenario's task table is not modified after construction).
_COLUMNS = ("input_tokens", "output_tokens", "payload_bits", "spectral_efficiency")
_task_columns_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def task_columns(sc) -> dict[str, np.ndarray]:
    """The task table's planning columns as numpy arrays, read once per scenario (pandas column access costs
    more than a whole small replay); rebuilt if the scenario's table object was replaced."""
    hit = _task_columns_cache.get(sc)
    if hit is None or hit[0] is not sc.tasks:
        hit = (sc.tasks, {c: sc.tasks[c].to_numpy() for c in _COLUMNS})
        _task_columns_cache[sc] = hit
    return hit[1]


def prepare(sc, plan: Plan | dict) -> PreparedPlan:
    """Validate a plan against the scenario (tasks, bandwidth, l >= 1, SBS memory) and lay it out as arrays."""
    if not isinstance(plan, Plan):
        plan = Plan.from_dict(plan)
    k = sc.num_tasks
    plan.validate(k)
    sizes = np.array([len(b) for b in plan.batches], dtype=np.int64)
    order = np.fromiter((i for b in plan.batches for i in b), dtype=np.int64, count=k)
    starts = (np.cumsum(sizes) - sizes).astype(np.int64)
    batch_of = np.repeat(np.arange(sizes.size), sizes)
    cols = task_columns(sc)
    inputs = cols["input_tokens"][order]
    outputs = cols["output_tokens"][order]
    input_max = np.maximum.reduceat(inputs, starts).astype(np.float64)
    output_max = np.maximum.reduceat(outputs, starts).astype(np.int64)
    l_batch = np.asarray(plan.speculation_length, dtype=np.int64)
    if plan.mode != "ad":
        fits = memory.sbs_fits(sc, sizes, input_max, output_max)
        if not fits.all():
            m = int(np.flatnonzero(~fits)[0])
            need = memory.sbs_bytes(sc.draft, sc.params, sizes[m], input_max[m], output_max[m])
            raise PlanError(
                f"plan: batch {m} ({sizes[m]} tasks, I_max={int(input_max[m])}, O_max={int(output_max[m])}) needs "
                f"{need / 1e9:.2f} GB of SBS memory for {sc.draft.name}, more than sbs_memory_bytes="
                f"{sc.params.sbs_memory_bytes / 1e9:.2f} GB"
            )
    upload = network.upload_times_s(cols["payload_bits"], cols["spectral_efficiency"], np.asarray(plan.bandwidth_hz))
    if sc.params.release == "all-uploads":
        ready = np.full(sizes.size, upload.max())
    else:
        ready = np.maximum.reduceat(upload[order], starts)
    return PreparedPlan(plan, plan.mode, order, batch_of, starts, sizes, l_batch, input_max, output_max, outputs,
                        upload, ready)


@dataclass(frozen=True, eq=False)
class Run:
    """Arrays of one replication. Task arrays are in task order (index = row of ``scenario.tasks``)."""

    upload_s: np.ndarray
    ready_s: np.ndarray
    first_token_s: np.ndarray
    completion_s: np.ndarray
    rounds: np.ndarray
    round_tokens: np.ndarray  # tokens committed over the task's rounds before truncation at O_k
    extrapolated_rounds: np.ndarray
    batch: np.ndarray
    output_tokens: np.ndarray
    # jobs, round-robin order
    job_batch: np.ndarray
    job_round: np.ndarray
    job_batch_size: np.ndarray
    job_context: np.ndarray
    job_l: np.ndarray
    job_draft_s: np.ndarray
    job_verify_s: np.ndarray
    job_draft_end_s: np.ndarray
    job_verify_end_s: np.ndarray

    @property
    def makespan_s(self) -> float:
        return float(self.completion_s.max())


def _l_matrix(prep: PreparedPlan, schedule, num_rounds: int) -> np.ndarray:
    """(rounds, batches) speculation lengths: the plan's, or a per-(batch, round) schedule (last value repeats)."""
    if schedule is None:
        return np.broadcast_to(prep.l_batch, (num_rounds, prep.sizes.size))
    out = np.empty((num_rounds, prep.sizes.size), dtype=np.int64)
    for m, seq in enumerate(schedule):
        seq = np.asarray(seq, dtype=np.int64).ravel()
        if seq.size == 0:
            seq = prep.l_batch[m : m + 1]
        n = min(seq.size, num_rounds)
        out[:n, m] = seq[:n]
        out[n:, m] = seq[-1]
    if (out < 1).any():
        raise PlanError("speculation-length schedule: every l must be >= 1")
    return out


def _accounting(sc, prep: PreparedPlan, draws, schedule, num_rounds: int):
    """:func:`specedge.replay.accounting.account` for ``num_rounds`` rounds, and the l matrix."""
    l_rm = np.ascontiguousarray(_l_matrix(prep, schedule, num_rounds), dtype=np.int64)
    empty = np.zeros((0, 0), dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    tokens_by_l = np.zeros(0)
    trace = (none, none, none)
    if prep.mode == "ad":
        kind, g, cap = ONE_TOKEN, empty, empty
    elif draws is None:  # expected
        kind, g, cap = EXPECTED, empty, empty
        tokens_by_l = np.asarray(expected_tokens_per_round(np.arange(int(l_rm.max()) + 1), sc.acceptance.alpha),
                                 dtype=np.float64)
    elif draws.source.kind == "trace" and not draws.use_uniforms:  # read the recorded stream in place
        kind, g, cap = TRACE, empty, empty
        src = draws.source
        trace = (np.asarray(src.unit_starts[draws.assignment], dtype=np.int64),
                 np.asarray(src.accepted, dtype=np.int64), np.asarray(src.drafted, dtype=np.int64))
    else:
        kind = SAMPLED
        g, cap = draws.get(num_rounds)
    return account(kind, g, cap, l_rm, tokens_by_l, prep.batch_of, prep.order, prep.output.astype(np.float64),
                   _EPS, *trace, NO_CAP) + (l_rm,)


def _initial_rounds(sc, prep: PreparedPlan, schedule) -> int:
    o_max = int(prep.output.max())
    if prep.mode == "ad":
        return o_max
    l_min = int(prep.l_batch.min()) if schedule is None else 1
    a = float(sc.alpha)  # L(l_min, alpha) as a scalar (only sizes the first pass; more rounds are added if short)
    per_round = l_min + 1.0 if abs(a - 1.0) <= 1e-8 + 1e-5 else (1.0 - a ** (l_min + 1.0)) / (1.0 - a)
    if sc.acceptance.kind == "expected":
        return min(o_max, int(np.ceil(o_max / per_round - _EPS)))
    return min(o_max, int(np.ceil(1.25 * o_max / per_round)) + 16)


def simulate(sc, prep: PreparedPlan, draws=None, schedule=None) -> Run:
    """Replay one replication (see the module docstring). ``draws``: an AcceptanceDraws (None for expected/AD)."""
    p = sc.params
    o_pos = prep.output
    num_rounds = _initial_rounds(sc, prep, schedule)
    o_max = int(o_pos.max())
    while True:
        n_rounds, cum, before_last, extrap_pos, batch_size, ctx_extra, finished, l_rm = _accounting(
            sc, prep, draws, schedule, num_rounds)
        if num_rounds >= o_max or finished:
            break
        num_rounds = min(o_max, 2 * num_rounds)
    r_max = int(n_rounds.max())
    batch_size = batch_size[:r_max]
    ctx_extra = ctx_extra[:r_max]

    # jobs: round-major nonzeros are the round-robin order
    rnd, bat = np.nonzero(batch_size)
    job_b = batch_size[rnd, bat]
    job_ctx = prep.input_max[bat] + ctx_extra[rnd, bat]
    job_i = prep.input_max[bat]
    job_l = l_rm[rnd, bat]
    first = rnd == 0
    if prep.mode == "ad":
        td = np.zeros(rnd.size)
        tv = rounds.ad_round_s(sc.verify_compute, job_b, job_ctx, job_i, first)
    else:
        td, tv = rounds.sd_jobs_s(sc.draft_compute, sc.verify_compute, job_b, job_ctx, job_i, job_l, first)
    index = np.full(batch_size.shape, -1, dtype=np.int64)
    index[rnd, bat] = np.arange(rnd.size)
    prev = np.where(first, -1, index[np.maximum(rnd - 1, 0), bat])
    a_end, v_end = run_jobs(prep.mode, prev, prep.ready_s[bat], td, tv,
                            fronthaul_delay_s=0.0 if prep.mode == "ad" else p.fronthaul_delay_s)

    # per position, then back to task order
    pos_first = v_end[index[0, prep.batch_of]]
    last = n_rounds - 1
    pos_done = v_end[index[last, prep.batch_of]]
    cols = np.arange(prep.order.size)
    last_round_tokens = o_pos - before_last
    d = p.downlink_s_per_token
    if d:
        pos_first = pos_first + d
        pos_done = pos_done + d * last_round_tokens
    round_tokens = cum if draws is None else cum.astype(np.int64)  # sampled: whole tokens
    inv = np.empty_like(prep.order)
    inv[prep.order] = cols
    return Run(
        upload_s=prep.upload_s, ready_s=prep.ready_s[prep.batch_of][inv], first_token_s=pos_first[inv],
        completion_s=pos_done[inv], rounds=n_rounds[inv], round_tokens=round_tokens[inv],
        extrapolated_rounds=extrap_pos[inv], batch=prep.batch_of[inv], output_tokens=o_pos[inv],
        job_batch=bat, job_round=rnd, job_batch_size=job_b, job_context=job_ctx, job_l=job_l, job_draft_s=td,
        job_verify_s=tv, job_draft_end_s=a_end, job_verify_end_s=v_end,
    )
