"""Usage errors are one line on stderr with exit status 2, never a traceback; ``--version``; help in words.

Each case runs the real console entry point in a subprocess, once as installed and once with ``click`` made
unimportable (a plain ``pip install -e .`` with a typer that bundles its own click has no ``click`` package).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from specedge.cli.usage import _word

_RUN = "import sys\n{block}from specedge.cli import main\nsys.exit(main())"
_NO_CLICK = "sys.modules['click'] = None  # import click -> ImportError\n"


def _specedge(*args: str, no_click: bool = False) -> subprocess.CompletedProcess:
    code = _RUN.format(block=_NO_CLICK if no_click else "")
    env = {**os.environ, "COLUMNS": "200", "SPECEDGE_TRACEBACK": "0", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=120)


BAD_LINES = [
    (("reprot",), "Did you mean 'report'?"),
    (("optimise",), "Did you mean 'optimize'?"),
    (("replay",), "--plan"),
    (("optimize", "--tasks", "abc"), "--tasks"),
    (("report", "--bogus"), "--bogus"),
    (("traces", "lst"), "Did you mean 'list'?"),
]


@pytest.mark.parametrize("no_click", [False, True], ids=["installed", "no-click-package"])
@pytest.mark.parametrize(("args", "expected"), BAD_LINES, ids=[" ".join(a) for a, _ in BAD_LINES])
def test_usage_error_is_one_line_exit_2(args, expected, no_click):
    proc = _specedge(*args, no_click=no_click)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: specedge")
    assert expected in lines[0]
    assert proc.stdout == ""


def test_version_prints_the_installed_version():
    proc = _specedge("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"specedge {version('specedge')}"


@pytest.mark.parametrize("args", [("--help",), ("optimize", "--help"), ("ingest", "--help"),
                                  ("replay", "--help"), ("traces", "show", "--help")])
def test_help_names_types_in_words(args):
    proc = _specedge(*args)
    assert proc.returncode == 0, proc.stderr
    types = re.findall(r"<(?:bool|int|float|str|path|list\[[^\]]*\])>", proc.stdout)
    assert not types, f"help shows Python types {types}"


@pytest.mark.parametrize(("label", "word"), [("<int>", "INTEGER"), ("<float>", "NUMBER"), ("<str>", "TEXT"),
                                             ("<bool>", ""), ("<list[str]>", "TEXT..."), ("<a|b>", "[a|b]"),
                                             ("<path>", "PATH")])
def test_type_labels_become_words(label, word):
    assert _word(label) == word


def test_mistyped_command_gets_a_suggestion_when_click_gives_none():
    # click 8.1 (typer <= 0.15) says only "No such command 'reprot'."; the suggestion then comes from specedge
    import typer.main

    from specedge.cli import _register, app
    from specedge.cli.usage import UsageError, usage_line

    _register()
    command = typer.main.get_command(app)
    ctx = command.context_class(command, info_name="specedge")
    line = usage_line(UsageError("No such command 'reprot'.", ctx))
    assert line == "specedge: No such command 'reprot'. Did you mean 'report'? (see 'specedge --help')"
