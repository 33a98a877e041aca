"""Energy model: hand-worked numbers, conservation of the per-request attribution, card power fields."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from specedge.errors import ScenarioError
from specedge.latency.cards import load_device_card
from specedge.multicell.energy import (
    NodePower,
    fronthaul_energy_j,
    run_energy,
    split_among_members,
    transmit_energy_j,
)
from specedge.multicell.topology import PayloadSpec


def test_node_energy_by_hand():
    # 25 W idle, 210 W busy, 10 s window, 4 s busy: 25*10 + 185*4 = 250 + 740 = 990 J
    p = NodePower("mbs", 25.0, 210.0)
    assert p.energy_j(10.0, 4.0) == pytest.approx(990.0)
    # never busy: idle only; always busy: busy power x window
    assert p.energy_j(10.0, 0.0) == pytest.approx(250.0)
    assert p.energy_j(10.0, 10.0) == pytest.approx(2100.0)
    with pytest.raises(ValueError):
        p.energy_j(1.0, 2.0)


def test_transmit_and_fronthaul_by_hand():
    # 0.2 W for 3 s = 0.6 J; 1e6 bits at 10 nJ/bit = 0.01 J
    assert transmit_energy_j(0.2, [3.0, 0.5]).tolist() == pytest.approx([0.6, 0.1])
    assert float(fronthaul_energy_j(1e6, 1e-8)) == pytest.approx(0.01)


def test_payload_bits_by_hand():
    p = PayloadSpec(token_id_bits=32, prob_bits=16, temperature=0.0, verdict_bits=64)
    # 4 users x 3 drafts x 32 bits = 384; T > 0 adds 4*3*32000*16 = 6,144,000
    assert float(p.draft_bits(4, 3, 32000)) == 384.0
    hot = PayloadSpec(temperature=1.0)
    assert float(hot.draft_bits(4, 3, 32000)) == 384.0 + 6_144_000.0
    assert float(p.verdict_bits_total(4)) == 256.0


def test_split_among_members_by_hand():
    # job 0 (10 J) has requests 0 and 1; job 1 (6 J) has requests 1, 2, 3
    out = split_among_members([10.0, 6.0], [0, 0, 1, 1, 1], [0, 1, 1, 2, 3], 4)
    assert out.tolist() == pytest.approx([5.0, 7.0, 2.0, 2.0])
    assert out.sum() == pytest.approx(16.0)


def test_cards_carry_power_and_a_card_without_is_refused():
    card = load_device_card("rtx-4500")
    assert (card.idle_power_w, card.busy_power_w) == (25.0, 210.0)
    assert "datasheet" in card.power_source
    with pytest.raises(ScenarioError, match="epyc-host"):
        NodePower.from_card(load_device_card("epyc-host"))


def _tiny_run():
    """Two requests in one batch: 2 rounds for request 0, 1 round for request 1."""
    return SimpleNamespace(
        completion_s=np.array([10.0, 6.0]), upload_s=np.array([1.0, 2.0]), output_tokens=np.array([5, 3]),
        batch=np.array([0, 0]), rounds=np.array([2, 1]),
        job_batch=np.array([0, 0]), job_round=np.array([0, 1]), job_batch_size=np.array([2, 1]),
        job_l=np.array([2, 2]), job_draft_s=np.array([1.0, 0.5]), job_verify_s=np.array([2.0, 1.0]))


def test_run_energy_by_hand():
    card = lambda name, idle, busy: SimpleNamespace(name=name, idle_power_w=idle, busy_power_w=busy)  # noqa: E731
    sc = SimpleNamespace(verify_device=card("m", 20.0, 120.0), draft_device=card("s", 10.0, 60.0),
                         params=SimpleNamespace(tx_power_w=0.5), target=SimpleNamespace(vocab_size=100))
    e = run_energy(_tiny_run(), sc, payload=PayloadSpec(token_id_bits=10, verdict_bits=5), fronthaul_j_per_bit=0.1)
    # window 10 s: MBS idle 200 J, busy (120-20)*(2+1) = 300 J; SBS idle 100 J, busy 50*(1+0.5) = 75 J
    assert e.idle_j == pytest.approx({"mbs": 200.0, "sbs": 100.0})
    assert e.busy_j == pytest.approx({"mbs": 300.0, "sbs": 75.0})
    # transmit 0.5*(1+2) = 1.5 J; fronthaul bits: job0 2*2*10 + 2*5 = 50, job1 1*2*10 + 5 = 25 -> 7.5 J
    assert e.transmit_j == pytest.approx(1.5)
    assert e.fronthaul_j == pytest.approx(7.5)
    assert e.total_j == pytest.approx(684.0)
    assert e.j_per_token == pytest.approx(684.0 / 8)
    # request 1 was only in job 0: idle 150 + mbs busy 100 + sbs busy 25 + tx 1.0 + fh 2.5 = 278.5 J... per half
    # request 0: idle 150 + (100 + 100) + (25 + 25) + 0.5 + (2.5 + 2.5) = 405.5; request 1: 150+100+25+1+2.5
    assert e.per_request_j.tolist() == pytest.approx([405.5, 278.5])
    assert e.per_request_j.sum() == pytest.approx(e.total_j)
    # drafting on the users' own devices: no SBS idle; each member's device busy for the job's drafting time
    u = run_energy(_tiny_run(), sc, drafting="user")
    assert "sbs" not in u.idle_j
    assert u.busy_j["user_devices"] == pytest.approx(50.0 * (1.0 * 2 + 0.5 * 1))
