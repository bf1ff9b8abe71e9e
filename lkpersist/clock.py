"""Injectable clocks.

Expiry in lkpersist is logical: a read compares a record's deadline with ``clock.now()``. Injecting the
clock lets tests and ``lkpersist simulate`` jump minutes ahead instantly instead of sleeping, and keeps
every backend's notion of "now" identical within one process.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Source of the current time as UTC epoch seconds."""

    def now(self) -> float:
        """Return the current UTC time in epoch seconds."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """A clock that only moves when told to; used by tests and the reconnect simulation."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward; moving backwards is refused because expiry assumes monotonic time."""
        if seconds < 0:
            raise ValueError("a virtual clock cannot go backwards")
        self._now += seconds


def to_ms(seconds: float) -> int:
    """Storage keeps integer milliseconds: exact in Lua, SQL and JSON alike."""
    return round(seconds * 1000)


def from_ms(ms: int) -> float:
    return ms / 1000.0
