"""The online engine: a workload, a scenario and an online policy in; per-request timings out.

``simulate(sc, workload, policy, config)`` runs three steps:

1. uplink (:mod:`specedge.online.uplink`, vectorised or one heap pass): each request's upload end time; requests
   then queue in upload-end order (the policy may impose its own order, as the plan policy does);
2. stage-time tables from the scenario's compute predictors (:mod:`specedge.online.tables`);
3. the event loop (:mod:`specedge.online.kernel`), resumed whenever it needs the acceptance draws of the next
   ``staging_requests`` requests: only those and the requests in flight hold draws, so memory is bounded by the
   requests in the system, not by the workload.

Acceptance comes from the scenario's source, read through the source's own interface (``assign``/``draw``):
potential accepted counts G per (request, own round) are drawn for a chunk of requests at a time from
``default_rng([seed, _SEED_ONLINE, chunk])``; a round at length l commits min(G, l) + 1 tokens [P/A as in
:mod:`specedge.replay`]; the ``expected`` source commits L(l, alpha) (fractional) and draws nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from specedge.errors import InputError, PlanError
from specedge.latency import network
from specedge.latency.acceptance import expected_tokens_per_round
from specedge.latency.flops import kv_bytes_per_token
from specedge.online import kernel, tables
from specedge.online.uplink import UPLINK_RULES, upload_end_s
from specedge.online.workload import Workload

_SEED_ONLINE = 0x0E11
MODES = ("sd-pipeline", "sd-serial", "ad")


@dataclass(frozen=True)
class OnlineConfig:
    """Every modelling choice of the online engine that is not in the scenario. All [A]."""

    num_slots: int = 2  #: batches in flight, visited round-robin: two keep both stages busy (static case: the plan's)
    max_batch_size: int = 32  #: members of one batch (continuous batching fills up to this and the SBS memory)
    uplink_rule: str = "equal-share"  #: :data:`specedge.online.uplink.UPLINK_RULES`
    mode: str = "sd-pipeline"  #: sd-pipeline, sd-serial (no overlap of drafting and verification) or ad
    max_speculation_length: int = 10  #: largest l a policy may choose (the paper sweeps 1..10)
    ttft_slo_s: float = 10.0  #: a request meets its SLO when TTFT <= this ...
    tpot_slo_s: float = 0.05  #: ... and TPOT <= this (goodput counts such requests per second)
    staging_requests: int = 1024  #: requests whose acceptance draws are staged ahead of admission

    def __post_init__(self):
        if self.uplink_rule not in UPLINK_RULES:
            raise InputError(f"uplink_rule must be one of {', '.join(UPLINK_RULES)}, got {self.uplink_rule!r}")
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("num_slots", "max_batch_size", "max_speculation_length", "staging_requests"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("ttft_slo_s", "tpot_slo_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def replace(self, **kw) -> OnlineConfig:
        known = {f.name for f in fields(self)}
        bad = sorted(set(kw) - known)
        if bad:
            raise InputError(f"unknown online config field(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return OnlineConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **kw})


@dataclass(frozen=True)
class Compiled:
    """What a policy hands the kernel (codes documented in :mod:`specedge.online.kernel`)."""

    adm: tuple = (0,)
    adm_f: tuple = (0.0, 0.0)
    lrule: tuple = (0, 4, 10)
    lrule_f: tuple = (0.0,)
    order: np.ndarray | None = None  # queue order (request indices); None: by upload end
    plan_start: np.ndarray | None = None
    plan_size: np.ndarray | None = None
    plan_ready: np.ndarray | None = None
    plan_l: np.ndarray | None = None
    num_slots: int | None = None
    max_batch_size: int | None = None
    mode: str | None = None
    fixed_bandwidth_hz: np.ndarray | None = None  # per request (request order)


class SourceFeed:
    """Acceptance draws from the scenario's source, in fixed blocks of request ids (deterministic per seed).

    Request k's draws come from block k // ``block`` drawn with ``default_rng([seed, _SEED_ONLINE, block])``:
    they depend on the seed and the request only, not on the policy, the uplink rule or when they are staged
    (common random numbers across policies). Only the last few blocks are cached.
    """

    def __init__(self, source, seed: int, max_l: int, block: int = 256):
        self.source = source
        self.seed = int(seed)
        self.max_l = int(max_l)
        self.block = int(block)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def _block(self, b: int, width: int) -> np.ndarray:
        key = (b, width)
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, _SEED_ONLINE, int(b)])
            assignment = self.source.assign(self.block, rng)
            u = rng.random((width, self.block)) if self.source.needs_uniforms(self.max_l) else None
            g, _cap = self.source.draw(0, width, u, assignment)
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = np.minimum(np.asarray(g).T, self.max_l)
        return self._cache[key]

    def rows(self, ids: np.ndarray, width: int) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        out = np.empty((ids.size, width), dtype=np.int64)
        blocks = ids // self.block
        for b in np.unique(blocks).tolist():
            sel = blocks == b
            out[sel] = self._block(b, width)[ids[sel] % self.block]
        return out


class MatrixFeed:
    """Given draws: ``g[k, n]`` for request k (request order) in its own round n (tests, the static case)."""

    def __init__(self, g):
        self.g = np.asarray(g)

    def rows(self, ids: np.ndarray, width: int) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        out = np.zeros((ids.size, width), dtype=np.int64)
        have = min(width, self.g.shape[1])
        out[:, :have] = self.g[ids, :have]
        return out


@dataclass(frozen=True, eq=False)
class OnlineRun:
    """Per-request arrays in request (arrival) order, and the engine's counters."""

    workload: Workload
    config: OnlineConfig
    policy: str
    upload_end_s: np.ndarray
    start_s: np.ndarray  # first round began (admission)
    first_token_s: np.ndarray
    completion_s: np.ndarray
    rounds: np.ndarray
    slot: np.ndarray
    sbs_busy_s: float
    mbs_busy_s: float
    jobs: int
    member_rounds: int
    l_histogram: np.ndarray = field(repr=False)  # rounds run at l = 0 (AD), 1, ..., l_max

    @property
    def makespan_s(self) -> float:
        return float(self.completion_s.max())


