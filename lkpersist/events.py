"""Session events: what every store publishes, and the stream a subscriber reads them from.

Every store operation that changes a session's life publishes an event from inside the operation
itself (the Redis Lua script, the SQLite transaction, the memory store's lock), so the agent, the CLI
and any other process produce them alike, and an event is published exactly when its change is made.

The rule, the same on every backend:

- ``created``: a connect started a new session (reconnect_count 0).
- ``returned``: a connect continued a live session; ``reconnect_count`` is the visit count after it.
- ``disconnected``: the participant left and the expiry countdown started.
- ``expired``: a session whose TTL had run out was removed, either by a connect that replaces it (then
  ``expired`` for the old session comes right before ``created`` for the new one) or by a purge.
  Expiry is logical, so nothing is published at the very moment a deadline passes.
- ``purged``: a purge removed a session that had *not* expired (``--older-than``).
- ``deleted``: ``delete`` / ``sessions rm`` removed a session, live or expired.

So every session begins with ``created`` and ends with exactly one of ``expired``, ``purged`` or
``deleted`` (on Redis, one whose keys Redis itself dropped an hour past the deadline ends with an
``expired`` that carries no reconnect_count). Heartbeats, greetings, updates and turns publish nothing.
Events carry the identity, the kind, the store clock's time and the reconnect count: never
conversation text, metadata, context or language.

Delivery is live only, as with Redis pub/sub: a subscriber sees the events published after it
subscribed (after ``async with store.events() as stream`` is entered), in the order they were published.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

from lkpersist.models import ConnectResult, EventKind, Session, SessionEvent, validate_identity


class EventSource(Protocol):
    """A backend's feed of every event of its store, opened by one :class:`EventStream`."""

    async def open(self) -> None:
        """Subscribe; events published after this returns are delivered."""

    async def next_batch(self) -> list[SessionEvent]:
        """Wait for the next events (an empty list is allowed: the stream simply waits again)."""

    async def close(self) -> None:
        """Unsubscribe and release the connection or the polling position."""


class EventStream(AsyncIterator[SessionEvent]):
    """Live session events, optionally of one identity only (matched exactly, never as a pattern).

    Use it as ``async with store.events() as stream: async for event in stream: ...``: entering
    subscribes, leaving (or ``aclose()``) unsubscribes, and the iteration ends once it is closed.
    Iterating without ``async with`` subscribes on the first ``__anext__``.
    """

    def __init__(self, source: EventSource, identity: str | None = None) -> None:
        self._source = source
        self._identity = None if identity is None else validate_identity(identity)
        self._buffer: deque[SessionEvent] = deque()
        self._state = "new"

    async def start(self) -> None:
        """Subscribe now (idempotent), so that nothing published from here on is missed."""
        if self._state == "new":
            await self._source.open()
            self._state = "open"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionEvent:
        await self.start()
        while not self._buffer:
            if self._state == "closed":
                raise StopAsyncIteration
            batch = await self._source.next_batch()
            self._buffer.extend(event for event in batch if self._wanted(event))
        return self._buffer.popleft()

    def _wanted(self, event: SessionEvent) -> bool:
        return self._identity is None or event.identity == self._identity

    async def aclose(self) -> None:
        """Unsubscribe; closing twice, or before subscribing, is fine."""
        state, self._state = self._state, "closed"
        if state == "open":
            await self._source.close()


def connect_events(result: ConnectResult, now: float, replaced_count: int | None = None) -> list[SessionEvent]:
    """The events of one connect: ``returned``, or ``created`` (after ``expired`` when it replaced one).

    ``replaced_count`` is the reconnect_count of the expired session a new one replaced (None: there
    was none); it is ignored for a returning connect.
    """
    session = result.session
    if result.returning:
        return [SessionEvent("returned", session.identity, now, session.reconnect_count)]
    created = SessionEvent("created", session.identity, now, 0)
    if replaced_count is None:
        return [created]
    return [SessionEvent("expired", session.identity, now, replaced_count), created]


def removal_event(session: Session, now: float, *, deleted: bool = False) -> SessionEvent:
    """The last event of a removed session: ``deleted``, else ``expired`` or ``purged`` by its state."""
    kind: EventKind = "deleted" if deleted else ("expired" if session.is_expired(now) else "purged")
    return SessionEvent(kind, session.identity, now, session.reconnect_count)


__all__ = ["EventSource", "EventStream", "connect_events", "removal_event"]
