"""What store operations answer: an arrival's verdict, listing pages, purge counts, unreadable records."""

from __future__ import annotations

from dataclasses import dataclass, field

from lkpersist.model.session import Session, Turn


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
class Arrival:
    """What ``store.arrive`` tells the caller, decided in one atomic step (see :mod:`lkpersist.model.presence`).

    ``returning``: this arrival opened visit 2 or later of an existing session; ``new_visit``: it opened
    the visit (nobody was live); ``visit`` = reconnect_count + 1; ``greet``: this caller holds the visit's
    greeting (exactly one arrival per visit gets it); ``switched``: it continued a visit after a device
    switch; ``turns``: the newest ``restore_turns`` turns, read in the same step, only when greeting a return.
    """

    session: Session
    returning: bool
    new_visit: bool
    visit: int
    greet: bool
    switched: bool = False
    turns: list[Turn] = field(default_factory=list)

    @property
    def is_new_session(self) -> bool:
        """Only a new session's arrival opens a first visit."""
        return self.new_visit and not self.returning

    def as_connect(self) -> ConnectResult:
        """The single-connection verdict: a return when this is visit 2 or later, and who held it live."""
        return ConnectResult(self.session, returning=self.visit > 1, was_connected=not self.new_visit)


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


@dataclass(frozen=True, slots=True)
class Census:
    """A store's numbers from its counts and indexes, in one pass and without loading sessions.

    ``stale``: sessions expired more than ``stale_after`` seconds ago and still stored (a purge is
    overdue). ``connected``: sessions whose participant is present (an agent refreshed them within the
    presence timeout). Where a backend can only estimate a number, its ``*_exact`` flag is False and
    the backend's docstring says how it estimates.
    """

    active: int
    expired: int
    stale: int
    connected: int
    turns: int
    connected_exact: bool = True
    turns_exact: bool = True


@dataclass(frozen=True, slots=True)
class StorageInfo:
    """What a store says about itself, for ``lkpersist doctor``.

    ``layout_version``: the version of the stored layout where the store records one (a SQLite file),
    ``supported_layout`` the newest this lkpersist reads; ``server_time``: the server's own clock in epoch
    seconds (Redis ``TIME``), None where the store has no clock of its own.
    """

    backend: str
    layout_version: int | None = None
    supported_layout: int | None = None
    server_version: str | None = None
    server_time: float | None = None
