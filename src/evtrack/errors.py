"""Errors that mean "your input is wrong", as opposed to bugs in evtrack.

The CLI prints these as one line (no traceback) and exits with code 2, so every message
must say which file/offset/field was bad, what was found and what was expected.
"""

from __future__ import annotations


class EvtrackError(Exception):
    """Base class of all user-facing errors."""


class FormatError(EvtrackError, ValueError):
    """A file or stream does not follow its format (truncated, corrupt, wrong field)."""


class UserError(EvtrackError, ValueError):
    """An argument, option or configuration the user gave is invalid."""


class EvtrackWarning(UserWarning):
    """Base class of evtrack's own warnings: the input was repaired or is doubtful, the work went on.

    The CLI prints each as one line (``evtrack CMD: warning: ...``), without Python's source line.
    """
