"""Foreign work on the node cores: how much CPU time other processes take from the cores a measurement uses.

A real run or a compute trace measures the machine, not the model, when other processes share its cores: issue 10
found the shipped runs measured at 30–80% foreign work, and pass times moved by up to 2×. So every measurement
samples the node cores first and refuses to start above a limit (``serve-real``, ``--measure-compute``; override
with ``--allow-noisy``), and records the foreign work before and during it in its provenance; ``specedge fidelity``
marks a run measured under noise (``noisy``) and leaves it out of headline numbers.

Definition [A], per core j over a window (Linux ``/proc``, clock ticks of ``SC_CLK_TCK``):

    busy_j    = Δ(user + nice + system + irq + softirq + steal) of the ``cpuj`` line of /proc/stat
    total_j   = Δ(every field of that line, idle and iowait included)
    own_j     = Δ(utime + stime) of our own processes (fields 14, 15 of /proc/<pid>/stat) that ran on core j
                (pinned processes; otherwise field 39, the core a process last ran on) [A]
    foreign_j = clip((busy_j − own_j) / total_j, 0, 1)

Steal (the hypervisor running another guest on our vCPU) counts as foreign. A run is *noisy* when any node core's
foreign work before or during it exceeds :data:`FOREIGN_WORK_LIMIT`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from specedge.errors import InputError

#: Largest foreign-work fraction on any node core at which a measurement is still called quiet [A].
FOREIGN_WORK_LIMIT = 0.05
#: Seconds the node cores are sampled before a measurement starts [A].
SAMPLE_S = 3.0


class NoisyMachineError(InputError):
    """The node cores are busy with other work (exit status 2; ``--allow-noisy`` runs anyway)."""


@dataclass(frozen=True)
class CoreTicks:
    """Cumulative busy and total ticks of one core (see the module docstring)."""

    busy: int
    total: int


def parse_proc_stat(text: str) -> dict[int, CoreTicks]:
    """Per-core ticks from the text of /proc/stat (the aggregate ``cpu`` line is skipped)."""
    out = {}
    for line in text.splitlines():
        name, *vals = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        v = [int(x) for x in vals[:8]] + [0] * max(0, 8 - len(vals))
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        busy = user + nice + system + irq + softirq + steal
        out[int(name[3:])] = CoreTicks(busy=busy, total=busy + idle + iowait)
    return out


def parse_pid_stat(text: str) -> tuple[int, int]:
    """(utime + stime ticks, last core) from the text of /proc/<pid>/stat (the command may contain spaces and
    parentheses, so fields are counted after the last ')')."""
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field n is rest[n - 3]
    return int(rest[14 - 3]) + int(rest[15 - 3]), int(rest[39 - 3])


@dataclass(frozen=True)
class Snapshot:
    """One reading: per-core ticks and, per own process, (cpu ticks, last core)."""

    cores: Mapping[int, CoreTicks]
    own: Mapping[int, tuple[int, int]]


def read_snapshot(pids: Iterable[int], proc_root: Path | str = "/proc") -> Snapshot:
    """Read /proc/stat and /proc/<pid>/stat of each pid (a pid that has exited is left out)."""
    root = Path(proc_root)
    try:
        cores = parse_proc_stat((root / "stat").read_text())
    except OSError as exc:
        raise InputError(f"cannot read {root / 'stat'} to sample foreign work ({exc}); pass --allow-noisy to "
                         "measure without the check") from None
    own = {}
    for pid in pids:
        try:
            own[int(pid)] = parse_pid_stat((root / str(pid) / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
    return Snapshot(cores, own)


def foreign_shares(before: Snapshot, after: Snapshot, cores: Iterable[int],
                   pinned: Mapping[int, int] | None = None) -> dict[int, float]:
    """foreign_j per core j in ``cores`` between two snapshots; ``pinned`` maps an own pid to the core it is
    pinned to (else its last core is used)."""
    pinned = dict(pinned or {})
    own_on: dict[int, int] = {}
    for pid, (ticks, last) in after.own.items():
        start = before.own[pid][0] if pid in before.own else ticks  # a process started later: not counted
        core = pinned.get(pid, last)
        own_on[core] = own_on.get(core, 0) + max(0, ticks - start)
    out = {}
    for c in cores:
        if c not in before.cores or c not in after.cores:
            raise InputError(f"core {c} is not in /proc/stat; cannot sample its foreign work")
        busy = after.cores[c].busy - before.cores[c].busy
        total = after.cores[c].total - before.cores[c].total
        share = (busy - own_on.get(c, 0)) / total if total > 0 else 0.0
        out[c] = min(1.0, max(0.0, share))
    return out


def summary(shares: Mapping[int, float], roles: Iterable[str], window_s: float) -> dict:
    """Provenance form: {"window_s", "cores": {role: {"core", "foreign_share"}}, "max"}."""
    nodes = {role: {"core": int(c), "foreign_share": round(float(s), 4)} for role, (c, s) in zip(roles, shares.items())}
    return {"window_s": round(float(window_s), 3), "nodes": nodes,
            "max": round(max(shares.values()), 4) if shares else 0.0, "limit": FOREIGN_WORK_LIMIT,
            "source": "/proc/stat per-core ticks minus our own processes' /proc/<pid>/stat CPU ticks"}


def sample_foreign_work(cores: Mapping[str, int], *, seconds: float = SAMPLE_S, pids: Iterable[int] | None = None,
                        proc_root: Path | str = "/proc", sleep: Callable[[float], None] = time.sleep) -> dict:
    """Sample the foreign work of each node core (``cores``: role -> core) for ``seconds`` while our processes
    (``pids``, default this one) wait; returns :func:`summary`."""
    pids = [os.getpid()] if pids is None else list(pids)
    wanted = list(cores.values())
    before = read_snapshot(pids, proc_root)
    t0 = time.monotonic()
    sleep(seconds)
    after = read_snapshot(pids, proc_root)
    shares = foreign_shares(before, after, wanted)
    return summary(shares, list(cores), max(time.monotonic() - t0, 0.0) or seconds)


def check_quiet(sample: dict, *, allow_noisy: bool, what: str = "measurement") -> str | None:
    """Raise :class:`NoisyMachineError` (one line) when any node core's foreign work exceeds the limit, unless
    ``allow_noisy``; returns a warning line in that case, else None."""
    worst = max(sample["nodes"].items(), key=lambda kv: kv[1]["foreign_share"], default=None)
    if worst is None or worst[1]["foreign_share"] <= FOREIGN_WORK_LIMIT:
        return None
    role, node = worst
    line = (f"the machine is not quiet: other processes took {node['foreign_share']:.0%} of the {role} node's core "
            f"{node['core']} over {sample['window_s']:.1f} s (limit {FOREIGN_WORK_LIMIT:.0%}); the {what} would "
            "measure the machine's noise. Stop other jobs (uptime; ps aux --sort=-%cpu | head) or pass --allow-noisy")
    if not allow_noisy:
        raise NoisyMachineError(line)
    return "warning: " + line.replace(" or pass --allow-noisy", "") + " (running anyway: --allow-noisy; the result "\
        "is marked noisy)"


def during(stat_before: Mapping[int, dict], stat_after: Mapping[int, dict], window_s: float,
           own_cpu_s: Mapping[str, float], cores: Mapping[str, int]) -> dict:
    """Foreign work during a run from :func:`specedge.serve.run.cpu_times` readings (busy seconds per core) and
    our processes' CPU seconds per role over the window: foreign_j = (busy_j − own_j) / window."""
    shares = {}
    for role, core in cores.items():
        if core is None or core not in stat_before or core not in stat_after or window_s <= 0:
            continue
        busy = stat_after[core]["busy_s"] - stat_before[core]["busy_s"]
        shares[core] = min(1.0, max(0.0, (busy - own_cpu_s.get(role, 0.0)) / window_s))
    return summary(shares, [r for r, c in cores.items() if c in shares], window_s)


def gate_measurement(*, allow_noisy: bool, seconds: float = SAMPLE_S, what: str = "compute measurement",
                     cores: Iterable[int] | None = None, say: Callable[[str], None] = print) -> dict:
    """Sample ``cores`` (default: every core this process may run on, for measurers that do not pin) and apply
    :func:`check_quiet`; returns the sample for the measurement's provenance (``foreign_work.before``)."""
    cores = sorted(os.sched_getaffinity(0)) if cores is None else list(cores)
    sample = sample_foreign_work({f"core{c}": c for c in cores}, seconds=seconds)
    warning = check_quiet(sample, allow_noisy=allow_noisy, what=what)
    if warning:
        say(warning)
    return sample
