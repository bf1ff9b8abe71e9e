"""Session events: what happened to a session, as every store publishes it.

The rule, the same on every backend:

- ``created``: an arrival started a new session (reconnect_count 0).
- ``returned``: an arrival opened a return visit; ``reconnect_count`` is the count after it. Arrivals that
  join a visit already going on (a second agent, a device switch) publish nothing.
- ``disconnected``: the last live connection left and the expiry countdown started (also at a device
  switch's leave; the visit may still go on if the other device arrives within the switch grace).
- ``expired``: a session whose TTL had run out was removed, either by a connect that replaces it (then
  ``expired`` for the old session comes right before ``created`` for the new one) or by a purge.
  Expiry is logical, so nothing is published at the very moment a deadline passes.
- ``purged``: a purge removed a session that had *not* expired (``--older-than``).
- ``deleted``: ``delete`` / ``sessions rm`` removed a session, live or expired.

So every session begins with ``created`` and ends with exactly one of ``expired``, ``purged`` or
``deleted`` (on Redis, one whose keys Redis itself dropped an hour past the deadline ends with an
``expired`` that carries no reconnect_count). Heartbeats, greetings, updates and turns publish nothing.
Events carry the identity, the kind, the store clock's time and the reconnect count: never
conversation text, metadata, context or language. How a subscriber reads them: :mod:`lkpersist.stores.events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lkpersist.model.results import Arrival
from lkpersist.model.session import Session

EventKind = Literal["created", "returned", "disconnected", "expired", "purged", "deleted"]
EVENT_KINDS: tuple[EventKind, ...] = ("created", "returned", "disconnected", "expired", "purged", "deleted")


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened to a session, as the store publishes it (see :mod:`lkpersist.model.events`).

    Deliberately small: no conversation text, metadata, context or language ever travels in an event.
    ``time`` is epoch seconds from the publishing store's clock; ``reconnect_count`` is the session's
    count at that moment (None when the store no longer knew it, e.g. Redis had already dropped the keys).
    """

    kind: EventKind
    identity: str
    time: float
    reconnect_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "identity": self.identity, "time": self.time, "reconnect_count": self.reconnect_count}


def arrival_events(arrival: Arrival, now: float, replaced_count: int | None = None) -> list[SessionEvent]:
    """The events of one arrival: ``returned`` when it opened a return visit, ``created`` (after
    ``expired`` when it replaced one) for a new session, nothing when it joined a visit already going on
    (a second agent, a repeated event, a device switch).

    ``replaced_count`` is the reconnect_count of the expired session a new one replaced (None: there
    was none); it is ignored otherwise.
    """
    session = arrival.session
    if not arrival.new_visit:
        return []
    if arrival.returning:
        return [SessionEvent("returned", session.identity, now, session.reconnect_count)]
    created = SessionEvent("created", session.identity, now, 0)
    if replaced_count is None:
        return [created]
    return [SessionEvent("expired", session.identity, now, replaced_count), created]


def leave_events(before: Session, after: Session, now: float) -> list[SessionEvent]:
    """``disconnected`` when this leave took the last live connection (a device switch included: the
    countdown started); nothing while another connection still serves the participant."""
    if before.connected and not after.connected:
        return [SessionEvent("disconnected", after.identity, now, after.reconnect_count)]
    return []


def removal_event(session: Session, now: float, *, deleted: bool = False) -> SessionEvent:
    """The last event of a removed session: ``deleted``, else ``expired`` or ``purged`` by its state."""
    kind: EventKind = "deleted" if deleted else ("expired" if session.is_expired(now) else "purged")
    return SessionEvent(kind, session.identity, now, session.reconnect_count)
