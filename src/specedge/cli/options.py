"""Option parsing shared by the commands: ``KEY=VALUE`` assignments (``--set``, ``--param``)."""

from __future__ import annotations

import tomllib

from specedge.errors import InputError


def parse_assignments(
    items: list[str] | tuple[str, ...] | None,
    flag: str,
    *,
    example: str,
    error: type[InputError] = InputError,
) -> dict:
    """``KEY=VALUE`` strings to a dict; VALUE is read as a TOML value (7, 0.5, 25e6, true, "x"), else kept as text.

    ``flag`` and ``example`` only shape the error message, e.g. ``--set 'x': expected KEY=VALUE, e.g. ...``.
    """
    out: dict = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise error(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} {example}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key.strip()] = value
    return out


def acceptance_source(acceptance: str, trace: str | None) -> str:
    """The acceptance source of ``--acceptance`` (expected, iid or a dataset id), or of the older ``--trace DATASET``.

    Both name the same thing; giving a dataset with ``--trace`` and another non-default ``--acceptance`` is refused.
    """
    if trace is None:
        return acceptance
    if acceptance not in ("expected", trace):
        raise InputError(f"--trace {trace} and --acceptance {acceptance} name two acceptance sources; "
                         "give one, with --acceptance")
    return trace
