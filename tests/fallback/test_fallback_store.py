"""FallbackStore against a real Redis that is killed, paused and started again mid-test."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from tests.fallback.conftest import KillableRedis

MANUAL = 3600.0  # a retry interval that never fires within a test: reconciliation runs on retry_now()


def _turn(item: str, at: float) -> Turn:
    return Turn(role="user", text=f"said {item}", timestamp=at, item_id=item)


def _fallback(server: KillableRedis, clock: VirtualClock, **options: float) -> FallbackStore:
    options.setdefault("retry_interval", MANUAL)
    options.setdefault("operation_timeout", 0.5)
    return FallbackStore(open_store(server.url, clock=clock), **options)  # type: ignore[arg-type]


def _retry_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "lkpersist-fallback-retry" and not t.done()]


async def test_an_outage_degrades_logs_counts_and_recovers_by_itself(
    killable_redis: KillableRedis, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = _fallback(killable_redis, clock, retry_interval=0.05)
    try:
        await store.connect("ann")
        await store.disconnect("ann")
        assert not store.degraded and store.outages == 0
        killable_redis.kill()
        with caplog.at_level(logging.WARNING, logger="lkpersist.fallback"):
            assert (await store.connect("ann")).returning is True  # served from memory, seeded with ann
            await store.append_turn("ann", _turn("a1", clock.now()))
        assert store.degraded
        assert (store.outages, store.fallback_operations) == (1, 2)
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "serving sessions from memory" in caplog.records[0].getMessage()
        await asyncio.sleep(0.2)
        assert store.degraded and len(_retry_tasks()) == 1  # still down: one task keeps trying
        killable_redis.start()
        for _ in range(100):
            if not store.degraded:
                break
            await asyncio.sleep(0.05)
        assert not store.degraded and _retry_tasks() == []
        assert store.stats()["reconciled"] == 1 and store.stats()["pending_identities"] == 0
        assert "is back" in caplog.records[-1].getMessage()
        session = await store.require("ann")  # from Redis again
        assert session.reconnect_count == 1
        assert [t.item_id for t in await store.recent_turns("ann")] == ["a1"]
    finally:
        await store.close()


async def test_both_sides_are_kept_when_another_writer_wrote_before_the_merge(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    store = _fallback(killable_redis, clock)
    other = open_store(killable_redis.url, clock=clock)  # a second agent with its own connection
    try:
        t0 = clock.now()
        await store.connect("x")
        await store.append_turn("x", _turn("x1", t0 + 1))
        killable_redis.kill()
        await store.append_turn("x", _turn("x2", t0 + 2))
        await store.disconnect("x")
        clock.advance(10)
        assert (await store.connect("x")).session.reconnect_count == 1  # locally
        await store.connect("y")  # a participant first seen during the outage
        await store.append_turn("y", _turn("y-offline", t0 + 4))
        assert store.degraded
        killable_redis.start()
        # the other agent reaches Redis first and writes the same identities
        await other.connect("x")
        await other.append_turn("x", _turn("x3", t0 + 3))
        await other.append_turn("x", _turn("x2", t0 + 2))  # the same item, recorded by both sides
        await other.connect("y")
        await other.append_turn("y", _turn("y-other", t0 + 5))
        assert await store.retry_now() is True
        x, y = await other.require("x"), await other.require("y")
        # other's connect joins the visit Redis still holds (the same connection "-", 10 s since its beat);
        # the return the outage made is the one more visit
        assert x.reconnect_count == 1
        assert [t.item_id for t in await other.recent_turns("x")] == ["x1", "x2", "x3"]
        assert y.reconnect_count == 1 and y.connected
        assert [t.item_id for t in await other.recent_turns("y")] == ["y-offline", "y-other"]
    finally:
        await other.close()
        await store.close()


async def test_a_hung_server_is_cut_off_by_the_operation_timeout(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    store = _fallback(killable_redis, clock, operation_timeout=0.2)
    try:
        await store.connect("hung")
        killable_redis.pause()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await store.heartbeat("hung") is True
        assert loop.time() - started < 0.6
        assert store.degraded
        assert await store.retry_now() is False  # still hung: stays degraded, journal kept
        killable_redis.resume()
        assert await store.retry_now() is True
    finally:
        killable_redis.resume()
        await store.close()


async def test_close_stops_the_retry_task_and_makes_one_last_attempt(
    killable_redis: KillableRedis, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = _fallback(killable_redis, clock, retry_interval=0.05)
    killable_redis.kill()
    for round_ in range(3):  # repeated failures never start a second task
        await store.connect(f"p{round_}")
        assert len(_retry_tasks()) == 1
    with caplog.at_level(logging.WARNING, logger="lkpersist.fallback"):
        await store.close()
    assert _retry_tasks() == []
    assert "offline changes of 3 identities are lost" in caplog.records[-1].getMessage()


async def test_close_merges_what_is_pending_when_the_server_is_back(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    store = _fallback(killable_redis, clock)
    killable_redis.kill()
    await store.connect("late")
    killable_redis.start()
    await store.close()  # the background task would only have tried in an hour
    check = open_store(killable_redis.url, clock=clock)
    try:
        assert (await check.require("late")).connected
    finally:
        await check.close()


async def test_the_journal_is_bounded_and_drops_the_least_recently_active(
    killable_redis: KillableRedis, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = _fallback(killable_redis, clock, journal_limit=3)
    try:
        killable_redis.kill()
        with caplog.at_level(logging.WARNING, logger="lkpersist.fallback"):
            for name in ("a", "b", "c", "d", "e"):
                await store.connect(name)
            await store.heartbeat("c")  # c is active again: d is now the oldest... then e, c
        assert store.journal_dropped == 2
        assert sum("journal full" in r.getMessage() for r in caplog.records) == 1  # counted, logged once
        killable_redis.start()
        assert await store.retry_now() is True
        present = {name for name in "abcde" if await store.get(name) is not None}
        assert present == {"c", "d", "e"}
    finally:
        await store.close()
