"""Without the record extra (no torch), a plain ``pytest`` collects everything and skips the torch areas with a
reason instead of dying at collection. torch and transformers are made unimportable in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_collection_without_torch_skips_with_a_reason(tmp_path):
    for name in ("torch", "transformers"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError({'No module named ' + repr(name)!r}, name={name!r})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/record", "tests/serve", "tests/fidelity"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "ERROR" not in out
    assert "SKIPPED" in out and "needs torch" in out
    assert "tests/serve/test_run_dataset.py" in out or "test_run_dataset" in out  # torch-free tests still collected
