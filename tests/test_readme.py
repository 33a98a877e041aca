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


def _tour() -> list[list[str]]:
    import shlex

    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- tour -->\n```bash\n(.*?)\n```\n<!-- /tour -->", text, re.S)
    assert match, "README has no tour block"
    return [shlex.split(line.split(" # ")[0]) for line in match.group(1).splitlines() if line.strip()]


def test_the_tour_runs(tmp_path, monkeypatch, capsys):
    """Every command of the README's five-minute tour works as written (the report only parses: --help)."""
    from specedge.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPECEDGE_STORE", raising=False)
    tour = _tour()
    assert [args[:2] for args in tour][:3] == [["specedge", "report"], ["specedge", "optimize"],
                                               ["specedge", "optimize"]]
    for args in tour:
        assert args[0] == "specedge"
        rest = args[1:] + (["--help"] if args[1] == "report" else [])
        assert main(rest) == 0, " ".join(args)
        out = capsys.readouterr()
        assert "error" not in out.err.lower(), (args, out.err)
    assert (tmp_path / "plan.json").is_file()


def test_readme_links_point_at_files():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert any(link.startswith("docs/") for link in links)
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert not missing, missing
    assert len(text.splitlines()) < 150  # a front door, not the manual


def test_reference_pages_moved_out_of_the_readme_link_to_files():
    pages = ["cli", "report", "sweeps", "traces", "scenarios", "policies", "benchmarks", "serve", "layout"]
    for page in pages:
        path = ROOT / "docs" / f"{page}.md"
        text = path.read_text()
        for link in re.findall(r"\]\(([^)#]+)\)", text):
            if not link.startswith("http"):
                assert (path.parent / link).resolve().exists(), f"docs/{page}.md links to missing {link}"
