"""DiP-SD's setting and objective (Xu, Zhou, Niu, arXiv 2604.20919): users draft on their own devices, an edge
server verifies in M pipelined batches; maximise expected accepted tokens per unit time over M, the user-to-batch
assignment and per-user draft lengths l_k.

Steady state of one round of every batch [P: the objective's form as the abstract states it; the timing model
below is ours, built from specedge's latency model, A]. User k (device predictor, acceptance alpha_k, link delay
f_k and rate W_k) in batch m, context c tokens [A: a fixed representative context]:

    D_k(l)  = t_draft,k(1, c, l) + f_k + D_up(1, l) / W_k          (draft on the device, send the drafts)
    R_k     = f_k + verdict_bits / W_k                             (the verdict comes back)
    V_m     = t_verify(|m|, c, max_{k in m} l_k)                   (one padded batched pass on the server)
    T       = max( sum_m V_m ,  max_m max_{k in m} (D_k + R_k) + V_m )   (server-bound or batch-cycle-bound)
    X       = sum_k L(l_k, alpha_k) / T                            tokens/s, L(l, a) = (1 - a^(l+1)) / (1 - a) [P]

Baselines [A: the abstract names "AD" and "AD with greedy batching" without defining them; its full text was not
found (docs/multicell.md)]: ``ad`` (the server alone, one user at a time: X = 1 / t_ad(1, c)), ``ad-greedy``
(the server alone, every waiting user in one batch: X = K / t_ad(K, c); a capped greedy batch would be a weaker
baseline), ``sd-greedy`` (one batch of all users, one common l, the best), and ``dip-sd`` (scan M = 1..K; start
from M near-equal contiguous groups of users sorted by D_k + R_k at the best common l, then alternate the
draft-length subproblem (per-user coordinate moves and whole-batch shifts of l) and the association subproblem
(single-user moves and swaps between batches), each to a local optimum) [A: a heuristic in the spirit of the
paper's alternating method, not its algorithm; an exhaustive oracle in tests/multicell/test_dipsd_oracle.py
checks it on small instances: exact on the preset at 2 and 4 users, 0.6 % below at 3].

Energy per token of a configuration (:func:`energy_per_token_j`): server idle + busy over the period, users'
devices busy while drafting, users' radios p (D_up / W_k) (see :mod:`specedge.multicell.energy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from specedge.latency.acceptance import expected_tokens_per_round
from specedge.latency.rounds import ad_round_s, sd_draft_s, sd_verify_s
from specedge.multicell.energy import NodePower


@dataclass(frozen=True)
class Users:
    """K users of a DiP-SD topology, as arrays, plus the server's predictor."""

    alpha: np.ndarray
    delay_s: np.ndarray
    rate_bps: np.ndarray
    draft_preds: tuple
    device_power: tuple
    verify_pred: object
    server_power: NodePower
    tx_power_w: float
    payload: object
    vocab_size: int
    context_tokens: float

    @property
    def k(self) -> int:
        return len(self.alpha)

    def draft_phase_s(self, l) -> np.ndarray:
        """D_k(l_k) + R_k per user (l: one per user)."""
        l = np.asarray(l, dtype=np.float64)
        t = np.array([float(sd_draft_s(p, 1.0, self.context_tokens, self.context_tokens, lk, False))
                      for p, lk in zip(self.draft_preds, l)])
        up = self.payload.draft_bits(1.0, l, self.vocab_size) / self.rate_bps
        back = self.payload.verdict_bits_total(1.0) / self.rate_bps
        return t + 2.0 * self.delay_s + up + back

    def verify_s(self, batch_size, l_max) -> np.ndarray:
        return sd_verify_s(self.verify_pred, batch_size, self.context_tokens, self.context_tokens, l_max, False)


def users_from_topology(topology, k: int, *, context_tokens: float = 512.0, seed: int = 0) -> Users:
    """The first ``k`` users (cells cycled) of a ``drafting = "user"`` topology such as ``dip-sd``."""
    topo = topology.with_num_cells(k)
    cache: dict = {}
    preds, power = [], []
    for i, c in enumerate(topo.cells):
        key = (c.sbs_device, c.draft_model)
        if key not in cache:
            cache[key] = topo.cell_scenario(i, seed=seed, tasks=1)
        sc = cache[key]
        preds.append(sc.draft_compute)
        power.append(NodePower.from_card(sc.draft_device))
    sc0 = cache[(topo.cells[0].sbs_device, topo.cells[0].draft_model)]
    alpha = np.array([c.alpha if c.alpha is not None else sc0.alpha for c in topo.cells], dtype=np.float64)
    return Users(alpha=alpha, delay_s=np.array([c.fronthaul_delay_s for c in topo.cells]),
                 rate_bps=np.array([c.fronthaul_bandwidth_bps for c in topo.cells]), draft_preds=tuple(preds),
                 device_power=tuple(power), verify_pred=sc0.verify_compute,
                 server_power=NodePower.from_card(sc0.verify_device), tx_power_w=sc0.params.tx_power_w,
                 payload=topo.payload, vocab_size=sc0.target.vocab_size, context_tokens=float(context_tokens))