def _memory(sc) -> np.ndarray:
    p = sc.params
    per_token = kv_bytes_per_token(sc.draft, bytes_per_value=p.kv_bytes_per_value, use_gqa=p.kv_cache_uses_gqa)
    return np.array([float(sc.draft.weight_bytes), float(per_token), float(p.sbs_memory_bytes)])


def prepare(sc, workload: Workload, policy, config: OnlineConfig | None = None, *, seed: int = 0,
            feed=None) -> EngineState:
    """Everything :func:`simulate` sets up before the event loop (uplink, tables, the kernel's arrays)."""
    from specedge.online.policies import get_online_policy

    config = config or OnlineConfig()
    pol = get_online_policy(policy) if isinstance(policy, str) else policy
    comp: Compiled = pol.compile(sc, workload, config)
    mode = comp.mode or config.mode
    n = workload.num_requests
    p = sc.params
    payload = workload.input_tokens * p.bits_per_token
    eta = network.spectral_efficiency(workload.distance_m, p)
    up = upload_end_s(config.uplink_rule if comp.fixed_bandwidth_hz is None else "fixed", workload.arrival_s,
                      payload, eta, sc.bandwidth_hz, comp.fixed_bandwidth_hz)
    order = np.argsort(up, kind="stable") if comp.order is None else np.asarray(comp.order, np.int64)
    q_up = up[order]
    q_in = workload.input_tokens[order].astype(np.int64)
    q_out = workload.output_tokens[order].astype(np.int64)
    num_slots = int(comp.num_slots or config.num_slots)
    bmax = int(comp.max_batch_size or config.max_batch_size)
    lmax = int(config.max_speculation_length)
    mem = _memory(sc)
    if mode != "ad":
        alone = mem[0] + mem[1] * (q_in + q_out) > mem[2]
        if alone.any():
            k = int(order[np.flatnonzero(alone)[0]])
            raise PlanError(f"request {k} (I={workload.input_tokens[k]}, O={workload.output_tokens[k]}) does not "
                            f"fit the SBS memory ({p.sbs_memory_bytes / 1e9:.2f} GB) even alone")
    tb = tables.build(sc.draft_compute, sc.verify_compute, max_batch=bmax, max_input=int(q_in.max()),
                      max_output=int(q_out.max()), max_l=lmax)
    tb_tuple = (tb.d_p0, tb.d_cum, tb.v_p0, tb.v_cont, tb.d_host, tb.v_host)
    expected = sc.acceptance.kind == "expected" and feed is None
    use_g = mode != "ad" and not expected
    ltab = np.ones(lmax + 1)
    ltab[1:] = expected_tokens_per_round(np.arange(1, lmax + 1), sc.alpha)
    width_rounds = int(q_out.max()) if use_g else 1
    # staging ring of 2w rows: a stage call fills [staged_upto, head + 2w), never a row still waiting
    w = max(int(config.staging_requests), int(comp.plan_size.max()) if comp.plan_size is not None else 1, bmax,
            int(comp.adm_f[0]) if comp.adm[0] == 1 else 1)
    pool = num_slots * bmax
    stage_g = np.zeros((2 * w, width_rounds), dtype=np.int8)
    pool_g = np.zeros((pool, width_rounds), dtype=np.int8)
    pool_free = np.arange(pool, dtype=np.int64)
    if use_g and feed is None:
        feed = SourceFeed(sc.acceptance, seed, lmax)
    out = {k: np.zeros(n) for k in ("start", "first", "done")}
    rounds = np.zeros(n, dtype=np.int64)
    slot_of = np.full(n, -1, dtype=np.int64)
    s_n = np.zeros(num_slots, np.int64)
    s_req = np.zeros((num_slots, bmax), np.int64)
    s_row = np.zeros((num_slots, bmax), np.int64)
    s_pad, s_omax, s_vend = np.zeros(num_slots), np.zeros(num_slots), np.zeros(num_slots)
    s_started = np.zeros(num_slots, np.int64)
    m_comm = np.zeros((num_slots, bmax))
    m_round = np.zeros((num_slots, bmax), np.int64)
    st_i = np.zeros(8, np.int64)
    st_i[7] = pool - 1
    st_f = np.zeros(4)
    l_hist = np.zeros(lmax + 1, np.int64)
    i64 = lambda x: np.asarray(x, np.int64)  # noqa: E731
    f64 = lambda x: np.asarray(x, np.float64)  # noqa: E731
    z = np.zeros(max(num_slots, 1))
    plan = [i64(comp.plan_start if comp.plan_start is not None else z), i64(comp.plan_size if comp.plan_size is
            not None else z), f64(comp.plan_ready if comp.plan_ready is not None else z),
            i64(comp.plan_l if comp.plan_l is not None else z)]
    # AD has no drafting stage: its rounds start when the MBS is free, which is the serial recursion with t_d = 0
    mode_code = {"sd-pipeline": 0, "sd-serial": 1, "ad": 1}[mode]
    f_delay = 0.0 if mode == "ad" else float(p.fronthaul_delay_s)
    args = (q_up, q_in, q_out, out["start"], out["first"], out["done"], rounds, slot_of,
            stage_g, pool_g, pool_free, s_n, s_req, s_row, s_pad, s_omax, s_vend, s_started,
            m_comm, m_round, st_i, st_f, l_hist, i64(comp.adm), f64(comp.adm_f), i64(comp.lrule),
            f64(comp.lrule_f), *plan, tb_tuple, ltab, use_g, mem, mode_code, f_delay,
            float(p.downlink_s_per_token))
    return EngineState(workload, config, getattr(pol, "name", str(pol)), mode, order, up, args, feed, use_g, w,
                       width_rounds, lmax)


