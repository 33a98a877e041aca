"""Compute traces of the serving engine, measured under the run's conditions (same core, one thread).

Replay predicts pass latency from compute traces; a fidelity check is only as fair as those traces are of the
code that serves. :func:`measure_pair` times the ragged serving engine (:class:`specedge.serve.engine.EngineLM`)
with the project's compute-trace measurer (:func:`specedge.record.compute_trace.measure_compute`), each model on
its node's core, over a grid that covers the run's shapes (:func:`run_grid`), and writes one compute dataset per
model through the store. By default both models are measured at once ("co-run"), because in a pipelined run the
two cores are busy together and share the last-level cache and memory bandwidth. Each model's speed probe
(:mod:`specedge.serve.probe`) is timed right before and right after its grid and recorded as ``speed_probe``.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass

import numpy as np

#: Batch sizes the grid draws from (plus the plan's largest batch): members leave a batch, so b takes every
#: value from the largest batch down to 1 and the predictors interpolate between these.
GRID_BATCH_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
#: Timed passes per configuration and untimed warm-up passes before them (few, so that the traces are measured
#: close in time to the run they are held against).
GRID_REPEATS = 5
GRID_WARMUP = 1


@dataclass(frozen=True)
class RunGrid:
    """Two measurement grids: ``prefill`` (c = 0, widths x from ``prefill.context_tokens``) and ``cached`` (decode
    and verify passes on top of ``cached.context_tokens`` cached tokens). Split so that prefill widths stop at the
    longest prompt while cached contexts reach prompt + output."""

    prefill: object
    cached: object

    @property
    def batch_sizes(self):
        return self.cached.batch_sizes

    @property
    def new_tokens(self):
        return self.cached.new_tokens

    @property
    def context_tokens(self):
        return self.cached.context_tokens

    @property
    def prefill_widths(self):
        return self.prefill.context_tokens

    def points(self):
        return self.prefill.points() + self.cached.points()


def _powers_of_two(lo: int, hi: int) -> tuple[int, ...]:
    """Powers of two from the largest one <= lo to the smallest one >= hi."""
    a = int(np.floor(np.log2(max(lo, 2))))
    b = int(np.ceil(np.log2(max(hi, 2))))
    return tuple(int(2**e) for e in range(a, b + 1))


def run_grid(sc, plan, *, repeats: int = GRID_REPEATS, warmup: int = GRID_WARMUP) -> RunGrid:
    """The grids covering the passes a run of ``plan`` makes: batch sizes 1..max batch; prefill widths in powers of
    two around the prompts (up to the longest prompt + l + 1, the first verification); verify widths 2 (draft passes
    that feed two tokens) and each l + 1 of the plan; cached contexts in powers of two from the shortest prompt to
    the longest prompt + output."""
    from specedge.record.compute_trace import ComputeGrid

    b_max = max(len(b) for b in plan.batches)
    batch_sizes = tuple(sorted({b for b in GRID_BATCH_SIZES if b < b_max} | {b_max}))
    l_max = max(plan.speculation_length)
    lo = int(sc.tasks["input_tokens"].min())
    i_max = int(sc.tasks["input_tokens"].max())
    hi = i_max + int(sc.tasks["output_tokens"].max()) + 2 * l_max + 2
    widths = tuple(sorted({2} | {int(l) + 1 for l in plan.speculation_length}))
    prefill = ComputeGrid(batch_sizes=batch_sizes, new_tokens=widths,
                          context_tokens=_powers_of_two(lo, i_max + l_max + 1), phases=("prefill",),
                          repeats=repeats, warmup=warmup)
    cached = ComputeGrid(batch_sizes=batch_sizes, new_tokens=widths, context_tokens=_powers_of_two(lo, hi),
                         phases=("decode", "verify"), repeats=repeats, warmup=warmup)
    return RunGrid(prefill, cached)


#: How the two models are measured: "co-run" (both at once, each on its node's core, so each pass sees the other
#: node busy as in a pipelined run) or "alone" (one after the other).
MEASURE_MODES = ("co-run", "alone")
#: How each configuration is timed: "pass" (one pass after an untimed prefill, back to back), "job" (as a
#: serving node runs a job, :mod:`specedge.serve.job_grid`) or "steady" (back-to-back passes of one shape,
#: :mod:`specedge.serve.steady_grid`).
GRID_MODES = ("pass", "job", "steady")


def _measure_one(role, card_name, source, grid, core, dataset_id, note, stamp_meta):
    """Measure one model on ``core`` (in this process) between two speed probes; returns (lm, frame, metadata).
    ``stamp_meta["grid_mode"]`` "job" times the grid job-shaped (:mod:`specedge.serve.job_grid`), "steady" shape by
    shape (:mod:`specedge.serve.steady_grid`)."""
    from specedge.serve.engine import EngineLM
    from specedge.serve.workload import load_model

    if core is not None:
        os.sched_setaffinity(0, {int(core)})
    lm = EngineLM(load_model(source), capacity=int(max(grid.context_tokens)) * 2 + 64)
    before = _probe(lm, role)
    measure = {"job": _measure_job, "steady": _measure_steady}.get(stamp_meta.get("grid_mode"), _measure_pass)
    frame, meta = measure(role, lm, grid, core, dataset_id, note, stamp_meta)
    return lm, frame, {**meta, "speed_probe": {"before": before, "after": _probe(lm, role)}}


def _measure_pass(role, lm, grid, core, dataset_id, note, stamp_meta):
    """The pass-shaped grid of one model (:func:`specedge.record.compute_trace.measure_compute`, each configuration
    one pass)."""
    import pandas as pd

    from specedge.record.compute_trace import cpu_device_id, measure_compute

    parts = []
    for part in (grid.prefill, grid.cached):
        frame, meta = measure_compute(lm, part, dataset_id=dataset_id, device=cpu_device_id(1), threads=1, seed=0,
                                      note=note)
        parts.append(frame)
    meta = {**meta, "grid": {"prefill": asdict(grid.prefill), "cached": asdict(grid.cached)}, "core": core,
            "load_average": [round(x, 2) for x in os.getloadavg()], "engine": lm.describe()["engine"], **stamp_meta}
    return pd.concat(parts, ignore_index=True), meta


def _probe(lm, role: str) -> dict:
    """The speed probe (:func:`specedge.serve.probe.speed_probe`) of ``role``'s fixed pass on ``lm``'s serving
    engine, on one torch thread as the grid is measured; recorded before and after the grid as ``speed_probe``."""
    import torch

    from specedge.serve.probe import speed_probe

    torch.set_num_threads(1)
    return speed_probe(lm.engine, lm.vocab_size, role, torch=torch)


def _first_tokens(role: str, grid) -> int:
    """New tokens of a node's first pass of a job, as the engine-timed grids time it: a decode pass (1) for the
    draft model, the widest verify width for the target."""
    return 1 if role == "draft" else int(max(grid.cached.new_tokens))


def _measure_job(role, lm, grid, core, dataset_id, note, stamp_meta):
    """The job-shaped grid of one model (:func:`specedge.serve.job_grid.measure_job_compute`): the draft model's
    jobs start with a decode pass, the target's with its widest verify pass."""
    import torch

    from specedge.record.compute_trace import cpu_device_id
    from specedge.serve import job_grid

    torch.set_num_threads(1)
    draft = role == "draft"
    first = _first_tokens(role, grid)
    passes = job_grid.DRAFT_DECODE_PASSES if draft else job_grid.TARGET_DECODE_PASSES
    if draft and grid.cached.repeats < job_grid.DRAFT_MIN_REPEATS:  # cheap: measured while the target's runs
        from dataclasses import replace

        more = {"repeats": job_grid.DRAFT_MIN_REPEATS}
        grid = RunGrid(replace(grid.prefill, **more), replace(grid.cached, **more))
    desc = lm.describe()
    frame, jmeta = job_grid.measure_job_compute(
        lm.engine, grid, vocab_size=lm.vocab_size, name=lm.name, dataset_id=dataset_id, first_tokens=first,
        decode_passes=passes, device=cpu_device_id(1), dtype=desc.get("dtype", "fp32"), note=note)
    return frame, _engine_grid_meta(lm, desc, grid, core, dataset_id, jmeta, stamp_meta)


