"""Fixtures of the Redis-only store tests (test_redis.py, test_redis_turns.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def rstore(redis_url: str, redis_prefix: str, clock: VirtualClock) -> AsyncIterator[RedisStore]:
    """A store of this test's own prefix on the test Redis, on the virtual clock."""
    store = open_store(f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    yield store
    await store.close()
