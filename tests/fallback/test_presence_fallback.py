"""Presence through a FallbackStore: arrive/leave/beat pass through to a healthy primary (the presence
contract once more, behind the fallback), and are served from memory, journaled and merged back when
the primary is down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.presence import DeviceSeen
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from tests.fallback.conftest import KillableRedis
from tests.stores.test_presence_contract import *  # the presence contract, with the fixture below


@pytest.fixture
async def store(store_url: str, clock: VirtualClock) -> AsyncIterator[FallbackStore]:
    opened = FallbackStore(open_store(store_url, clock=clock))
    try:
        yield opened
    finally:
        await opened.close()


async def test_presence_is_served_from_memory_in_an_outage_and_merged_back(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    store = FallbackStore(open_store(killable_redis.url, clock=clock), retry_interval=3600.0, operation_timeout=0.5)
    try:
        killable_redis.kill()
        first = await store.arrive("zed", "agent:job:1", device=DeviceSeen.bounded("phone", "Safari"))
        assert store.degraded and (first.visit, first.greet) == (1, True)
        assert await store.beat("zed", "agent:job:1") is True
        assert await store.beat("zed", "agent:job:9") is False  # never arrived: not live
        left = await store.leave("zed", "agent:job:1")
        assert left is not None and left.connected is False
        clock.advance(10)
        back = await store.arrive("zed", "agent:job:2")
        assert (back.returning, back.visit, back.greet) == (True, 2, True)
        killable_redis.start()
        assert await store.retry_now() is True
        assert not store.degraded
        session = await store.require("zed")  # from the primary again
        assert session.reconnect_count == 1 and session.connected is True
        assert await store.claim_greeting("zed") is False  # the return was greeted during the outage
    finally:
        await store.close()
