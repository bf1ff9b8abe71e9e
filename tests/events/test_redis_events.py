"""Redis-only event details: the wire format on the channel, and sessions whose keys Redis dropped itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from tests.events.conftest import kinds, take


@pytest.fixture
async def redis_store(redis_url: str, redis_prefix: str, clock: VirtualClock) -> AsyncIterator[RedisStore]:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        yield store
    finally:
        await store.close()


async def test_the_channel_carries_small_json_without_personal_data(
    redis_store: RedisStore, redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    raw = aioredis.from_url(redis_url)
    pubsub = raw.pubsub()
    try:
        await pubsub.subscribe(f"{redis_prefix}:events")
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        await redis_store.connect("a{b}:*")
        await redis_store.update("a{b}:*", language="SECRET-lang", metadata={"k": "SECRET-meta"})
        await redis_store.append_turn("a{b}:*", Turn("user", "SECRET-text", clock.now()))
        await redis_store.disconnect("a{b}:*")
        payloads = [(await pubsub.get_message(ignore_subscribe_messages=True, timeout=5))["data"] for _ in range(2)]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await raw.aclose()
    assert all(b"SECRET" not in payload for payload in payloads)
    created = json.loads(payloads[0])
    assert created == {"kind": "created", "id": redis_store.keys.encode_identity("a{b}:*"), "t": int(clock.now() * 1000),
                       "r": 0}


async def test_a_session_whose_keys_redis_dropped_ends_with_expired_without_a_count(
    redis_store: RedisStore, redis_url: str, clock: VirtualClock
) -> None:
    for identity in ("dropped-then-back", "dropped-then-purged"):
        await redis_store.connect(identity)
        await redis_store.disconnect(identity)
    raw = aioredis.from_url(redis_url)
    try:  # what Redis' own key expiry does an hour past the deadline: the keys go, the index entries stay
        for identity in ("dropped-then-back", "dropped-then-purged"):
            await raw.delete(*redis_store.keys.keys_for(identity)[1][:5])
    finally:
        await raw.aclose()
    clock.advance(7200)
    async with redis_store.events() as stream:
        await redis_store.connect("dropped-then-back")
        assert (await redis_store.purge()).purged == 1
        events = await take(stream, 3)
    assert sorted(kinds(events)) == [
        ("created", "dropped-then-back", 0),
        ("expired", "dropped-then-back", None),
        ("expired", "dropped-then-purged", None),
    ]
