"""Human durations (``300``, ``90s``, ``5m``, ``2h``, ``1d``) as used by the CLI and configuration."""

from __future__ import annotations

import re

from lkpersist.exceptions import InvalidInputError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Return seconds for ``text``; a bare number means seconds. Raise InvalidInputError otherwise."""
    match = _PATTERN.match(text or "")
    if match is None:
        raise InvalidInputError(
            f"invalid duration {text!r}: use a number of seconds or a number with s, m, h, d or w (e.g. 90s, 5m)"
        )
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def format_duration(seconds: float) -> str:
    """Return a compact human form (``5m``, ``1h30m``, ``42s``) for tables and timelines."""
    remaining = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    if remaining or not parts:
        parts.append(f"{remaining}s")
    sign = "-" if seconds < 0 else ""
    return sign + "".join(parts)
