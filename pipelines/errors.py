"""User-facing errors: raised for input that cannot be used at all (not for one bad row)."""

from __future__ import annotations


class InputError(ValueError):
    """The input as a whole is unusable (missing file, wrong columns, empty, binary, ...).

    The message names the problem in words a user can act on; the CLI prints it without a
    traceback and exits non-zero. One bad *row* is never an InputError: it becomes a reject.
    """
