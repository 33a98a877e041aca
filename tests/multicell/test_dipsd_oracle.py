"""An exhaustive oracle for DiP-SD's objective on small instances, written from the equations alone (it shares
no code with specedge.multicell.dipsd beyond the latency model's stage-time primitives, which are inputs of the
problem), and the DiP-SD-style search checked against it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from specedge.latency.rounds import sd_draft_s, sd_verify_s
from specedge.multicell import dipsd
from specedge.multicell.energy import NodePower
from specedge.multicell.topology import PayloadSpec, load_topology


def _oracle(draft, delay, rate, alpha, verify, l_max, up_bits=32.0, verdict_bits=64.0):
    """max over M, every assignment of K users to M non-empty batches and every l in 1..l_max per user of
    X = sum_k (1 - a_k^(l_k+1)) / (1 - a_k) / T, T = max(sum_m V_m, max_m (max_{k in m} D_k + V_m)), with
    D_k = draft[k](l_k) + 2 f_k + (l_k up_bits + verdict_bits) / W_k and V_m = verify(|m|, max_{k in m} l_k)."""
    k = len(alpha)
    best = (-1.0, None, None)
    for labels in itertools.product(range(k), repeat=k):
        m = max(labels) + 1
        if set(labels) != set(range(m)) or any(labels[i] > max(labels[:i], default=-1) + 1 for i in range(k)):
            continue  # one canonical labelling per partition
        for ls in itertools.product(range(1, l_max + 1), repeat=k):
            phase = [draft[u](ls[u]) + 2 * delay[u] + (ls[u] * up_bits + verdict_bits) / rate[u] for u in range(k)]
            v = []
            cycle = 0.0
            for b in range(m):
                members = [u for u in range(k) if labels[u] == b]
                vb = verify(len(members), max(ls[u] for u in members))
                v.append(vb)
                cycle = max(cycle, max(phase[u] for u in members) + vb)
            t = max(sum(v), cycle)
            tokens = sum((1 - alpha[u] ** (ls[u] + 1)) / (1 - alpha[u]) for u in range(k))
            if tokens / t > best[0]:
                best = (tokens / t, labels, ls)
    return best


class _Lin:
    """latency_s = a + s * b * x (stand-in predictor)."""

    def __init__(self, a, s):
        self.a, self.s = a, s

    def latency_s(self, b, x, c):
        return self.a + self.s * np.asarray(b, float) * np.asarray(x, float) + 0.0 * np.asarray(c, float)


def _random_instance(rng, k):
    td = rng.uniform(0.002, 0.03, k)
    alpha = rng.uniform(0.5, 0.9, k)
    delay = rng.uniform(0.001, 0.01, k)
    rate = rng.uniform(1e6, 5e7, k)
    av, sv = rng.uniform(0.02, 0.05), rng.uniform(0.0002, 0.003)
    users = dipsd.Users(alpha=alpha, delay_s=delay, rate_bps=rate, draft_preds=tuple(_Lin(0.0, t) for t in td),
                        device_power=(NodePower("d", 5.0, 15.0),) * k, verify_pred=_Lin(av, sv),
                        server_power=NodePower("s", 50.0, 250.0), tx_power_w=0.2, payload=PayloadSpec(),
                        vocab_size=100, context_tokens=100.0)
    draft = [(lambda l, t=t: l * t) for t in td]
    return users, (draft, delay, rate, alpha, lambda b, l: av + sv * b * (l + 1))


def test_oracle_by_hand():
    # one user: X = L(l) / (l t_d + 2 f + bits / W + V(1, l)); with t_d = 0 and a free link the longest l wins
    draft = [lambda l: 0.0]
    x, labels, ls = _oracle(draft, [0.0], [1e18], [0.5], lambda b, l: 1.0, 3)
    assert ls == (3,) and x == pytest.approx(1.875)


def test_search_against_the_oracle_on_random_small_instances():
    # 30 instances of 2, 3 and 4 users: the search never beats the oracle (it cannot: same equations), finds the
    # optimum in most, and stays within 4 % of it (coordinate ascent stops at local optima; docs/multicell.md)
    gaps = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        k = 2 + seed % 3
        l_max = 4 if k < 4 else 3
        users, spec = _random_instance(rng, k)
        x_oracle, labels, ls = _oracle(*spec, l_max)
        # the search's own objective at the oracle's argmax equals the oracle's value
        assert dipsd.throughput_tokens_per_s(users, labels, ls) == pytest.approx(x_oracle, rel=1e-9)
        got = dipsd.optimise(users, l_max=l_max)["throughput_tokens_per_s"]
        assert got <= x_oracle * (1 + 1e-9)
        gaps.append(1.0 - got / x_oracle)
    gaps = np.array(gaps)
    assert (gaps < 1e-9).sum() >= 22 and gaps.max() < 0.04 and gaps.mean() < 0.005


def _preset_oracle(k, l_max):
    u = dipsd.users_from_topology(load_topology("dip-sd"), k)
    c = u.context_tokens
    draft = [(lambda l, p=p: float(sd_draft_s(p, 1.0, c, c, l, False))) for p in u.draft_preds]
    verify = lambda b, l: float(sd_verify_s(u.verify_pred, b, c, c, l, False))  # noqa: E731
    return u, _oracle(draft, u.delay_s, u.rate_bps, u.alpha, verify, l_max)


@pytest.mark.parametrize("k,exact", [(2, True), (3, False), (4, True)])
def test_search_against_the_oracle_on_the_dip_sd_preset(k, exact):
    l_max = {2: 10, 3: 8, 4: 5}[k]
    u, (x_oracle, labels, ls) = _preset_oracle(k, l_max)
    got = dipsd.optimise(u, l_max=l_max)["throughput_tokens_per_s"]
    assert got <= x_oracle * (1 + 1e-9)
    if exact:
        assert got == pytest.approx(x_oracle, rel=1e-9)
    else:  # 3 users: coordinate ascent stops 0.6 % below the optimum (docs/multicell.md)
        assert got >= x_oracle * 0.99
    # 2 users: the optimum itself loses to AD with greedy batching (a consequence of the model, not the search)
    if k == 2:
        assert x_oracle < dipsd.ad_throughput(u, True)
