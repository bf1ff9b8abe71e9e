"""The lock contract, one suite over every backend (semantics in lkpersist.stores.locks).

The seed's lock was SET NX, then a plain DEL: a holder that overran its ttl deleted the lock its
successor held. Here a release only ever removes its own acquisition (a token), and that is tested
exactly as it went wrong. Lock expiry follows the store's (virtual) clock; ``wait`` is real time.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError, LockHeldError
from lkpersist.stores.base import PURGE_LOCK, SessionStore


async def test_a_held_lock_excludes_others_until_released(store: SessionStore) -> None:
    first = await store.acquire_lock("job", 30)
    assert first is not None
    assert await store.acquire_lock("job", 30) is None
    assert await store.acquire_lock("other-job", 30) is not None  # names are independent
    assert await store.release_lock("job", first) is True
    second = await store.acquire_lock("job", 30)
    assert second is not None and second != first


async def test_a_holder_that_overran_its_ttl_cannot_release_its_successors_lock(
    store: SessionStore, clock: VirtualClock
) -> None:
    holder_a = await store.acquire_lock("purge", 30)
    assert holder_a is not None
    clock.advance(31)  # A overruns its ttl: the lock is free to take over
    holder_b = await store.acquire_lock("purge", 30)
    assert holder_b is not None
    assert await store.release_lock("purge", holder_a) is False  # the seed's DEL would have removed B's lock
    assert await store.extend_lock("purge", holder_a, 30) is False
    assert await store.acquire_lock("purge", 30) is None  # B still holds it: a third acquirer fails
    assert await store.release_lock("purge", holder_b) is True
    assert await store.acquire_lock("purge", 30) is not None


async def test_the_context_manager_form_of_the_same_overrun(store: SessionStore, clock: VirtualClock) -> None:
    lock_a = store.lock("purge", 30)
    await lock_a.__aenter__()
    clock.advance(31)
    async with store.lock("purge", 30) as lock_b:
        await lock_a.__aexit__(None, None, None)  # A finishes late, while B works
        assert lock_a.held is False
        with pytest.raises(LockHeldError, match="purge"):
            async with store.lock("purge", 30):
                pass
        assert await lock_b.extend() is True
    async with store.lock("purge", 30):  # B's exit released it
        pass


async def test_extend_keeps_the_lock_only_while_it_is_held(store: SessionStore, clock: VirtualClock) -> None:
    token = await store.acquire_lock("job", 30)
    assert token is not None
    clock.advance(20)
    assert await store.extend_lock("job", token, 30) is True
    assert await store.extend_lock("job", "not-the-token", 30) is False
    clock.advance(20)  # 40 s after acquiring, 20 s after extending
    assert await store.acquire_lock("job", 30) is None
    clock.advance(10)  # the extended ttl ran out
    assert await store.extend_lock("job", token, 30) is False  # an expired lock is nobody's
    assert await store.acquire_lock("job", 30) is not None


async def test_release_on_error_and_twice(store: SessionStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.lock("job", 30):
            raise RuntimeError("the work failed")
    lock = store.lock("job", 30)
    async with lock:
        pass
    assert await lock.release() is False  # already released
    assert await store.acquire_lock("job", 30) is not None


async def test_wait_gives_up_after_the_timeout(store: SessionStore) -> None:
    assert await store.acquire_lock("job", 30) is not None
    started = time.monotonic()
    with pytest.raises(LockHeldError):
        async with store.lock("job", 30, wait=0.3):
            pass
    assert 0.3 <= time.monotonic() - started < 3


async def test_wait_takes_the_lock_when_the_holder_releases(store: SessionStore) -> None:
    token = await store.acquire_lock("job", 30)
    assert token is not None

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await store.release_lock("job", token)

    releaser = asyncio.create_task(release_soon())
    async with store.lock("job", 30, wait=5) as lock:
        assert lock.held
    await releaser


async def test_refresh_extends_in_the_background(store: SessionStore, clock: VirtualClock) -> None:
    async with store.lock("job", 0.3, refresh=True):
        for _ in range(4):  # 0.8 s of store time in all, far past the 0.3 s ttl
            await asyncio.sleep(0.15)  # a refresh (every 0.1 s) happens in between
            clock.advance(0.2)
            assert await store.acquire_lock("job", 30) is None


async def test_a_refreshing_lock_is_released_between_two_extends(
    store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Release lets an extend in flight finish (a command cancelled half-way can wedge a pooled Cluster
    connection) and stops the refresher without a "lost" warning; the lock is free at once."""
    with caplog.at_level("WARNING", logger="lkpersist"):
        for _ in range(3):
            async with store.lock("job", 0.3, refresh=True):
                await asyncio.sleep(0.12)  # a refresh is due (every 0.1 s) around now
            token = await store.acquire_lock("job", 30)
            assert token is not None
            assert await store.release_lock("job", token)
    assert not [r for r in caplog.records if "lost" in r.getMessage() or "expired" in r.getMessage()]


async def test_hostile_names_are_exact_and_bad_arguments_are_refused(store: SessionStore) -> None:
    assert await store.acquire_lock("purge*", 30) is not None
    assert await store.acquire_lock("purge", 30) is not None
    assert await store.acquire_lock("{a}:b c\n", 30) is not None
    for name, ttl in (("", 30.0), ("x" * 201, 30.0), ("job", 0.0), ("job", -1.0)):
        with pytest.raises(InvalidInputError):
            await store.acquire_lock(name, ttl)
    with pytest.raises(InvalidInputError):
        store.lock("job", 30, wait=-1)


async def test_a_library_purge_takes_the_purge_lock(store: SessionStore, clock: VirtualClock) -> None:
    """``store.purge(lock=True)`` is what ``sessions purge`` runs: a library user's cron gets the same lock."""
    await store.connect("gone")
    await store.disconnect("gone")
    clock.advance(301)
    async with store.lock(PURGE_LOCK, 60):
        with pytest.raises(LockHeldError):
            await store.purge(lock=True)
        assert (await store.purge(lock=True, dry_run=True)).purged == 1  # a dry run takes no lock
    assert (await store.purge(lock=True)).purged == 1
    assert await store.acquire_lock(PURGE_LOCK, 60) is not None  # released after the purge