def _measure_steady(role, lm, grid, core, dataset_id, note, stamp_meta):
    """The steady grid of one model (:func:`specedge.serve.steady_grid.measure_steady_compute`); its job-switch
    jobs are the node's: the draft model's start with a decode pass and run 1, 3 or 5 passes, the target's are one
    pass of its widest verify width (:mod:`specedge.serve.job_switch`)."""
    import torch

    from specedge.record.compute_trace import cpu_device_id
    from specedge.serve import job_switch
    from specedge.serve.steady_grid import measure_steady_compute

    torch.set_num_threads(1)
    desc = lm.describe()
    first = _first_tokens(role, grid)
    lengths = job_switch.DRAFT_SWITCH_LENGTHS if role == "draft" else job_switch.TARGET_SWITCH_LENGTHS
    frame, smeta = measure_steady_compute(lm.engine, grid, vocab_size=lm.vocab_size, name=lm.name,
                                          dataset_id=dataset_id, switch_first_tokens=first, switch_lengths=lengths,
                                          device=cpu_device_id(1), dtype=desc.get("dtype", "fp32"), note=note)
    return frame, _engine_grid_meta(lm, desc, grid, core, dataset_id, smeta, stamp_meta)


def _engine_grid_meta(lm, desc, grid, core, dataset_id, grid_meta, stamp_meta) -> dict:
    """Provenance of a grid timed on the serving engine (job-shaped or steady): the model, this machine, the
    measurer's own metadata ``grid_meta`` and the measurement's stamp."""
    from specedge.record.compute_trace import cpu_device_id
    from specedge.record.recorder import environment
    from specedge.serve import job_grid

    env = environment()
    return {"source": "recorded", "kind": "compute", "dataset": dataset_id, "model": lm.name,
            "model_parameters": desc.get("parameters"), "model_weights_sha256": desc.get("weights_sha256"),
            "model_description": desc, "device": cpu_device_id(1), **env, "torch_threads": 1,
            "cpu_model": env["hardware"]["cpu_model"], "seed": 0, "licence": "", **grid_meta,
            "grid": job_grid.grid_dict(grid), "core": core,
            "load_average": [round(x, 2) for x in os.getloadavg()], "engine": desc["engine"], **stamp_meta}


