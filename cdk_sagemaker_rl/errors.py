"""The one exception type a user of the library meets at synth time.

Every check on user input raises :class:`ValidationError` with a message that names the offending
value, what is allowed, and where to look, so that a bad argument surfaces while `cdk synth` runs
instead of as a failed deploy an hour later.
"""

from __future__ import annotations

from collections.abc import Iterable

README_REFERENCE = "README.md#argument-reference"


class ValidationError(ValueError):
    """Raised for invalid construct arguments; the message is meant to be read by a person."""


def invalid(
    argument: str,
    value: object,
    allowed: str | Iterable[str],
    *,
    see: str = README_REFERENCE,
) -> ValidationError:
    """A uniform error: the argument, its bad value, what is allowed and where to read more."""
    if isinstance(allowed, str):
        allowed_text = allowed
    else:
        allowed_text = "one of: " + ", ".join(sorted(str(a) for a in allowed))
    return ValidationError(
        f"{argument}={value!r} is not valid. Allowed: {allowed_text}. See {see}."
    )
