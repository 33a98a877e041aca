"""The online engine as a sweep cell: :func:`evaluate_online_cell` for :func:`specedge.sweep.run_sweep`.

A cell's ``policy`` is an online policy name; its overrides carry the workload and engine settings:
``rate_rps``, ``requests``, ``arrivals`` (poisson/gamma), ``cv``, ``num_slots``, ``max_batch_size``,
``uplink_rule``, ``ttft_slo_s``, ``tpot_slo_s``; any other override is a scenario parameter. The cell's seed
seeds the workload and the acceptance draws. Returns :data:`ONLINE_METRICS`.
"""

from __future__ import annotations

from functools import lru_cache

from specedge.sweep.grid import Cell

ONLINE_METRICS = ("offered_rate_rps", "duration_s", "throughput_tokens_per_s", "throughput_rps", "ttft_p50_s",
                  "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s",
                  "queueing_p50_s", "upload_p50_s", "slo_attainment", "goodput_rps", "sbs_utilisation",
                  "mbs_utilisation", "mean_batch_size", "mean_speculation_length", "ad_round_share")
_WORKLOAD_KEYS = ("rate_rps", "requests", "arrivals", "cv")
_CONFIG_KEYS = ("num_slots", "max_batch_size", "uplink_rule", "ttft_slo_s", "tpot_slo_s", "max_speculation_length")


@lru_cache(maxsize=16)
def _scenario(preset, pair, acceptance, store, scenario_overrides):
    from specedge.scenario import Scenario

    return Scenario.from_preset(preset, pair=pair, tasks=1, acceptance=acceptance, store=store,
                                **dict(scenario_overrides))


def evaluate_online_cell(cell: Cell, store: str | None = None) -> dict[str, float]:
    from specedge.online import OnlineConfig, simulate, synthetic
    from specedge.online.metrics import summarize

    ov = dict(cell.overrides)
    wl = {k: ov.pop(k) for k in _WORKLOAD_KEYS if k in ov}
    cfg = OnlineConfig().replace(**{k: ov.pop(k) for k in _CONFIG_KEYS if k in ov})
    sc = _scenario(cell.preset, cell.pair, cell.acceptance, store, tuple(sorted(ov.items())))
    w = synthetic(sc.params, arrivals=wl.get("arrivals", "poisson"), rate_rps=float(wl.get("rate_rps", 0.1)),
                  num_requests=int(wl.get("requests", 1000)), cv=float(wl.get("cv", 1.0)), seed=cell.seed)
    summary = summarize(simulate(sc, w, cell.policy, cfg, seed=cell.seed))
    return {k: float(summary[k]) for k in ONLINE_METRICS}
