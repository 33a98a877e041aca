"""One exception family for everything specedge reports to a user.

The CLI prints ``str(error)`` and exits with :attr:`SpecedgeError.exit_code` (no traceback unless
``SPECEDGE_TRACEBACK=1`` or ``--traceback``). Library users catch :class:`SpecedgeError`.
"""

from __future__ import annotations


class SpecedgeError(Exception):
    """Base class of every error specedge raises on purpose."""

    exit_code: int = 1


class InputError(SpecedgeError):
    """Bad input from the user: a file, an argument, a value. Exit status 2."""

    exit_code = 2


class TraceValidationError(InputError):
    """A trace file or frame that breaks the trace schema or its semantics.

    The message names the file (or dataset), the line/row/field and what was expected.
    """


class DatasetNotFoundError(InputError):
    """A dataset id that the store does not hold."""


class DatasetExistsError(InputError):
    """Writing a dataset id that already exists without ``replace=True``."""


class ScenarioError(InputError):
    """An unknown preset, pair or card, or an impossible scenario parameter."""


class PlanError(InputError):
    """A plan that does not fit its scenario (missing or repeated task, l < 1, memory, ...)."""


class PolicyError(InputError):
    """An unknown policy or a policy that cannot be loaded."""
