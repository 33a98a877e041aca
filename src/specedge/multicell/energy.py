"""Energy: joules per request and per accepted token, from node busy times, uploads and fronthaul bits.

Equations (every one an assumption [A] unless tagged; the paper has no energy model):

- a node n (SBS, MBS, or a user's device when it drafts) with idle power P_idle and busy power P_busy (device
  card; sources in the card's comments) over a serving window of length T in which it runs passes for T_busy
  seconds draws [A: linear two-state power model, as in dsdSim-style simulators]::

      E_n = P_idle,n T + (P_busy,n - P_idle,n) T_busy,n

  A user's own device counts only its busy increment (P_busy - P_idle) T_busy: its idle draw is not caused by
  serving [A];
- user k's radio [A: transmit power only, no circuit power]: E_tx,k = p T_up,k, with p the scenario's
  ``tx_power_w`` [P] and T_up,k its upload time;
- fronthaul [A]: E_fh = e_bit (D_up + D_down), summed over rounds, with e_bit the topology's
  ``fronthaul_j_per_bit`` and the payloads of :class:`~specedge.multicell.topology.PayloadSpec`;
- attribution to requests [A]: a pass's busy increment (P_busy - P_idle) t_pass is split equally among the b
  members of its batch; a node's idle energy P_idle T equally among the requests it served; fronthaul bits
  equally among a round's members;
- per accepted token: E / sum_k O_k, the committed output tokens delivered (draft tokens the target accepted plus
  the bonus/corrected tokens), i.e. the "joules per accepted token" of real-engine users.

:func:`run_energy` applies this to a :class:`specedge.replay.core.Run` (the static replay, and any engine that
records jobs the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specedge.errors import ScenarioError


@dataclass(frozen=True)
class NodePower:
    """Idle and busy power of one node (W)."""

    name: str
    idle_w: float
    busy_w: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.idle_w <= self.busy_w) or not self.busy_w > 0:
            raise ScenarioError(f"node {self.name!r}: need 0 <= idle_power_w <= busy_power_w and busy > 0, got "
                                f"idle={self.idle_w!r}, busy={self.busy_w!r}")

    @classmethod
    def from_card(cls, card) -> NodePower:
        """From a :class:`~specedge.latency.cards.DeviceCard`; ScenarioError if the card gives no power."""
        if not (card.busy_power_w > 0 and card.idle_power_w > 0):
            raise ScenarioError(f"device card {card.name!r} gives no idle_power_w/busy_power_w; add them to "
                                f"models/devices/{card.name}.toml (with their source) to compute energy")
        return cls(card.name, float(card.idle_power_w), float(card.busy_power_w))

    def energy_j(self, window_s, busy_s) -> np.ndarray:
        """E = P_idle T + (P_busy - P_idle) T_busy (broadcasts); ValueError if busy exceeds the window."""
        t = np.asarray(window_s, dtype=np.float64)
        b = np.asarray(busy_s, dtype=np.float64)
        if np.any(b < 0) or np.any(b > t * (1 + 1e-12) + 1e-12):
            raise ValueError(f"node {self.name!r}: busy time must lie in [0, window]")
        return self.idle_w * t + (self.busy_w - self.idle_w) * b


def transmit_energy_j(tx_power_w, upload_s) -> np.ndarray:
    """E_tx,k = p T_up,k."""
    return np.asarray(tx_power_w, dtype=np.float64) * np.asarray(upload_s, dtype=np.float64)


def fronthaul_energy_j(bits, j_per_bit: float) -> np.ndarray:
    """E_fh = e_bit D."""
    return float(j_per_bit) * np.asarray(bits, dtype=np.float64)


def split_among_members(job_value, job_of_member, request_of_member, num_requests: int) -> np.ndarray:
    """Per request: sum over the jobs it took part in of job_value / (members of the job)."""
    job_of_member = np.asarray(job_of_member, dtype=np.int64)
    members = np.bincount(job_of_member, minlength=len(job_value))
    share = np.asarray(job_value, dtype=np.float64)[job_of_member] / members[job_of_member]
    return np.bincount(np.asarray(request_of_member, dtype=np.int64), weights=share, minlength=num_requests)


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one serving run, by component (J), and per request / per accepted token."""

    window_s: float
    idle_j: dict
    busy_j: dict
    transmit_j: float
    fronthaul_j: float
    per_request_j: np.ndarray
    tokens: int

    @property
    def total_j(self) -> float:
        return float(sum(self.idle_j.values()) + sum(self.busy_j.values()) + self.transmit_j + self.fronthaul_j)

    @property
    def j_per_token(self) -> float:
        return self.total_j / self.tokens if self.tokens else float("nan")

    @property
    def j_per_request(self) -> float:
        return self.total_j / len(self.per_request_j) if len(self.per_request_j) else float("nan")

    def as_dict(self) -> dict:
        return {"energy_j": self.total_j, "energy_j_per_token": self.j_per_token,
                "energy_j_per_request": self.j_per_request, "energy_transmit_j": self.transmit_j,
                "energy_fronthaul_j": self.fronthaul_j,
                **{f"energy_idle_{k}_j": v for k, v in self.idle_j.items()},
                **{f"energy_busy_{k}_j": v for k, v in self.busy_j.items()}}


