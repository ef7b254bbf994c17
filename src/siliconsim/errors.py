"""Typed errors. Each inherits the builtin that fits, so callers may catch either.

Every message is one line naming the field or file, the value and what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SiliconsimError(Exception):
    """Base of every error siliconsim raises on purpose."""


class CatalogError(ValueError, SiliconsimError):
    """A catalog file is malformed, or a field has a bad value."""


class UnknownIdError(KeyError, SiliconsimError):
    """An id is not in a catalog. The message suggests close matches."""

    def __init__(self, kind: str, wanted: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known[:12])}"
        if not close and len(known) > 12:
            hint += ", ..."
        self.message = f"unknown {kind} id '{wanted}'{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class InputError(ValueError, SiliconsimError):
    """A user-supplied size or option is out of range."""


class OutputError(OSError, SiliconsimError):
    """An output file cannot be written where the user asked (not a regular file, no such folder)."""

    def __str__(self) -> str:  # one line, the message as given
        return str(self.args[0]) if self.args else ""


class InfeasibleError(SiliconsimError):
    """Nothing feasible at all: no plan on any size fits. Single infeasible plans are Verdicts."""


def require_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return value if it is a positive finite number, else raise InputError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {value!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise InputError(f"{name}: expected a finite number, got {value!r}")
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}: expected a number {bound}, got {value!r}")
    return v
