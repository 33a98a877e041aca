"""Measure this machine's CPU for a device card: dense fp32 matmul FLOP/s and memory-copy bandwidth.

``python -m specedge.latency.hostbench NAME`` prints a device-card TOML for ``models/devices/NAME.toml``. The
figures are best-of-``repeats`` timings with numpy's BLAS (all threads it uses), so they are what the host can
reach when nothing else runs, not a datasheet peak.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import date

import numpy as np


def measure_matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n fp32 matrix product (2 n^3 FLOPs)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def measure_copy_bandwidth(num_bytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """Best bytes/s of a large array copy (read + write counted)."""
    src = np.ones(num_bytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * src.nbytes / best


def _memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 0.0


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown CPU"


def host_card_toml(name: str, *, matmul_n: int = 2048, copy_bytes: int = 512 * 2**20) -> str:
    """A device-card TOML for this host (the defaults are what the shipped card used)."""
    flops = measure_matmul_flops(matmul_n)
    bandwidth = measure_copy_bandwidth(copy_bytes)
    cpus = os.cpu_count()
    return (
        f"# This machine's CPU, measured by `python -m specedge.latency.hostbench {name}` on {date.today()}.\n"
        f"# Best of 5: fp32 2048x2048 matmul (numpy {np.__version__} BLAS, all threads) and a 512 MiB copy.\n"
        f'name = "{name}"\n'
        f'display_name = "{_cpu_model()} ({cpus} logical CPUs)"\n'
        'kind = "cpu"\n'
        f"peak_flops = {flops:.4g}\n"
        f"memory_bandwidth_bytes_per_s = {bandwidth:.4g}\n"
        f"memory_bytes = {_memory_bytes():.4g}\n"
        "measured = true\n"
        f'source = "measured on this host {date.today()}: fp32 matmul FLOP/s and copy bandwidth, best of 5"\n'
    )


if __name__ == "__main__":  # pragma: no cover
    print(host_card_toml(sys.argv[1] if len(sys.argv) > 1 else "host-cpu"))