def run_energy(run, sc, *, payload=None, fronthaul_j_per_bit: float = 0.0, drafting: str = "sbs",
               window_s: float | None = None) -> EnergyReport:
    """Energy of one :class:`~specedge.replay.core.Run` of scenario ``sc`` (one cell).

    ``payload``: a :class:`~specedge.multicell.topology.PayloadSpec` for the fronthaul bits (None: no fronthaul
    energy). ``drafting``: "sbs" (the SBS card draws idle + busy) or "user" (each member's own device: busy
    increment only). ``window_s``: the serving window (default the run's makespan).
    """
    k = len(run.completion_s)
    window = float(run.completion_s.max()) if window_s is None else float(window_s)
    mbs = NodePower.from_card(sc.verify_device)
    draft = NodePower.from_card(sc.draft_device)
    member_job, member_req = _members(run)
    job_size = np.asarray(run.job_batch_size, dtype=np.float64)
    verify_busy = np.asarray(run.job_verify_s, dtype=np.float64)
    draft_busy = np.asarray(run.job_draft_s, dtype=np.float64)
    idle_j = {"mbs": mbs.idle_w * window}
    busy_j = {"mbs": float((mbs.busy_w - mbs.idle_w) * verify_busy.sum())}
    per_req = split_among_members((mbs.busy_w - mbs.idle_w) * verify_busy, member_job, member_req, k)
    per_req = per_req + idle_j["mbs"] / k
    if drafting == "sbs":
        idle_j["sbs"] = draft.idle_w * window
        per_req = per_req + idle_j["sbs"] / k
        busy_draft = (draft.busy_w - draft.idle_w) * draft_busy
        busy_j["sbs"] = float(busy_draft.sum())
        per_req = per_req + split_among_members(busy_draft, member_job, member_req, k)
    elif drafting == "user":
        # every member drafts on its own device for the whole drafting time of the job (batch of one each)
        busy_draft = (draft.busy_w - draft.idle_w) * draft_busy * job_size
        busy_j["user_devices"] = float(busy_draft.sum())
        per_req = per_req + split_among_members(busy_draft, member_job, member_req, k)
    else:
        raise ScenarioError(f"drafting={drafting!r}; expected 'sbs' or 'user'")
    tx = transmit_energy_j(sc.params.tx_power_w, run.upload_s)
    per_req = per_req + tx
    fh = 0.0
    if payload is not None and fronthaul_j_per_bit > 0:
        bits = (payload.draft_bits(job_size, run.job_l, sc.target.vocab_size)
                + payload.verdict_bits_total(job_size))
        fh_job = fronthaul_energy_j(bits, fronthaul_j_per_bit)
        fh = float(fh_job.sum())
        per_req = per_req + split_among_members(fh_job, member_job, member_req, k)
    return EnergyReport(window, idle_j, busy_j, float(tx.sum()), fh, per_req, int(np.sum(run.output_tokens)))


def _members(run) -> tuple[np.ndarray, np.ndarray]:
    """(job, request) pairs: request k is a member of every job of its batch up to its own last round."""
    job_batch = np.asarray(run.job_batch, dtype=np.int64)
    job_round = np.asarray(run.job_round, dtype=np.int64)
    batch = np.asarray(run.batch, dtype=np.int64)
    rounds = np.asarray(run.rounds, dtype=np.int64)
    order = np.argsort(batch, kind="stable")
    jobs_of = {b: np.flatnonzero(job_batch == b) for b in np.unique(job_batch).tolist()}
    js, ks = [], []
    for kk in order.tolist():
        j = jobs_of[int(batch[kk])]
        j = j[job_round[j] < rounds[kk]]
        js.append(j)
        ks.append(np.full(j.size, kk, dtype=np.int64))
    return np.concatenate(js), np.concatenate(ks)
