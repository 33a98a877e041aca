"""Writers in separate processes: concurrent ingests, and a writer killed (SIGKILL) in mid-ingest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SAMPLES, tree_digest

from specedge.traces.store import PAUSE_ENV, STAGING_NAME, open_store

CLI = "import sys; from specedge.cli import main; sys.exit(main(sys.argv[1:]))"


def _spawn(args: list[str], pause_s: float | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("SPECEDGE_STORE", PAUSE_ENV)}
    if pause_s is not None:
        env[PAUSE_ENV] = str(pause_s)
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _ingest_args(store: Path, dataset: str, name: str = "acceptance.csv", fmt: str = "csv") -> list[str]:
    return ["ingest", fmt, str(SAMPLES / name), "--dataset", dataset, "--store", str(store)]


def test_two_concurrent_ingests_of_different_ids_both_land(store):
    procs = [_spawn(_ingest_args(store.root, "one"), pause_s=0.5),
             _spawn(_ingest_args(store.root, "two", "specbench.jsonl", "specbench"), pause_s=0.5)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], results
    assert store.ids() == ["base", "one", "two"]
    assert all(r.ok for r in store.verify())
    json.loads((store.root / "catalog.json").read_text())  # still valid JSON


def test_two_concurrent_ingests_of_the_same_id_one_fails_cleanly(store):
    procs = [_spawn(_ingest_args(store.root, "same"), pause_s=1.0) for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[2] == 2)
    assert "'same' already exists" in loser[1] and "Traceback" not in loser[1]
    assert [v.version for v in store.versions("same")] == [1]
    assert all(r.ok for r in store.verify())


def test_sigkill_in_mid_ingest_leaves_the_store_as_it_was(store):
    before = tree_digest(store.root, include_hidden=False)
    catalog_before = (store.root / "catalog.json").read_bytes()
    proc = _spawn(_ingest_args(store.root, "killed", "specbench.jsonl", "specbench"), pause_s=60)
    staging = store.root / STAGING_NAME
    deadline = time.monotonic() + 60
    while not any(staging.glob("killed.*.parquet")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the writer never staged its data"
        time.sleep(0.05)
    time.sleep(0.5)  # the writer is now between its data write and its catalog write
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert (store.root / "catalog.json").read_bytes() == catalog_before
    assert tree_digest(store.root, include_hidden=False) == before
    assert store.ids() == ["base"] and all(r.ok for r in store.verify())
    # The next writer is not blocked by the dead one and clears its staged file.
    done = _spawn(_ingest_args(store.root, "after"))
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert store.ids() == ["after", "base"]
    assert not any(staging.glob("killed.*"))


def test_unreferenced_file_from_a_crash_between_renames_is_removed(store, frame):
    orphan = store.root / "ghost" / "v1.parquet"
    orphan.parent.mkdir()
    orphan.write_bytes(store.info("base").path.read_bytes())
    store.write(frame, "ghost", kind="acceptance", metadata={"source": "recorded"})
    info = open_store(store.root).info("ghost")
    assert info.version == 1 and info.path == orphan and all(r.ok for r in store.verify())


def test_staging_cleanup_reads_the_pid_from_the_right(store, frame):
    """Dataset ids may contain digit parts; only files of dead writers are removed."""
    staging = store.root / STAGING_NAME
    staging.mkdir(exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = staging / f"v1.2.{os.getpid() if os.getpid() != 2 else 1}.abc.parquet"
    live_other = staging / f"v1.{dead_pid}.{os.getppid()}.abc.parquet"  # id 'v1.<n>', pid = parent (alive)
    stale = staging / f"run.3.{dead_pid}.abc.parquet"
    for p in (live, live_other, stale):
        p.write_bytes(b"x")
    store.write(frame, "next", kind="acceptance", metadata={"source": "recorded"})
    assert live.exists() and live_other.exists() and not stale.exists()
