"""Helpers for the events tests: read a stream with a deadline, so a missing event fails instead of hanging."""

from __future__ import annotations

import asyncio

from lkpersist.model.events import SessionEvent
from lkpersist.stores.events import EventStream

WAIT = 10.0


async def take(stream: EventStream, count: int, timeout: float = WAIT, since: float | None = None) -> list[SessionEvent]:
    """The next ``count`` events of ``stream``; fails the test when they do not all arrive in time.

    ``since`` skips events stamped earlier: on Redis Cluster an event published on another master just
    before the subscription may still arrive after it (the cluster bus forwards it a moment later).
    """
    events: list[SessionEvent] = []
    async with asyncio.timeout(timeout):
        while len(events) < count:
            event = await anext(stream)
            if since is None or event.time >= since:
                events.append(event)
    return events


def kinds(events: list[SessionEvent]) -> list[tuple[str, str, int | None]]:
    return [(event.kind, event.identity, event.reconnect_count) for event in events]


def by_identity(events: list[SessionEvent]) -> dict[str, list[tuple[str, str, int | None]]]:
    """Each identity's events in arrival order (the order every backend guarantees per identity)."""
    grouped: dict[str, list[tuple[str, str, int | None]]] = {}
    for event in events:
        grouped.setdefault(event.identity, []).append((event.kind, event.identity, event.reconnect_count))
    return grouped
