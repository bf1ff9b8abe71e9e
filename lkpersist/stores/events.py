"""The stream a subscriber reads session events from, over whichever backend publishes them.

Every store operation that changes a session's life publishes an event from inside the operation
itself (the Redis Lua script, the SQLite transaction, the memory store's lock), so the agent, the CLI
and any other process produce them alike, and an event is published exactly when its change is made.
Which operation publishes what is the rule in :mod:`lkpersist.model.events`. Each backend supplies an
:class:`EventSource` (its ``events.py``); :class:`EventStream` is the one consumer of all of them.

Delivery is live only, as with Redis pub/sub: a subscriber sees the events published after it
subscribed (after ``async with store.events() as stream`` is entered), in the order they were published.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

from lkpersist.model.events import SessionEvent
from lkpersist.model.session import validate_identity


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


__all__ = ["EventSource", "EventStream"]
