"""Usage errors of the ``specedge`` command as one line on stderr, whichever click typer runs on.

typer up to 0.15 runs on the ``click`` package; newer typer bundles its own copy as ``typer._click`` and the
``click`` package may be absent (a plain ``pip install -e .``) or present but unrelated (another dependency
pulled it in). The exception classes are therefore found through typer itself: ``typer.BadParameter`` is
click's ``BadParameter`` in both layouts, and its method resolution order holds the ``UsageError`` and
``ClickException`` of the click that typer actually uses. Nothing here imports ``click``.

A usage error prints ``error: <command path>: <message> (see '<command path> --help')`` and exits with
status 2; click already adds "Did you mean ...?" for a mistyped command or option, and a mistyped
command that click has no guess for gets one from :func:`difflib.get_close_matches` here.
"""

from __future__ import annotations

import difflib

import typer

#: Exit status of every usage error (a bad command line), the status click and argparse use.
USAGE_EXIT_CODE = 2


def _click_class(name: str) -> type[BaseException]:
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cls
    raise RuntimeError(f"typer.BadParameter has no {name} base; unsupported typer version")  # pragma: no cover


#: click's ``ClickException`` and ``UsageError`` as typer uses them.
ClickException = _click_class("ClickException")
UsageError = _click_class("UsageError")


def _command_names(ctx) -> list[str]:
    command = getattr(ctx, "command", None)
    try:
        return sorted(command.list_commands(ctx)) if hasattr(command, "list_commands") else []
    except Exception:  # pragma: no cover - a broken group still gets its one-line error
        return []


def usage_line(exc: BaseException) -> str:
    """The one-line message for a click usage error or other ClickException (no usage block, no traceback)."""
    message = " ".join(str(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", "") or "specedge"
    if "Did you mean" not in message and message.startswith("No such command"):
        wrong = message.split("'")[1] if message.count("'") >= 2 else ""
        close = difflib.get_close_matches(wrong, _command_names(ctx), n=1, cutoff=0.6)
        if close:
            message += f" Did you mean '{close[0]}'?"
    hint = f" (see '{path} --help')" if isinstance(exc, UsageError) else ""
    return f"{path}: {message}{hint}"


def exit_code(exc: BaseException) -> int:
    """2 for a usage error, click's own status otherwise."""
    return USAGE_EXIT_CODE if isinstance(exc, UsageError) else int(getattr(exc, "exit_code", 1) or 1)


def package_version() -> str:
    """The installed distribution's version (``importlib.metadata``), else the package's ``__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("specedge")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        from specedge import __version__

        return __version__


#: Help-text words for the Python types that typer >= 0.20 prints as ``<int>``, ``<list[str]>``, ...
_TYPE_WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "bool": "", "path": "PATH", "file": "FILE",
               "directory": "DIR", "dir": "DIR", "datetime": "DATETIME", "uuid": "UUID"}


def _word(label: str) -> str:
    inner = label.strip()
    if inner.startswith("<") and inner.endswith(">"):
        inner = inner[1:-1]
    repeat = inner.startswith("list[") and inner.endswith("]")
    if repeat:
        inner = inner[5:-1]
    if "|" in inner:
        word = "[" + inner + "]"
    else:
        word = _TYPE_WORDS.get(inner.lower(), inner.upper())
    return f"{word}..." if repeat and word else word


def words_for_types(command) -> None:
    """Give every parameter without a metavar a word (TEXT, INTEGER, PATH, [a|b]) instead of a Python type.

    Only typer versions that display Python types (they define ``display_type``) are touched; a click-based
    typer already prints words. A flag gets no word at all. Walks groups recursively.
    """
    for sub in getattr(command, "commands", {}).values():
        words_for_types(sub)
    if not hasattr(command, "context_class"):
        return
    ctx = command.context_class(command)
    for param in command.get_params(ctx):  # includes --help
        is_argument = getattr(param, "param_type_name", "") == "argument"
        if not hasattr(param, "display_type") or (param.metavar is not None and not is_argument):
            continue
        try:
            word = _word(str(param.display_type(ctx) or ""))
        except Exception:  # pragma: no cover - keep typer's own display if it cannot be read
            continue
        if is_argument:
            # an argument's metavar is also its name in the usage line and in error messages: keep it
            param.display_type_rich = lambda ctx, _word=word: _word
        else:
            param.metavar = word
