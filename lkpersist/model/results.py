"""What store operations answer: a connect's verdict, listing pages, purge counts, unreadable records."""

from __future__ import annotations

from dataclasses import dataclass

from lkpersist.model.session import Session


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """What ``store.connect`` tells the caller: the session after the connect, and whether it is a return.

    ``was_connected`` says another connection (a repeated event, a second agent) already held the
    session live when this connect arrived.
    """

    session: Session
    returning: bool
    was_connected: bool = False


@dataclass(frozen=True, slots=True)
class CorruptRecord:
    """A record that ``list`` could not decode; listing goes on past it and reports it."""

    identity: str
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_cursor`` is opaque and None on the last page."""

    items: list[Session | CorruptRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many sessions a purge removed (or would remove, on a dry run)."""

    purged: int
    dry_run: bool = False