def _co_run_worker(role, card_name, source, grid, core, dataset_id, note, stamp_meta, conn, stop) -> None:
    """Measure, send the result, then keep running the same passes (untimed) until ``stop``: the other node's
    model is measured while this core is busy, as in a run."""
    import torch

    try:
        lm, frame, meta = _measure_one(role, card_name, source, grid, core, dataset_id, note, stamp_meta)
        conn.send((role, frame, meta, None))
        gen = torch.Generator().manual_seed(1)
        points = grid.points()
        i = 0
        while not stop.is_set():
            phase, b, x, c = points[i % len(points)]
            cache = lm.new_cache()
            if phase != "prefill":
                lm.forward(torch.randint(0, lm.vocab_size, (b, c), generator=gen), cache)
            lm.forward(torch.randint(0, lm.vocab_size, (b, x), generator=gen), cache)
            i += 1
    except BaseException:  # noqa: BLE001 - reported to the parent
        import traceback

        conn.send((role, None, None, traceback.format_exc()))
    finally:
        conn.close()


def measure_pair(sc, plan, draft, target, *, store, cores=(0, 1), grid=None, stamp: str | None = None,
                 mode: str = "co-run", note: str = "", provenance: dict | None = None,
                 grid_mode: str = "pass") -> dict[str, str]:
    """Measure both models' compute traces of the serving engine on their node cores (``draft``/``target``:
    :class:`~specedge.serve.workload.ModelSource`) and write them; returns {"draft": id, "verify": id}.

    ``mode`` (:data:`MEASURE_MODES`): "co-run" measures both at once in two spawned processes, each keeping its
    core busy until the other is done; "alone" measures them one after the other in this process.
    ``provenance``: extra metadata for both datasets (``serve-real`` records the foreign work sampled before).
    ``grid_mode`` (:data:`GRID_MODES`): "pass" (each configuration one pass, :func:`measure_compute`), "job"
    (job-shaped, with the per-job wake-up term: :mod:`specedge.serve.job_grid`) or "steady" (back-to-back passes
    of one shape: :mod:`specedge.serve.steady_grid`); recorded as ``grid_mode``.
    """
    import multiprocessing as mp

    from specedge.errors import InputError

    if mode not in MEASURE_MODES:
        raise InputError(f"compute measurement mode {mode!r}; expected one of {', '.join(MEASURE_MODES)}")
    if grid_mode not in GRID_MODES:
        raise InputError(f"compute grid mode {grid_mode!r}; expected one of {', '.join(GRID_MODES)}")
    grid = grid or run_grid(sc, plan)
    stamp = stamp or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    jobs = {role: (role, card.name, source, grid, core, f"compute-{card.name}-serve-{stamp}",
                   note or f"serving engine on core {core}, measured right before a real run (specedge serve-real, "
                           f"{mode})", {"measure_mode": mode, "grid_mode": grid_mode, **(provenance or {})})
            for role, card, source, core in (("draft", sc.draft, draft, cores[0]),
                                             ("verify", sc.target, target, cores[1]))}
    results = {}
    if mode == "alone":
        import torch

        old_affinity, old_threads = os.sched_getaffinity(0), torch.get_num_threads()
        try:
            for role, job in jobs.items():
                _, frame, meta = _measure_one(*job)
                results[role] = (frame, meta)
        finally:
            os.sched_setaffinity(0, old_affinity)
            torch.set_num_threads(old_threads)
    else:
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        procs, conns = [], []
        try:
            for role, job in jobs.items():
                parent, child = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_co_run_worker, args=(*job, child, stop), daemon=True,
                                   name=f"specedge-measure-{role}")
                proc.start()
                child.close()
                procs.append(proc)
                conns.append(parent)
            from multiprocessing.connection import wait

            pending = list(conns)
            while pending:  # read whichever finishes first, so that neither blocks on a full pipe
                for conn in wait(pending):
                    try:
                        role, frame, meta, error = conn.recv()
                    except EOFError:
                        raise InputError("a compute measurement process died") from None
                    if error:
                        raise InputError(f"compute measurement of the {role} model failed:\n{error}")
                    results[role] = (frame, meta)
                    pending.remove(conn)
        finally:
            stop.set()
            for proc in procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=5)
    ids = {}
    for role in ("draft", "verify"):
        frame, meta = results[role]
        store.write(frame, meta["dataset"], kind="compute", metadata=meta)
        ids[role] = meta["dataset"]
    return ids
