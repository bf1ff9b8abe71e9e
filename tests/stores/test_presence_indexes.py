"""Listing, counting and purging see presence per connection: a connected session never expires, and one
whose only agent died without a leave expires from that agent's last beat (the indexes learn it from the
deadline every write sets, last_seen + ttl, not from a leave that never comes)."""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session
from lkpersist.stores.base import SessionStore
from tests.stores.test_presence_contract import PRESENCE_BACKENDS


@pytest.fixture(params=PRESENCE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _listed(store: SessionStore, status: str) -> list[str]:
    return [s.identity async for s in store.iter_sessions(status) if isinstance(s, Session)]  # type: ignore[arg-type]


async def test_a_killed_agents_session_expires_from_its_last_beat_in_every_index(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.arrive("killed", "agent:job-1")
    await store.arrive("served", "agent:job-2")
    clock.advance(30)
    assert await store.beat("killed", "agent:job-1")  # its last beat: the worker is SIGKILLed after it
    last_beat = clock.now()
    for _ in range(20):  # ten minutes more; the other participant's agent keeps beating
        clock.advance(30)
        assert await store.beat("served", "agent:job-2")
        if clock.now() < last_beat + 300:
            assert await store.count("expired") == 0 and sorted(await _listed(store, "active")) == ["killed", "served"]
    assert clock.now() >= last_beat + 300
    assert await store.count("expired") == 1 and await store.count("active") == 1
    assert await _listed(store, "expired") == ["killed"] and await _listed(store, "active") == ["served"]
    assert (await store.purge()).purged == 1
    assert await store.count("all") == 1 and await store.get("killed") is None


async def test_a_second_connection_that_dies_does_not_shorten_the_visit(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.arrive("two", "alive")
    await store.arrive("two", "killed")
    for _ in range(120):  # an hour: "killed" never beats again, "alive" beats every 30 s
        clock.advance(30)
        assert await store.beat("two", "alive")
    assert await store.count("expired") == 0 and await _listed(store, "active") == ["two"]
    session = await store.require("two")
    assert [c.id for c in session.connections] == ["alive"] and session.expires_at is None
    assert (await store.purge()).purged == 0
