"""Analytics written by the store operations: one suite over every backend (memory, SQLite, Redis, Cluster, Sentinel)."""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.analytics import DAY, day_of
from lkpersist.model.session import Turn
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore


def _turn(item_id: str | None, at: float) -> Turn:
    return Turn(role="user", text="hello", timestamp=at, item_id=item_id)


async def test_a_day_counts_connections_returns_new_sessions_turns_and_distinct_identities(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("alice")
    await store.disconnect("alice")
    clock.advance(20)
    await store.connect("alice")  # a return
    await store.connect("bob")
    assert await store.append_turn("alice", _turn("a1", clock.now())) is True
    assert await store.append_turn("alice", _turn("a1", clock.now())) is False  # a duplicate is not counted
    assert await store.append_turn("bob", _turn(None, clock.now())) is True
    today = (await store.daily_stats(1)).days[0]
    assert today.to_dict() == {
        "date": day_of(clock.now()), "active_identities": 2, "connections": 3, "returns": 1, "new_sessions": 2,
        "turns": 2,
    }


async def test_days_are_oldest_first_with_today_last_and_totals_count_each_identity_once(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("alice")
    await store.connect("bob")
    clock.advance(DAY)
    await store.connect("alice")
    stats = await store.daily_stats(3)
    assert [day.date for day in stats.days] == [day_of(clock.now() - 2 * DAY), day_of(clock.now() - DAY), day_of(clock.now())]
    assert [day.active_identities for day in stats.days] == [0, 2, 1]
    assert [day.connections for day in stats.days] == [0, 2, 1]
    # a day later alice's session had expired: her connect started a new one
    assert stats.totals == {"active_identities": 2, "connections": 3, "returns": 0, "new_sessions": 3, "turns": 0}
    assert stats.to_dict()["days"][-1]["date"] == day_of(clock.now())


async def test_session_counters_follow_one_session_and_start_again_with_a_new_one(
    store_url: str, clock: VirtualClock
) -> None:
    store = open_store(store_url, clock=clock, ttl_policy=TTLPolicy(first=60, returning=60, frequent=60))
    try:
        assert await store.session_counters("alice") is None
        await store.connect("alice")
        await store.append_turn("alice", _turn("t1", clock.now()))
        await store.disconnect("alice")
        clock.advance(10)
        await store.connect("alice")
        await store.append_turn("alice", _turn("t2", clock.now()))
        counters = await store.session_counters("alice")
        assert counters is not None
        assert (counters.connections, counters.returns, counters.turns) == (2, 1, 2)
        await store.disconnect("alice")
        clock.advance(120)  # expired: the next connect starts a new session
        await store.connect("alice")
        fresh = await store.session_counters("alice")
        assert fresh is not None and (fresh.connections, fresh.returns, fresh.turns) == (1, 0, 0)
        assert fresh.joined_at == pytest.approx(clock.now())
        assert (await store.daily_stats(1)).days[0].new_sessions == 2
    finally:
        await store.close()


async def test_hostile_identities_are_counted_apart(store: SessionStore) -> None:
    identities = ["a{b}c", "{a}", "x\ny", "*", "Zoë 🎧 日本語", "k" * 5000]
    for identity in identities:
        await store.connect(identity)
    assert (await store.daily_stats(1)).days[0].active_identities == len(identities)


async def test_days_out_of_range_are_refused(store: SessionStore) -> None:
    for days in (0, -1, 367):
        with pytest.raises(InvalidInputError):
            await store.daily_stats(days)


async def test_a_second_store_on_the_same_data_hashes_alike(shared_url: str, clock: VirtualClock) -> None:
    first, second = open_store(shared_url, clock=clock), open_store(shared_url, clock=clock)
    try:
        await first.connect("alice")
        await first.disconnect("alice")
        await second.connect("alice")  # a return, so a second visit (a connect joining a visit is not one)
        await second.connect("bob")
        assert (await first.daily_stats(1)).days[0].active_identities == 2
        counters = await second.session_counters("alice")
        assert counters is not None and counters.connections == 2
    finally:
        await first.close()
        await second.close()