@dataclass(eq=False)
class EngineState:
    """One run's kernel arguments (arrays the kernel updates in place) and staging cursor: :func:`prepare`
    builds it, :func:`advance` runs the kernel on it, :func:`result` reads it. Several cells sharing a verifier
    (:mod:`specedge.multicell.online`) hold one per cell and advance them a job at a time."""

    workload: Workload
    config: OnlineConfig
    policy: str
    mode: str
    order: np.ndarray
    upload_end_s: np.ndarray
    args: tuple
    feed: object
    use_g: bool
    staging_width: int
    width_rounds: int
    lmax: int
    chunk: int = 0

    @property
    def st_i(self) -> np.ndarray:
        return self.args[20]

    @property
    def st_f(self) -> np.ndarray:
        return self.args[21]


def advance(state: EngineState, max_jobs: int = -1) -> int:
    """Run the kernel until every request is done (kernel.DONE) or, with ``max_jobs`` > 0, until that many more
    jobs have run (kernel.STEP); staging acceptance draws whenever the kernel asks."""
    st_i = state.st_i
    target = int(st_i[5]) + max_jobs if max_jobs > 0 else -1
    n = state.workload.num_requests
    while True:
        status = kernel.run(*state.args, target - int(st_i[5]) if target >= 0 else -1)
        if status == kernel.STALLED:
            raise RuntimeError(f"online engine stalled at request {int(st_i[0])} of {n} under policy "
                               f"{state.policy!r}: no batch can run and admission never becomes possible")
        if status != kernel.NEED_STAGING:
            return status
        stage(state)


def stage(state: EngineState) -> None:
    """Stage the acceptance draws of the queued requests the kernel's ring can hold (it returned NEED_STAGING)."""
    st_i = state.st_i
    k0 = int(st_i[3])
    ring = state.args[8].shape[0]
    k1 = min(state.workload.num_requests, int(st_i[0]) + ring)
    if state.use_g:
        rows = state.feed.rows(state.order[k0:k1], state.width_rounds)
        state.args[8][np.arange(k0, k1) % ring] = np.minimum(rows, state.lmax).astype(np.int8)
    st_i[3] = k1
    state.chunk += 1


def result(state: EngineState) -> OnlineRun:
    """The :class:`OnlineRun` of a finished state (arrays back in request order)."""
    order = state.order
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    a = state.args
    st_i, st_f = state.st_i, state.st_f
    return OnlineRun(workload=state.workload, config=state.config, policy=state.policy,
                     upload_end_s=state.upload_end_s, start_s=a[3][inv], first_token_s=a[4][inv],
                     completion_s=a[5][inv], rounds=a[6][inv], slot=a[7][inv], sbs_busy_s=float(st_f[2]),
                     mbs_busy_s=float(st_f[3]), jobs=int(st_i[5]), member_rounds=int(st_i[6]), l_histogram=a[22])


def simulate(sc, workload: Workload, policy, config: OnlineConfig | None = None, *, seed: int = 0,
             feed=None) -> OnlineRun:
    """Serve ``workload`` on scenario ``sc`` under an online ``policy`` (a name or an :class:`OnlinePolicy`)."""
    state = prepare(sc, workload, policy, config, seed=seed, feed=feed)
    advance(state)
    return result(state)
