"""An outage merged back is counted in the analytics (``apply_offline`` tallies in its atomic step), on
every backend: the visits and turns a FallbackStore served from memory appear in ``daily_stats`` and the
session's counters as the online operations would have counted them, on the day the outage began."""

from __future__ import annotations

from lkpersist.clock import VirtualClock
from lkpersist.model.analytics import DAY, day_of
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.fallback import FallbackStore
from tests.fallback.conftest import KillableRedis


def _turn(item: str, at: float) -> Turn:
    return Turn(role="user", text=f"text of {item}", timestamp=at, item_id=item)


async def _today(store: SessionStore) -> dict[str, int]:
    stats = await store.daily_stats(1)
    return stats.days[-1].to_dict()


async def test_a_session_created_offline_counts_as_a_new_session_and_its_returns(
    store: SessionStore, clock: VirtualClock
) -> None:
    t0 = clock.now()
    delta = OfflineDelta("ann", first_at=t0, connects=3, disconnects=2, created=True, presence_at=t0 + 20,
                         connected=True, turns=[_turn("a1", t0 + 1), _turn("a2", t0 + 2)])
    clock.advance(30)
    await store.apply_offline(delta)
    today = await _today(store)
    assert {k: today[k] for k in ("active_identities", "connections", "returns", "new_sessions", "turns")} == {
        "active_identities": 1, "connections": 3, "returns": 2, "new_sessions": 1, "turns": 2}
    counters = await store.session_counters("ann")
    assert counters is not None and (counters.connections, counters.returns, counters.turns) == (3, 2, 2)
    assert counters.joined_at == (await store.require("ann")).joined_at


async def test_visits_merged_into_a_stored_session_add_returns_to_its_counters(
    store: SessionStore, clock: VirtualClock
) -> None:
    t0 = clock.now()
    await store.connect("bo")
    await store.append_turn("bo", _turn("b1", t0 + 1))
    clock.advance(10)
    delta = OfflineDelta("bo", first_at=t0 + 2, connects=2, disconnects=2, presence_at=t0 + 9, connected=False,
                         turns=[_turn("b2", t0 + 2), _turn("b3", t0 + 3)])
    await store.apply_offline(delta)
    today = await _today(store)
    assert (today["active_identities"], today["connections"], today["returns"], today["new_sessions"],
            today["turns"]) == (1, 3, 2, 1, 3)
    counters = await store.session_counters("bo")
    assert counters is not None and (counters.connections, counters.returns, counters.turns) == (3, 2, 3)
    assert (await store.require("bo")).reconnect_count == 2  # the analytics agree with the session


async def test_a_session_replaced_offline_starts_its_counters_again(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("cy")
    await store.disconnect("cy")
    clock.advance(2 * DAY)  # long expired: the offline copy started a new session
    t1 = clock.now()
    delta = OfflineDelta("cy", first_at=t1, connects=1, created=True, presence_at=t1, connected=True)
    await store.apply_offline(delta)
    counters = await store.session_counters("cy")
    assert counters is not None and (counters.connections, counters.returns, counters.turns) == (1, 0, 0)
    assert (await _today(store))["new_sessions"] == 1


async def test_the_outage_is_counted_on_the_day_it_began(store: SessionStore, clock: VirtualClock) -> None:
    t0 = clock.now()
    delta = OfflineDelta("dee", first_at=t0, connects=1, created=True, presence_at=t0, connected=True)
    clock.advance(DAY)
    await store.apply_offline(delta)
    stats = await store.daily_stats(2)
    assert [day.date for day in stats.days] == [day_of(t0), day_of(t0 + DAY)]
    assert [(day.connections, day.new_sessions) for day in stats.days] == [(1, 1), (0, 0)]


async def test_nothing_is_counted_for_a_delta_without_visits_or_turns(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("eve")
    before = await _today(store)
    delta = OfflineDelta("eve", first_at=clock.now(), presence_at=clock.now() + 1, connected=True, language="fr")
    await store.apply_offline(delta)
    assert await _today(store) == before
    clock.advance(5)
    await store.apply_offline(OfflineDelta("eve", first_at=clock.now(), connects=1, deleted=True,
                                           presence_at=clock.now(), connected=True))
    after = await _today(store)  # deleted offline, then back: a new session
    assert (after["connections"], after["new_sessions"], after["returns"]) == (2, 2, 0)


async def test_a_real_outage_served_by_the_fallback_shows_in_the_stats(
    killable_redis: KillableRedis, clock: VirtualClock
) -> None:
    fallback = FallbackStore(open_store(killable_redis.url, clock=clock), retry_interval=3600.0, operation_timeout=0.5)
    try:
        await fallback.connect("zed")
        await fallback.disconnect("zed")
        killable_redis.kill()
        clock.advance(10)
        await fallback.connect("zed")  # a return, served from memory
        await fallback.append_turn("zed", _turn("z1", clock.now()))
        await fallback.disconnect("zed")
        clock.advance(10)
        await fallback.connect("zed")
        killable_redis.start()
        assert await fallback.retry_now() is True and not fallback.degraded
        today = await _today(fallback)
        assert (today["connections"], today["returns"], today["new_sessions"], today["turns"]) == (3, 2, 1, 1)
        counters = await fallback.session_counters("zed")
        assert counters is not None and (counters.connections, counters.returns, counters.turns) == (3, 2, 1)
    finally:
        await fallback.close()
