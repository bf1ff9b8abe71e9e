"""In-process fan-out of session events for ``memory://`` (and any store that lives in one process).

Publishing is synchronous and never blocks: each subscriber has its own bounded queue, and a subscriber
that falls more than ``MAX_BACKLOG`` events behind loses the oldest ones rather than growing memory.
"""

from __future__ import annotations

import asyncio
from collections import deque

from lkpersist.model.events import SessionEvent

MAX_BACKLOG = 10_000


class EventHub:
    """The subscribers of one store; ``publish`` hands each of them every event."""

    def __init__(self) -> None:
        self._subscribers: set[_HubSource] = set()

    def publish(self, events: list[SessionEvent]) -> None:
        for subscriber in self._subscribers:
            subscriber.push(events)

    def source(self) -> _HubSource:
        """A new, not yet subscribed, event source for an EventStream."""
        return _HubSource(self)

    def _add(self, source: _HubSource) -> None:
        self._subscribers.add(source)

    def _remove(self, source: _HubSource) -> None:
        self._subscribers.discard(source)


class _HubSource:
    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._backlog: deque[SessionEvent] = deque(maxlen=MAX_BACKLOG)
        self._arrived = asyncio.Event()

    def push(self, events: list[SessionEvent]) -> None:
        self._backlog.extend(events)
        self._arrived.set()

    async def open(self) -> None:
        self._hub._add(self)

    async def next_batch(self) -> list[SessionEvent]:
        await self._arrived.wait()
        self._arrived.clear()
        batch = list(self._backlog)
        self._backlog.clear()
        return batch

    async def close(self) -> None:
        self._hub._remove(self)
