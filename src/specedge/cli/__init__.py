"""The ``specedge`` command line.

Each area keeps its commands in its own module under ``specedge.cli`` and registers them on
:data:`app` here. Heavy imports (torch, dask) happen inside the command functions, never at start-up.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from specedge.errors import SpecedgeError

app = typer.Typer(
    name="specedge",
    help="Trace-driven benchmark suite for speculative-decoding LLM serving over edge networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _register() -> None:
    # Each line adds one area's commands; keep imports light at module level in those files.
    from specedge.cli import traces as _traces  # noqa: F401
    from specedge.cli import published as _published  # noqa: F401
    from specedge.cli import record as _record  # noqa: F401
    from specedge.cli import record_smollm2 as _record_smollm2  # noqa: F401
    from specedge.cli import replay as _replay  # noqa: F401
    from specedge.cli import report as _report  # noqa: F401
    from specedge.cli import serve as _serve  # noqa: F401
    from specedge.cli import optimize as _optimize  # noqa: F401
    from specedge.cli import claims as _claims  # noqa: F401
    from specedge.cli import online as _online  # noqa: F401


def _version_callback(value: bool) -> None:
    if value:
        from specedge.cli.usage import package_version

        typer.echo(f"specedge {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print specedge's version and exit."),
) -> None:
    """Trace-driven benchmark suite for speculative-decoding LLM serving over edge networks."""


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: runs the app; a SpecedgeError or a usage error becomes one line on stderr.

    Usage errors (unknown command or option, missing or malformed value) exit with status 2 and never show a
    traceback, whichever click typer runs on (see :mod:`specedge.cli.usage`).
    """
    from specedge.cli import usage

    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = os.environ.get("SPECEDGE_TRACEBACK", "") not in ("", "0")
    if "--traceback" in args:
        args.remove("--traceback")
        show_traceback = True
    _register()
    try:
        command = typer.main.get_command(app)
        usage.words_for_types(command)
        rv = command.main(args=args, prog_name="specedge", standalone_mode=False)
    except SpecedgeError as exc:
        if show_traceback:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except usage.ClickException as exc:
        if show_traceback:
            raise
        from rich.text import Text

        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: click printed (or holds) its help
            help_text = str(exc.format_message()).strip()
            if help_text:
                typer.echo(help_text, err=True)
        else:
            err_console.print(Text.assemble(("error: ", "bold red"), usage.usage_line(exc)), soft_wrap=True)
        return usage.exit_code(exc)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except SystemExit as exc:  # typer/click exits (e.g. --help)
        return int(exc.code or 0)
    # non-standalone click returns the status of a typer.Exit/ctx.exit (--help, --version) instead of raising
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