def period_s(users: Users, batch_of, l) -> tuple[float, np.ndarray]:
    """(T, V_m per batch) of an assignment ``batch_of`` (batch index per user) and lengths ``l``."""
    batch_of = np.asarray(batch_of, dtype=np.int64)
    l = np.asarray(l, dtype=np.float64)
    m = int(batch_of.max()) + 1
    size = np.bincount(batch_of, minlength=m).astype(np.float64)
    l_max = np.zeros(m)
    np.maximum.at(l_max, batch_of, l)
    v = np.where(size > 0, users.verify_s(np.maximum(size, 1.0), np.maximum(l_max, 1.0)), 0.0)
    d = users.draft_phase_s(l)
    d_max = np.zeros(m)
    np.maximum.at(d_max, batch_of, d)
    return float(max(v.sum(), np.max(np.where(size > 0, d_max + v, 0.0)))), v


def throughput_tokens_per_s(users: Users, batch_of, l) -> float:
    """X = sum_k L(l_k, alpha_k) / T."""
    t, _ = period_s(users, batch_of, l)
    return float(expected_tokens_per_round(np.asarray(l, dtype=np.float64), users.alpha).sum() / t)


def ad_throughput(users: Users, greedy: bool) -> float:
    """AD on the server: one user at a time (1 / t_ad(1, c)) or all K batched (K / t_ad(K, c))."""
    b = float(users.k) if greedy else 1.0
    return float(b / ad_round_s(users.verify_pred, b, users.context_tokens, users.context_tokens, False))


def _contiguous_groups(order: np.ndarray, m: int) -> np.ndarray:
    out = np.empty(order.size, dtype=np.int64)
    out[order] = np.arange(order.size) * m // order.size
    return out


def _ascend_l(users: Users, batch_of, l, cand) -> tuple[np.ndarray, float]:
    """Draft-length subproblem at a fixed assignment, to a local optimum: per-user coordinate moves over ``cand``
    and block moves (every member of one batch shifted by the same step, which moves its padded length)."""
    l = l.copy()
    x = throughput_tokens_per_s(users, batch_of, l)
    lo, hi = float(cand[0]), float(cand[-1])
    changed = True
    while changed:
        changed = False
        trials = []
        for k in range(users.k):
            for lk in cand:
                if lk != l[k]:
                    trial = l.copy()
                    trial[k] = lk
                    trials.append(trial)
        for b in np.unique(batch_of):
            for step in (-2.0, -1.0, 1.0, 2.0):
                trial = l.copy()
                trial[batch_of == b] = np.clip(l[batch_of == b] + step, lo, hi)
                trials.append(trial)
        for trial in trials:
            xt = throughput_tokens_per_s(users, batch_of, trial)
            if xt > x * (1 + 1e-12):
                l, x, changed = trial, xt, True
                break
    return l, x


def _move_users(users: Users, batch_of, l, m: int) -> tuple[np.ndarray, float]:
    """Association subproblem: single-user moves to another batch (no batch left empty) and pairwise swaps
    between batches, while one improves."""
    batch_of = batch_of.copy()
    x = throughput_tokens_per_s(users, batch_of, l)
    changed = True
    while changed:
        changed = False
        for k in range(users.k):
            if np.count_nonzero(batch_of == batch_of[k]) == 1:
                continue
            for b in range(m):
                if b == batch_of[k]:
                    continue
                trial = batch_of.copy()
                trial[k] = b
                xt = throughput_tokens_per_s(users, trial, l)
                if xt > x * (1 + 1e-12):
                    batch_of, x, changed = trial, xt, True
        for i in range(users.k):  # swaps: two users of different batches trade places (sizes unchanged)
            for j in range(i + 1, users.k):
                if batch_of[i] == batch_of[j]:
                    continue
                trial = batch_of.copy()
                trial[i], trial[j] = batch_of[j], batch_of[i]
                xt = throughput_tokens_per_s(users, trial, l)
                if xt > x * (1 + 1e-12):
                    batch_of, x, changed = trial, xt, True
    return batch_of, x


