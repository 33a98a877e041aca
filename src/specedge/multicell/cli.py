"""``specedge online --preset multi-cell --cells N ...``: the online command on a topology of cells sharing a
verifier (:mod:`specedge.multicell.online`). The command's own options keep their meaning; ``--rate`` and
``--requests`` are per cell [A]; ``--set`` overrides scenario parameters of every cell."""

from __future__ import annotations

import json

from specedge.errors import InputError


def is_topology(preset: str) -> bool:
    from specedge.multicell.topology import available_topologies

    return str(preset) in available_topologies() or (str(preset).endswith(".toml") and _has_cells(preset))


def _has_cells(path: str) -> bool:
    import tomllib
    from pathlib import Path

    try:
        return "cells" in tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False


def online_multicell(*, preset: str, cells: int | None, verifier_policy: str, arrivals: str, rate: float,
                     requests: int, cv: float, policy, config, overrides: dict, seed: int, acceptance: str,
                     alpha: float | None, store=None, association: str = "home",
                     mbs_association: str = "fixed") -> dict:
    """Run the multi-cell online simulation and return its JSON-ready summary."""
    from specedge.multicell import online as mco
    from specedge.multicell.topology import available_topologies, load_topology

    if not is_topology(preset):
        raise InputError(f"--cells needs a multi-cell preset ({', '.join(available_topologies())}), got "
                         f"--preset {preset!r}")
    if arrivals not in ("poisson", "gamma"):
        raise InputError(f"multi-cell presets take --arrivals poisson or gamma, got {arrivals!r}")
    topo = load_topology(preset)
    if cells is not None:
        topo = topo.with_num_cells(cells)
    def scenarios(t):
        return tuple(t.cell_scenario(c, seed=seed, tasks=1, acceptance=acceptance, alpha=alpha, store=store,
                                     **overrides) for c in range(t.num_cells))

    scs = scenarios(topo)
    ws = mco.workloads(topo, arrivals=arrivals, rate_rps=rate, num_requests=requests, cv=cv, seed=seed,
                       scenarios=scs)
    if association != "home":
        from specedge.multicell.association import RULES, associate_workloads

        if association not in RULES:
            raise InputError(f"--association must be home, {', '.join(RULES)}; got {association!r}")
        ws = associate_workloads(topo, ws, scs[0].params, association, seed=seed)
    if mbs_association != "fixed":
        from specedge.multicell.mbs_association import associate_cells

        l_pred = int(getattr(policy, "speculation_length", 4) or 4)
        topo, _, _ = associate_cells(topo, ws, mbs_association, speculation_length=l_pred, seed=seed)
        scs = scenarios(topo)  # a cell's scenario carries its MBS's device and target
    run = mco.simulate(topo, ws, policy, config, verifier_policy=verifier_policy, seed=seed, scenarios=scs)
    out = mco.summary(run)
    out.update({"preset": topo.name, "pairs": sorted({sc.pair for sc in scs}),
                "acceptance": scs[0].acceptance.stats.name, "uplink_rule": config.uplink_rule, "seed": seed,
                "rate_rps_per_cell": rate, "requests_per_cell": requests, "association": association,
                "mbs_association": mbs_association, "cell_mbs": [topo.mbs[c.mbs].name for c in topo.cells]})
    return out


def echo_summary(out: dict, echo) -> None:
    """Plain-text form of :func:`online_multicell`'s summary."""
    for key in ("policy", "verifier_policy", "num_cells", "requests", "duration_s", "throughput_tokens_per_s",
                "ttft_p99_s", "e2e_p50_s", "e2e_p99_s", "slo_attainment", "goodput_rps", "mbs_utilisation",
                "energy_j_per_token"):
        val = out[key]
        echo(f"{key:26s} {val:.6g}" if isinstance(val, float) else f"{key:26s} {val}")
    echo(f"{'cell':12s} {'sbs':16s} {'draft':16s} {'goodput_rps':>12s} {'e2e_p99_s':>10s} {'sbs_util':>8s}")
    for c in out["cells"]:
        echo(f"{c['cell']:12s} {c['sbs_device']:16s} {c['draft_model']:16s} {c['goodput_rps']:12.4g} "
             f"{c['e2e_p99_s']:10.4g} {c['sbs_utilisation']:8.3f}")


def dumps(out: dict) -> str:
    return json.dumps(out, default=float)
