"""The session-events contract, one suite over memory, SQLite and Redis (see lkpersist.events for the rule).

Where a test must show that nothing else was published, it ends with a *marker* event of the same
identity: one identity's events arrive in publication order on every backend (on Redis Cluster, events of
different identities may interleave differently, since each master publishes its own), so the marker
coming next proves it without sleeping.
"""

from __future__ import annotations

import json

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.events import SessionEvent
from lkpersist.model.session import Turn
from lkpersist.stores.base import SessionStore
from tests.events.conftest import by_identity, kinds, take


async def test_the_life_of_a_session(store: SessionStore, clock: VirtualClock) -> None:
    async with store.events() as stream:
        await store.connect("alice")
        clock.advance(10)
        await store.disconnect("alice")
        clock.advance(10)
        await store.connect("alice")
        await store.heartbeat("alice")  # heartbeats, greetings, updates and turns publish nothing
        await store.claim_greeting("alice")
        await store.update("alice", metadata={"plan": "pro"})
        await store.append_turn("alice", Turn("user", "hi", clock.now()))
        await store.delete("alice")
        await store.connect("alice")  # the marker
        events = await take(stream, 5)
    assert kinds(events) == [
        ("created", "alice", 0),
        ("disconnected", "alice", 0),
        ("returned", "alice", 1),
        ("deleted", "alice", 1),
        ("created", "alice", 0),
    ]
    assert [event.time for event in events] == pytest.approx([clock.now() - 20, clock.now() - 10] + [clock.now()] * 3)


async def test_a_connect_that_replaces_an_expired_session_says_expired_then_created(
    store: SessionStore, clock: VirtualClock
) -> None:
    for _ in range(2):
        await store.connect("bob")
        await store.disconnect("bob")
    clock.advance(601)  # past the returning ttl
    async with store.events() as stream:
        result = await store.connect("bob")
        events = await take(stream, 2, since=clock.now())
    assert result.returning is False
    assert kinds(events) == [("expired", "bob", 1), ("created", "bob", 0)]
    assert [event.time for event in events] == pytest.approx([clock.now()] * 2)


async def test_purge_says_expired_or_purged_and_a_dry_run_says_nothing(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("gone")
    await store.disconnect("gone")
    await store.connect("old")
    for _ in range(5):
        clock.advance(50)
        assert await store.heartbeat("old")
    clock.advance(100)  # "gone" expired 50 s ago; "old" is live, last seen 100 s ago
    async with store.events() as stream:
        assert (await store.purge(older_than=60, dry_run=True)).purged == 2
        assert (await store.purge(older_than=60)).purged == 2
        await store.connect("gone")  # the markers
        await store.connect("old")
        events = await take(stream, 4, since=clock.now())
    assert by_identity(events) == {
        "gone": [("expired", "gone", 0), ("created", "gone", 0)],
        "old": [("purged", "old", 0), ("created", "old", 0)],
    }


async def test_rm_of_nothing_and_disconnect_of_nothing_publish_nothing(store: SessionStore) -> None:
    async with store.events() as stream:
        assert await store.delete("nobody") is False
        assert await store.disconnect("nobody") is None
        await store.connect("nobody")
        assert kinds(await take(stream, 1)) == [("created", "nobody", 0)]


async def test_the_identity_filter_is_exact_never_a_pattern(store: SessionStore) -> None:
    async with store.events("user-1*") as stream:
        for identity in ("user-10", "user-1", "user-1x", "user-1*"):
            await store.connect(identity)
        await store.delete("user-10")
        await store.disconnect("user-1*")
        events = await take(stream, 2)
    assert kinds(events) == [("created", "user-1*", 0), ("disconnected", "user-1*", 0)]


async def test_several_subscribers_each_get_every_event(store: SessionStore) -> None:
    async with store.events() as first, store.events("carol") as second:
        await store.connect("dave")
        await store.connect("carol")
        assert sorted(kinds(await take(first, 2))) == [("created", "carol", 0), ("created", "dave", 0)]
        assert kinds(await take(second, 1)) == [("created", "carol", 0)]


async def test_a_closed_stream_ends_its_iteration(store: SessionStore) -> None:
    stream = store.events()
    await stream.start()
    await store.connect("erin")
    assert kinds(await take(stream, 1)) == [("created", "erin", 0)]
    await stream.aclose()
    await stream.aclose()  # twice is fine
    assert [event async for event in stream] == []


async def test_events_carry_no_conversation_text_metadata_or_language(store: SessionStore, clock: VirtualClock) -> None:
    secret = "SECRET-4711"
    async with store.events() as stream:
        await store.connect("frank")
        await store.update("frank", language=f"x-{secret}", metadata={"m": secret}, context={secret: secret})
        await store.append_turn("frank", Turn("user", f"my pin is {secret}", clock.now(), item_id=secret))
        await store.disconnect("frank")
        await store.connect("frank")
        await store.delete("frank")
        events = await take(stream, 4)
    assert [event.kind for event in events] == ["created", "disconnected", "returned", "deleted"]
    for event in events:
        assert set(event.to_dict()) == {"kind", "identity", "time", "reconnect_count"}
        assert secret not in json.dumps(event.to_dict()) and secret not in repr(event)


def test_session_event_to_dict_is_the_documented_shape() -> None:
    event = SessionEvent("returned", "Zoë", 1_800_000_000.5, 3)
    assert event.to_dict() == {"kind": "returned", "identity": "Zoë", "time": 1_800_000_000.5, "reconnect_count": 3}
