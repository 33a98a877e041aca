"""The foreign-work sampler on synthetic /proc readings, the refusal to measure on a busy machine, and the run's
provenance. Expected shares are computed by hand from the tick counts written below (module docstring of
specedge.serve.quiet: foreign_j = (busy_j - own_j) / total_j)."""

from __future__ import annotations

import pytest

from specedge.cli import main
from specedge.serve import quiet
from specedge.serve.quiet import (
    FOREIGN_WORK_LIMIT,
    NoisyMachineError,
    check_quiet,
    foreign_shares,
    parse_pid_stat,
    parse_proc_stat,
    read_snapshot,
    sample_foreign_work,
)
from specedge.traces.store import open_store

from tests.serve.tiny import RUN_ID


def proc_stat(cpu0, cpu1) -> str:
    """/proc/stat text; cpuN = (user, nice, system, idle, iowait, irq, softirq, steal)."""
    agg = [a + b for a, b in zip(cpu0, cpu1)]
    lines = ["cpu  " + " ".join(map(str, agg + [0, 0]))]
    lines += [f"cpu{i} " + " ".join(map(str, c + (0, 0))) for i, c in enumerate((cpu0, cpu1))]
    lines += ["intr 12345 0 0", "ctxt 999", "btime 1700000000", "processes 42"]
    return "\n".join(lines) + "\n"


def pid_stat(pid: int, utime: int, stime: int, last_core: int, comm: str = "python (x) y") -> str:
    # fields 3.. after "pid (comm) "; field 14 utime, 15 stime, 39 processor
    rest = ["S"] + ["0"] * 40
    rest[14 - 3], rest[15 - 3], rest[39 - 3] = str(utime), str(stime), str(last_core)
    return f"{pid} ({comm}) " + " ".join(rest) + "\n"


def write_proc(root, cpu0, cpu1, own: dict):
    (root / "stat").write_text(proc_stat(cpu0, cpu1))
    for pid, (u, s, core) in own.items():
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(pid_stat(pid, u, s, core))


def test_parsers_read_the_fields_by_position():
    ticks = parse_proc_stat(proc_stat((10, 1, 5, 100, 3, 2, 1, 4), (0, 0, 0, 50, 0, 0, 0, 0)))
    assert ticks[0].busy == 10 + 1 + 5 + 2 + 1 + 4 and ticks[0].total == ticks[0].busy + 100 + 3
    assert ticks[1].busy == 0 and ticks[1].total == 50 and set(ticks) == {0, 1}
    assert parse_pid_stat(pid_stat(7, 30, 12, 1, comm="a) (b")) == (42, 1)


def test_foreign_share_subtracts_our_own_processes(tmp_path):
    # before: core 0 busy 100 of 1000, core 1 busy 200 of 1000; our pid 11 on core 1 has used 50 ticks
    write_proc(tmp_path, (100, 0, 0, 900, 0, 0, 0, 0), (150, 0, 50, 800, 0, 0, 0, 0), {11: (40, 10, 1)})
    before = read_snapshot([11, 99], tmp_path)  # 99 does not exist: left out
    # after 300 ticks per core: core 0 +30 busy (all foreign), core 1 +120 busy of which +90 ours, steal +15
    write_proc(tmp_path, (130, 0, 0, 1170, 0, 0, 0, 0), (230, 0, 60, 995, 0, 0, 0, 15), {11: (120, 20, 1)})
    after = read_snapshot([11], tmp_path)
    shares = foreign_shares(before, after, [0, 1])
    assert shares[0] == pytest.approx(30 / 300)
    assert shares[1] == pytest.approx((105 - 90) / 300)  # busy 80 + 10 + 15 steal = 105, own 90
    # pinned to core 0 instead: our time no longer excuses core 1 and is subtracted (clipped) from core 0
    pinned = foreign_shares(before, after, [0, 1], pinned={11: 0})
    assert pinned[0] == 0.0 and pinned[1] == pytest.approx(105 / 300)


