"""How the CLI reads the values people type that Typer cannot check by itself: durations, identities,
turn counts.

Every command parses a duration (``300``, ``90s``, ``5m``, ``2h``, ``1d``), checks an identity and reads
a ``--turns N|all`` here, so a bad one reads the same everywhere: one line on stderr, exit 2.
"""

from __future__ import annotations

from typing import Literal, overload

from lkpersist.cli._output.text import quoted
from lkpersist.cli._runner import fail
from lkpersist.durations import parse_duration
from lkpersist.exceptions import InvalidInputError


@overload
def duration_seconds(text: str) -> float: ...


@overload
def duration_seconds(text: None) -> None: ...


def duration_seconds(text: str | None) -> float | None:
    """Seconds for a duration option (None when it was not given); a bad one exits 2 with one line."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except InvalidInputError as exc:
        fail(str(exc), exc.exit_code)


def checked_identity(text: str) -> str:
    """An identity argument as given, once it is one a store can hold; else one line naming it, exit 2."""
    from lkpersist.model.session import validate_identity  # the model package is not needed for --help

    try:
        return validate_identity(text)
    except InvalidInputError as exc:
        fail(f"{exc} ({quoted(text)})", exc.exit_code)


ALL: Literal["all"] = "all"


def turn_count(text: str | None, option: str = "--turns") -> int | Literal["all"] | None:
    """``--turns N`` (a positive number) or ``--turns all``; None when not given; else one line, exit 2."""
    if text is None:
        return None
    if text.strip().lower() == ALL:
        return ALL
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        fail(f"{option} takes a positive number of turns or 'all', not {text!r}", 2)
    return number


__all__ = ["ALL", "checked_identity", "duration_seconds", "turn_count"]
