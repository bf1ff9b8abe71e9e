"""``compact_turns`` through a FallbackStore whose Redis goes away: nothing is compacted while degraded."""

from __future__ import annotations

from lkpersist.clock import VirtualClock
from lkpersist.model.session import SUMMARY_KEY, Turn
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from tests.fallback.conftest import KillableRedis


async def test_while_degraded_nothing_is_compacted_and_afterwards_it_is(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    store = FallbackStore(
        open_store(killable_redis.url, clock=clock), retry_interval=3600, operation_timeout=0.5
    )
    try:
        await store.connect("ann")
        for n in range(6):
            await store.append_turn("ann", Turn("user", f"line {n}", clock.now() + n, f"i{n}"))
        turns = await store.recent_turns("ann")
        killable_redis.kill()
        assert await store.compact_turns("ann", "summary", turns[:4]) is False  # the failure degrades it
        assert store.degraded
        assert await store.compact_turns("ann", "summary", turns[:4]) is False  # and degraded: refused
        killable_redis.start()
        assert await store.retry_now() is True
        assert len(await store.recent_turns("ann")) == 6  # nothing was dropped meanwhile
        assert await store.compact_turns("ann", "summary", turns[:4]) is True
        assert [t.item_id for t in await store.recent_turns("ann")] == ["i4", "i5"]
        assert (await store.require("ann")).context[SUMMARY_KEY] == "summary"
    finally:
        await store.close()