def test_sampling_and_the_five_percent_limit(tmp_path):
    write_proc(tmp_path, (0, 0, 0, 1000, 0, 0, 0, 0), (0, 0, 0, 1000, 0, 0, 0, 0), {5: (0, 0, 0)})

    def busy_sleep(_s):  # 400 ticks pass: core 1 gets 40 foreign ticks (10%), core 0 stays idle
        write_proc(tmp_path, (0, 0, 0, 1400, 0, 0, 0, 0), (40, 0, 0, 1360, 0, 0, 0, 0), {5: (0, 0, 0)})

    sample = sample_foreign_work({"draft": 0, "verify": 1}, seconds=0.01, pids=[5], proc_root=tmp_path,
                                 sleep=busy_sleep)
    assert sample["nodes"]["draft"] == {"core": 0, "foreign_share": 0.0}
    assert sample["nodes"]["verify"]["foreign_share"] == pytest.approx(0.10) and sample["max"] == pytest.approx(0.1)
    with pytest.raises(NoisyMachineError, match=r"10% of the verify node's core 1 .*--allow-noisy"):
        check_quiet(sample, allow_noisy=False)
    assert "running anyway" in check_quiet(sample, allow_noisy=True)
    quiet_sample = {**sample, "nodes": {"verify": {"core": 1, "foreign_share": FOREIGN_WORK_LIMIT}}}
    assert check_quiet(quiet_sample, allow_noisy=False) is None  # at the limit is still quiet
    assert NoisyMachineError("x").exit_code == 2


def test_serve_real_refuses_a_busy_machine_and_leaves_the_store_alone(tiny_run, tmp_path, monkeypatch, capsys):
    def noisy(cores, **_kw):
        return quiet.summary({c: 0.4 for c in cores.values()}, list(cores), 3.0)

    monkeypatch.setattr(quiet, "sample_foreign_work", noisy)
    args = [a for a in tiny_run["args"] if a != "--allow-noisy"]
    store = tmp_path / "store"
    args[args.index("--store") + 1] = str(store)
    if "none" in args:  # one core only: nothing to sample, so nothing to refuse
        pytest.skip("the machine has fewer than two cores")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not quiet" in err and "40%" in err and "--allow-noisy" in err and len(err.strip().splitlines()) <= 3
    assert not store.exists() or not open_store(store).list()


def test_the_tiny_run_records_foreign_work_before_and_during(tiny_run):
    meta = open_store(tiny_run["store"]).info(RUN_ID).metadata
    fw = meta["foreign_work"]
    if fw["before"] is None:
        pytest.skip("the machine has fewer than two cores")
    for when in ("before", "during"):
        assert set(fw[when]["nodes"]) == {"draft", "verify"}
        assert all(0 <= n["foreign_share"] <= 1 for n in fw[when]["nodes"].values())
    assert fw["max"] == max(fw["before"]["max"], fw["during"]["max"])
    assert fw["noisy"] == (fw["max"] > FOREIGN_WORK_LIMIT)
    compute = open_store(tiny_run["store"]).info(meta["compute_traces"]["draft"]).metadata
    assert "foreign_work" in compute and "before" in compute["foreign_work"]


def test_record_compute_refuses_a_busy_machine(tiny_run, tmp_path, monkeypatch, capsys):
    from tests.serve.tiny import TARGET

    monkeypatch.setattr(quiet, "sample_foreign_work",
                        lambda cores, **_kw: quiet.summary({c: 0.2 for c in cores.values()}, list(cores), 3.0))
    store = tmp_path / "store"
    args = ["record", "compute", "--model", str(tiny_run["root"] / "checkpoints" / TARGET), "--dataset", "c",
            "--batch-sizes", "1", "--new-tokens", "1", "--contexts", "8", "--repeats", "1", "--store", str(store)]
    capsys.readouterr()
    assert main(args) == 2
    assert "not quiet" in capsys.readouterr().err
    assert not store.exists() or not open_store(store).list()
    assert main(args + ["--allow-noisy"]) == 0
    assert open_store(store).info("c").metadata["foreign_work"]["before"]["max"] == pytest.approx(0.2)
