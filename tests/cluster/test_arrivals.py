"""Arrivals made at once on Cluster and Sentinel: on a Cluster (keys in many slots) they go out as one
pipeline routed per slot, elsewhere as one call running each in turn; either way each caller gets its own."""

from __future__ import annotations

import asyncio

from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore


async def test_arrivals_made_at_once_each_get_their_own_visit(ha_url: str) -> None:
    store = open_store(ha_url)
    assert isinstance(store, RedisStore)
    names = [f"crowd-{index}" for index in range(40)]  # buckets, so slots, all over the cluster
    try:
        await store.ensure_ready()
        assert (store._presence._arrivals._many is None) == ha_url.startswith("redis+cluster")
        first = await asyncio.gather(*(store.arrive(name, "agent:1") for name in names))
        assert [(a.session.identity, a.new_visit, a.visit) for a in first] == [(name, True, 1) for name in names]
        await asyncio.gather(*(store.leave(name, "agent:1") for name in names))
        again = await asyncio.gather(*(store.arrive(name, "agent:2") for name in names))
        assert [(a.session.identity, a.returning, a.visit) for a in again] == [(name, True, 2) for name in names]
    finally:
        await asyncio.gather(*(store.delete(name) for name in names))
        await store.close()
