"""Uplink: path loss, spectral efficiency, bandwidth allocation and upload times (docs/model.md section 2).

Rate of user k: r_k = b_k * eta_k with eta_k = log2(1 + p g_k / sigma^2) bit/s/Hz [P], path loss
128.1 + 37.6 log10(d / km) dB [A], fixed noise power [A]. The communication term is the slowest upload
T_up = max_k D_k / r_k [P]. The optimal allocation [P] makes every upload finish together:
b_k* = B (D_k / eta_k) / sum_j (D_j / eta_j), T_up* = sum_j (D_j / eta_j) / B.

``params`` is anything with the attributes ``tx_power_w``, ``noise_power_dbm``, ``path_loss_db_at_1km`` and
``path_loss_db_per_decade`` (a :class:`~specedge.latency.params.ScenarioParams`).
"""

from __future__ import annotations

import numpy as np

from specedge.errors import PlanError


def path_loss_db(distance_m, params) -> np.ndarray:
    """Path loss in dB: ``path_loss_db_at_1km + path_loss_db_per_decade * log10(d / 1 km)`` [A]."""
    d_km = np.asarray(distance_m, dtype=np.float64) / 1e3
    return params.path_loss_db_at_1km + params.path_loss_db_per_decade * np.log10(d_km)


def snr(distance_m, params) -> np.ndarray:
    """Received SNR p g / sigma^2 (linear) at a distance."""
    rx_dbm = 10.0 * np.log10(params.tx_power_w * 1e3) - path_loss_db(distance_m, params)
    return 10.0 ** ((rx_dbm - params.noise_power_dbm) / 10.0)


def spectral_efficiency(distance_m, params) -> np.ndarray:
    """eta = log2(1 + p g / sigma^2) in bit/s/Hz."""
    return np.log2(1.0 + snr(distance_m, params))


def uniform_allocation(num_tasks: int, bandwidth_hz: float) -> np.ndarray:
    """b_k = B / K for every task [P baseline]."""
    return np.full(int(num_tasks), float(bandwidth_hz) / int(num_tasks))


def equal_finish_allocation(payload_bits, spectral_efficiency, bandwidth_hz: float) -> np.ndarray:
    """The closed-form optimum [P]: b_k = B (D_k / eta_k) / sum_j (D_j / eta_j); every upload ends together."""
    weight = np.asarray(payload_bits, dtype=np.float64) / np.asarray(spectral_efficiency, dtype=np.float64)
    return float(bandwidth_hz) * weight / weight.sum()


def upload_times_s(payload_bits, spectral_efficiency, bandwidth_hz) -> np.ndarray:
    """T_k = D_k / (b_k eta_k) per task (seconds); raises PlanError for a non-positive bandwidth."""
    bw = np.asarray(bandwidth_hz, dtype=np.float64)
    if np.any(~(bw > 0)):
        raise PlanError("every task's uplink bandwidth must be > 0 Hz")
    return np.asarray(payload_bits, dtype=np.float64) / (bw * np.asarray(spectral_efficiency, dtype=np.float64))


def optimal_upload_time_s(payload_bits, spectral_efficiency, bandwidth_hz: float) -> float:
    """T_up* = sum_j (D_j / eta_j) / B, the makespan of the equal-finish allocation."""
    weight = np.asarray(payload_bits, dtype=np.float64) / np.asarray(spectral_efficiency, dtype=np.float64)
    return float(weight.sum() / float(bandwidth_hz))
