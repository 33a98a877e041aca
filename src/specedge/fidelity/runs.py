"""A run dataset's metadata and records, as the fidelity comparison reads them.

- :func:`named_traces`: the (draft, verify) compute traces a run names;
- :func:`run_noise`: whether a run is ``noisy`` (node cores with more than
  :data:`specedge.serve.quiet.FOREIGN_WORK_LIMIT` foreign work before or during it);
- :func:`pair_runs`: the store's other runs of the same pair and temperature (quiet ones by default);
- :func:`latest_run`: the newest run dataset in a store;
- :func:`fronthaul_of`: the one-way node-to-node delay a run is replayed with;
- :func:`_records`: a run's job and pass records (and their outside-pass times), read once per run version for the
  host-overhead and contention fits (``_RECORDS_CACHE``, emptied by :func:`specedge.fidelity.memo.clear`).

:mod:`specedge.fidelity.compare` re-exports every name here, so ``from specedge.fidelity.compare import run_noise``
(and the others) keeps working.
"""

from __future__ import annotations

from specedge.errors import DatasetNotFoundError, InputError


def named_traces(meta: dict) -> tuple:
    """(draft, verify) compute-trace ids a run's metadata names (None where it names none)."""
    return tuple((meta.get("compute_traces") or {}).get(r) for r in ("draft", "verify"))


def run_noise(meta: dict) -> tuple[bool, float | None]:
    """(noisy, foreign work): the larger node's foreign-work share before or during the run (serve.quiet).

    Runs recorded before the sampler existed give their during-run share from ``cpu_usage`` (which counted the
    coordinator as foreign, so it is an upper bound); a run with neither is noisy (unknown)."""
    from specedge.serve.quiet import FOREIGN_WORK_LIMIT

    fw = meta.get("foreign_work") or {}
    shares = [s["max"] for s in (fw.get("before"), fw.get("during")) if isinstance(s, dict) and "max" in s]
    if not shares:
        cores = (meta.get("cpu_usage") or {}).get("cores") or {}
        shares = [float(c["foreign_share"]) for c in cores.values() if "foreign_share" in c]
    if not shares:
        return True, None
    worst = max(0.0, max(shares))
    return worst > FOREIGN_WORK_LIMIT, worst


def pair_runs(store, meta: dict, *, quiet_only: bool = True, exclude: str | None = None) -> list[str]:
    """Ids of the run datasets of the same pair (and temperature) in the store, quiet ones only by default."""
    out = []
    for i in store.list():
        if i.kind != "run" or i.id == exclude or i.metadata.get("pair") != meta.get("pair"):
            continue
        if i.metadata.get("temperature") != meta.get("temperature"):
            continue
        if quiet_only and run_noise(i.metadata)[0]:
            continue
        out.append(i.id)
    return sorted(out)


#: job and pass records of runs read for host-overhead fits, keyed by (store root, id, checksum of the version)
_RECORDS_CACHE: dict = {}


def _records(store, run_id: str, split_records) -> dict:
    from specedge.fidelity.memo import version_key

    key = version_key(store, run_id)
    if key not in _RECORDS_CACHE:
        if len(_RECORDS_CACHE) > 256:
            _RECORDS_CACHE.clear()
        from specedge.latency.host_overhead import outside_pass_times

        parts = split_records(store.read(run_id))
        _RECORDS_CACHE[key] = {"job": parts["job"], "pass": parts["pass"],
                               "outside": outside_pass_times(parts["job"], parts["pass"])}
    return _RECORDS_CACHE[key]


def latest_run(store) -> str:
    runs = [i for i in store.list() if i.kind == "run"]
    if not runs:
        raise DatasetNotFoundError(f"no run dataset in the store {store.root}; record one with `specedge serve-real`")
    return max(runs, key=lambda i: (i.created, i.id)).id


def fronthaul_of(meta: dict, fronthaul: str | float) -> float | None:
    """The one-way delay to replay with: 'scenario' (None: the run's scenario value, the paper's 0), 'measured'
    (half the median round trip of the pipe, measured by the nodes before the run) or seconds."""
    if fronthaul == "scenario":
        return None
    if fronthaul == "measured":
        pipe = meta.get("pipe") or {}
        if "one_way_median_s" not in pipe:
            raise InputError(f"run {meta.get('dataset')!r} has no measured pipe delay (recorded by newer runs)")
        return float(pipe["one_way_median_s"])
    try:
        value = float(fronthaul)
    except (TypeError, ValueError):
        raise InputError(f"fronthaul {fronthaul!r}: expected 'scenario', 'measured' or seconds") from None
    if not value >= 0:
        raise InputError(f"fronthaul {fronthaul!r}: must be >= 0 seconds")
    return value
