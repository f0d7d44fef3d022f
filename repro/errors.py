"""Errors that the command line turns into one clear line and an exit code (2 bad input, 1 failed check).

Library code raises these instead of printing, so the same message reaches API users and the CLI.
"""

from __future__ import annotations


class ReproError(Exception):
    """Base class: `exit_code` is what the CLI returns."""

    exit_code = 1


class BadInput(ReproError):
    """The user's input is wrong: name the file, the layer, the expected and the actual."""

    exit_code = 2


class CheckFailed(ReproError):
    """A parity or tolerance check did not pass."""

    exit_code = 1
