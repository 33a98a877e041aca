"""The README's two set-up commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block(name: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {name} -->\n```bash\n(.*?)\n```\n<!-- /{name} -->", text, re.S)
    assert match, f"README has no {name} block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert text.count("<!-- main-command -->") == 1
    assert text.count("<!-- test-command -->") == 1
    assert len(_block("main-command")) == 1
    assert len(_block("test-command")) == 1


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci
    cmd = _block("test-command")[0]
    assert "pytest" in cmd and "python3 -m venv .venv" in cmd
