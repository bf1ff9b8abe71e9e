"""Presence through a FallbackStore: arrive/leave/beat pass through to a healthy primary (the presence
contract once more, behind the fallback), and are served from memory, journaled and merged back when
the primary is down."""

from __future__ import annotations

from lkpersist.clock import VirtualClock
from lkpersist.model.presence import DeviceSeen
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from tests.fallback.conftest import KillableRedis
from tests.fallback.test_contract_fallback import store  # noqa: F401 - the fallback around store_url
from tests.stores.test_presence_contract import *  # the presence contract, on the fallback's store


async def test_presence_is_served_from_memory_in_an_outage_and_merged_back(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    fallback = FallbackStore(open_store(killable_redis.url, clock=clock), retry_interval=3600.0, operation_timeout=0.5)
    try:
        killable_redis.kill()
        first = await fallback.arrive("zed", "agent:job:1", device=DeviceSeen.bounded("phone", "Safari"))
        assert fallback.degraded and (first.visit, first.greet) == (1, True)
        assert await fallback.beat("zed", "agent:job:1") is True
        assert await fallback.beat("zed", "agent:job:9") is False  # never arrived: not live
        left = await fallback.leave("zed", "agent:job:1")
        assert left is not None and left.connected is False
        clock.advance(10)
        back = await fallback.arrive("zed", "agent:job:2")
        assert (back.returning, back.visit, back.greet) == (True, 2, True)
        killable_redis.start()
        assert await fallback.retry_now() is True
        assert not fallback.degraded
        session = await fallback.require("zed")  # from the primary again
        assert session.reconnect_count == 1 and session.connected is True
        assert await fallback.claim_greeting("zed") is False  # the return was greeted during the outage
    finally:
        await fallback.close()