def optimise(users: Users, *, l_max: int = 10, iterations: int = 3, batches=None, starts: int = 1) -> dict:
    """DiP-SD-style search (module docstring): the best (throughput, M, batch_of, l) found.

    Per M and per start (the ``starts`` best common l at M contiguous groups): assign users to M contiguous
    groups sorted by draft phase, then alternate the draft-length subproblem (:func:`_ascend_l`) and the
    association subproblem (:func:`_move_users`), each to a local optimum, at most ``iterations`` times or until
    neither changes anything; keep the best."""
    cand = np.arange(1, l_max + 1).astype(np.float64)
    best = {"throughput_tokens_per_s": -1.0}
    for m in (range(1, users.k + 1) if batches is None else batches):
        common = np.array([throughput_tokens_per_s(users, _contiguous_groups(np.arange(users.k), m),
                                                   np.full(users.k, lv)) for lv in cand])
        for i in np.argsort(-common, kind="stable")[: max(int(starts), 1)]:
            l = np.full(users.k, float(cand[i]))
            batch_of = _contiguous_groups(np.argsort(users.draft_phase_s(l), kind="stable"), m)
            x = -1.0
            for _ in range(iterations):
                l, _x = _ascend_l(users, batch_of, l, cand)
                batch_of, x_new = _move_users(users, batch_of, l, m)
                if x_new <= x * (1 + 1e-12):
                    break
                x = x_new
            x = throughput_tokens_per_s(users, batch_of, l)
            if x > best["throughput_tokens_per_s"]:
                best = {"throughput_tokens_per_s": x, "batches": m, "batch_of": batch_of.copy(), "l": l.copy()}
    return best


def sd_greedy(users: Users, *, l_max: int = 10) -> dict:
    """One batch of every user with the best common l."""
    one = np.zeros(users.k, dtype=np.int64)
    xs = [throughput_tokens_per_s(users, one, np.full(users.k, float(lv))) for lv in range(1, l_max + 1)]
    i = int(np.argmax(xs))
    return {"throughput_tokens_per_s": xs[i], "batches": 1, "batch_of": one, "l": np.full(users.k, float(i + 1))}


def energy_per_token_j(users: Users, batch_of, l) -> float:
    """Energy of one period / expected tokens of one period (server idle + busy, devices busy, radios)."""
    l = np.asarray(l, dtype=np.float64)
    t, v = period_s(users, batch_of, l)
    server = float(users.server_power.energy_j(t, v.sum()))
    draft_s = np.array([float(sd_draft_s(p, 1.0, users.context_tokens, users.context_tokens, lk, False))
                        for p, lk in zip(users.draft_preds, l)])
    devices = sum((pw.busy_w - pw.idle_w) * ds for pw, ds in zip(users.device_power, draft_s))
    radio = users.tx_power_w * float((users.payload.draft_bits(1.0, l, users.vocab_size) / users.rate_bps).sum())
    return (server + devices + radio) / float(expected_tokens_per_round(l, users.alpha).sum())


def ad_energy_per_token_j(users: Users, greedy: bool) -> float:
    """AD: the server busy for a pass that yields b tokens."""
    b = float(users.k) if greedy else 1.0
    t = float(ad_round_s(users.verify_pred, b, users.context_tokens, users.context_tokens, False))
    return float(users.server_power.energy_j(t, t)) / b


def compare(topology, user_counts=(2, 4, 8, 16), *, context_tokens: float = 512.0, l_max: int = 10,
            max_batches: int | None = None) -> pd.DataFrame:
    """Throughput (tokens/s) and energy per token of dip-sd, sd-greedy, ad-greedy and ad per number of users
    (``max_batches``: scan M = 1..min(K, max_batches) only)."""
    rows = []
    for k in user_counts:
        u = users_from_topology(topology, int(k), context_tokens=context_tokens)
        top = int(k) if max_batches is None else min(int(k), int(max_batches))
        dip = optimise(u, l_max=l_max, batches=range(1, top + 1))
        greedy = sd_greedy(u, l_max=l_max)
        rows += [
            {"users": k, "scheme": "dip-sd", "throughput_tokens_per_s": dip["throughput_tokens_per_s"],
             "batches": dip["batches"], "l": " ".join(str(int(v)) for v in dip["l"]),
             "energy_j_per_token": energy_per_token_j(u, dip["batch_of"], dip["l"])},
            {"users": k, "scheme": "sd-greedy", "throughput_tokens_per_s": greedy["throughput_tokens_per_s"],
             "batches": 1, "l": str(int(greedy["l"][0])),
             "energy_j_per_token": energy_per_token_j(u, greedy["batch_of"], greedy["l"])},
            {"users": k, "scheme": "ad-greedy", "throughput_tokens_per_s": ad_throughput(u, True), "batches": 1,
             "l": "", "energy_j_per_token": ad_energy_per_token_j(u, True)},
            {"users": k, "scheme": "ad", "throughput_tokens_per_s": ad_throughput(u, False), "batches": k,
             "l": "", "energy_j_per_token": ad_energy_per_token_j(u, False)},
        ]
    out = pd.DataFrame(rows)
    ref = out[out["scheme"] == "ad-greedy"].set_index("users")["throughput_tokens_per_s"]
    out["gain_over_ad_greedy"] = out["throughput_tokens_per_s"] / out["users"].map(ref)
    ref_ad = out[out["scheme"] == "ad"].set_index("users")["throughput_tokens_per_s"]
    out["gain_over_ad"] = out["throughput_tokens_per_s"] / out["users"].map(ref_ad)
    return out
