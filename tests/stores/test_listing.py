"""Listing where live and expired sessions interleave in last_seen order (every backend, virtual clock).

A session's TTL grows with its returns, so an old frequent returner is still live while a newer
first-timer has expired: the expired listing must skip the live ones wherever they sit, in last_seen
order, page after page, and the ``all`` listing must cross from one kind to the other without a gap.
The Redis listing jumps past the live entries using the deadline index, so these cases also cover
sessions written under another TTL policy and index entries whose keys Redis dropped.
"""

from __future__ import annotations

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session, Status
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.redis import RedisStore

# Twelve sessions last seen 100 s apart, oldest first, with 1, 2 or 4 visits (TTL 300, 600 or 1800 s),
# then "live", still connected; judged 50 s after that (ages 1250 s for s00 down to 150 s for s11).
EXPIRED = ["s09", "s06", "s04", "s03", "s01", "s00"]
ACTIVE = ["live", "s11", "s10", "s08", "s07", "s05", "s02"]
EVERY = ["live", "s11", "s10", "s09", "s08", "s07", "s06", "s05", "s04", "s03", "s02", "s01", "s00"]


async def _visits(store: SessionStore, identity: str, visits: int) -> None:
    for _ in range(visits):
        await store.connect(identity)
        await store.disconnect(identity)


async def _interleave(store: SessionStore, clock: VirtualClock) -> None:
    for index in range(12):
        await _visits(store, f"s{index:02d}", (1, 2, 4)[index % 3])
        clock.advance(100)
    await store.connect("live")
    clock.advance(50)


async def _paged(store: SessionStore, status: Status, limit: int) -> list[str]:
    """Every page of ``status`` in turn; each page holds ``limit`` sessions except the last."""
    names: list[str] = []
    cursor = None
    while True:
        page = await store.list_page(status, limit=limit, cursor=cursor)
        names += [item.identity for item in page.items if isinstance(item, Session)]
        if page.next_cursor is None:
            return names
        assert len(page.items) == limit
        cursor = page.next_cursor


async def test_each_status_lists_in_last_seen_order_however_they_interleave(
    store: SessionStore, clock: VirtualClock
) -> None:
    await _interleave(store, clock)
    for status, expected in (("expired", EXPIRED), ("active", ACTIVE), ("all", EVERY)):
        assert [s.identity async for s in store.iter_sessions(status) if isinstance(s, Session)] == expected
        assert await store.count(status) == len(expected)


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_expired_pages_resume_past_the_live_sessions_between_them(
    store: SessionStore, clock: VirtualClock, limit: int
) -> None:
    await _interleave(store, clock)
    assert await _paged(store, "expired", limit) == EXPIRED
    assert await _paged(store, "active", limit) == ACTIVE


@pytest.mark.parametrize("limit", [3, 5])
async def test_all_pages_cross_between_live_and_expired_without_gaps(
    store: SessionStore, clock: VirtualClock, limit: int
) -> None:
    await _interleave(store, clock)
    assert await _paged(store, "all", limit) == EVERY


async def test_a_cursor_stays_valid_while_time_moves_on(store: SessionStore, clock: VirtualClock) -> None:
    await _interleave(store, clock)
    first = await store.list_page("expired", limit=2)
    assert [s.identity for s in first.items if isinstance(s, Session)] == ["s09", "s06"]
    clock.advance(200)  # s07 (600 s TTL) is now 750 s old: expired, but it sits before the cursor
    rest = await store.list_page("expired", limit=10, cursor=first.next_cursor)
    assert [s.identity for s in rest.items if isinstance(s, Session)] == ["s04", "s03", "s01", "s00"]
    again = await _paged(store, "expired", 3)
    assert again == ["s09", "s07", "s06", "s04", "s03", "s01", "s00"]


async def test_a_session_written_under_a_shorter_ttl_is_listed_expired_first(
    shared_url: str, clock: VirtualClock
) -> None:
    """Another process with a 10 s policy wrote the newest session: nothing derived from this store's
    own policy (300 s at least) may decide it is live."""
    main = open_store(shared_url, clock=clock)
    brief = open_store(shared_url, clock=clock, ttl_policy=TTLPolicy(first=10, returning=10, frequent=10))
    try:
        await _interleave(main, clock)
        await _visits(brief, "brief", 1)
        clock.advance(20)
        assert await _paged(main, "expired", 2) == ["brief", *EXPIRED]
        assert await _paged(main, "all", 4) == ["brief", *EVERY]
    finally:
        await brief.close()
        await main.close()


async def test_redis_expired_listing_skips_entries_whose_keys_redis_dropped(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    client = redis.Redis.from_url(redis_url)
    try:
        await _interleave(store, clock)
        for identity in ("s09", "s03"):  # the newest expired one too: the jump still starts before s06
            _, keys = store.keys.keys_for(identity)
            client.unlink(*keys[:5])  # what the native TTL does to an abandoned session
        remaining = [name for name in EXPIRED if name not in ("s09", "s03")]
        for limit in (1, 2, 3):
            assert await _paged(store, "expired", limit) == remaining
        assert await store.count("expired") == len(EXPIRED)  # documented: counted until the next purge
    finally:
        client.close()
        await store.close()
