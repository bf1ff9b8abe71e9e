"""``apply_offline``, the merge primitive behind the fallback, on every backend (one suite, as the contract).

Each test writes a stored state through the ordinary API, builds the journal entry an outage would
have produced (:class:`OfflineDelta`), merges it, and reads the result back through the ordinary API.
"""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.session import Turn
from lkpersist.stores.base import SessionStore
from tests.events.conftest import by_identity, take


def _turn(item: str, at: float, role: str = "user") -> Turn:
    return Turn(role=role, text=f"text of {item}", timestamp=at, item_id=item)


async def test_a_session_created_offline_is_created(store: SessionStore, clock: VirtualClock) -> None:
    t0 = clock.now()
    delta = OfflineDelta(
        "ann", first_at=t0, connects=2, disconnects=1, created=True, presence_at=t0 + 20, connected=True,
        greeted=True, turns=[_turn("a1", t0 + 1), _turn("a2", t0 + 21, "assistant")],
    )
    clock.advance(30)
    merged = await store.apply_offline(delta)
    session = await store.require("ann")
    assert merged is not None and merged.reconnect_count == session.reconnect_count == 1
    assert (session.joined_at, session.last_seen, session.connected) == (t0, t0 + 20, True)
    assert [t.item_id for t in await store.recent_turns("ann")] == ["a1", "a2"]
    assert await store.claim_greeting("ann") is False  # greeted during the outage: nobody owes it again


async def test_merging_adds_increments_and_interleaves_turns_without_duplicates(
    store: SessionStore, clock: VirtualClock
) -> None:
    t0 = clock.now()
    await store.connect("bo")
    await store.append_turn("bo", _turn("b1", t0 + 1))
    await store.append_turn("bo", _turn("b3", t0 + 3))
    clock.advance(10)
    delta = OfflineDelta(
        "bo", first_at=t0 + 2, connects=3, disconnects=2, presence_at=t0 + 10, connected=True,
        turns=[_turn("b2", t0 + 2), _turn("b3", t0 + 3), _turn("b4", t0 + 4)],
    )
    await store.apply_offline(delta)
    session = await store.require("bo")
    assert session.reconnect_count == 3
    assert session.connected is True
    assert [t.item_id for t in await store.recent_turns("bo")] == ["b1", "b2", "b3", "b4"]
    assert await store.append_turn("bo", _turn("b2", t0 + 2)) is False  # merged ids are known to the store
    assert await store.claim_greeting("bo") is True  # left twice offline, never greeted: owed


async def test_the_latest_presence_wins(store: SessionStore, clock: VirtualClock) -> None:
    t0 = clock.now()
    await store.connect("cy")
    clock.advance(50)
    await store.disconnect("cy")  # another agent saw cy leave at t0 + 50
    delta = OfflineDelta("cy", first_at=t0 + 5, connects=1, presence_at=t0 + 5, connected=True)
    await store.apply_offline(delta)
    session = await store.require("cy")
    assert (session.connected, session.last_seen, session.reconnect_count) == (False, t0 + 50, 1)
    later = OfflineDelta("cy", first_at=t0 + 60, disconnects=1, presence_at=t0 + 60, connected=False)
    clock.advance(20)
    await store.apply_offline(later)
    session = await store.require("cy")
    assert session.last_seen == t0 + 60 and session.expires_at == pytest.approx(t0 + 60 + session.ttl)


async def test_metadata_context_and_language_merge_key_by_key(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("di")
    await store.update("di", language="en", metadata={"plan": "gold", "seat": "4A"}, context={"summary": "old"})
    delta = OfflineDelta(
        "di", first_at=clock.now(), language="fr", metadata={"seat": None, "meal": "veg"}, context={"topic": "x"}
    )
    await store.apply_offline(delta)
    session = await store.require("di")
    assert session.language == "fr"
    assert session.metadata == {"plan": "gold", "meal": "veg"}
    assert session.context == {"summary": "old", "topic": "x"}


async def test_an_expired_record_is_replaced_unless_the_offline_copy_continued_it(
    store: SessionStore, clock: VirtualClock
) -> None:
    for identity in ("ed", "flo"):
        await store.connect(identity)
        await store.append_turn(identity, _turn(f"{identity}-old", clock.now()))
    joined = clock.now()
    clock.advance(400)  # nobody could refresh them: both expired in the store
    at = clock.now()
    replaced = OfflineDelta("ed", first_at=at, connects=1, created=True, presence_at=at, connected=True)
    continued = OfflineDelta("flo", first_at=at, continues=joined, presence_at=at, connected=True,
                             turns=[_turn("flo-new", at)])
    await store.apply_offline(replaced)
    await store.apply_offline(continued)
    ed, flo = await store.require("ed"), await store.require("flo")
    assert (ed.joined_at, ed.reconnect_count, await store.recent_turns("ed")) == (at, 0, [])
    assert flo.joined_at == joined and flo.connected is True
    assert [t.item_id for t in await store.recent_turns("flo")] == ["flo-old", "flo-new"]


async def test_a_delete_offline_deletes_and_later_changes_start_afresh(store: SessionStore, clock: VirtualClock) -> None:
    for identity in ("gus", "hal"):
        await store.connect(identity)
        await store.append_turn(identity, _turn(f"{identity}-1", clock.now()))
    at = clock.now() + 1
    assert await store.apply_offline(OfflineDelta("gus", first_at=at, deleted=True)) is None
    assert await store.get("gus") is None
    recreated = OfflineDelta("hal", first_at=at, deleted=True, connects=1, created=True, presence_at=at, connected=True)
    session = await store.apply_offline(recreated)
    assert session is not None and session.joined_at == at and session.reconnect_count == 0
    assert await store.recent_turns("hal") == []
    assert await store.count("all") == 1


async def test_merged_turns_keep_the_newest_max_turns(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("ivy")
    t0 = clock.now()
    for n in range(0, store.max_turns, 2):
        await store.append_turn("ivy", _turn(f"even-{n}", t0 + n))
    offline = [_turn(f"odd-{n}", t0 + n) for n in range(1, store.max_turns + 2, 2)]
    await store.apply_offline(OfflineDelta("ivy", first_at=t0, turns=offline))
    turns = await store.recent_turns("ivy")
    assert len(turns) == store.max_turns
    assert [t.timestamp for t in turns] == sorted(t.timestamp for t in turns)
    assert turns[-1].item_id == f"odd-{store.max_turns + 1}"
    assert await store.append_turn("ivy", turns[0]) is False


async def test_an_empty_delta_changes_nothing(store: SessionStore, clock: VirtualClock) -> None:
    assert await store.apply_offline(OfflineDelta("jo", first_at=clock.now())) is None
    assert await store.count("all") == 0


async def test_a_merge_publishes_the_events_of_what_happened_offline(store: SessionStore, clock: VirtualClock) -> None:
    """Every merged session still begins with ``created`` and ends with ``deleted``/``expired`` for a watcher."""
    for identity in ("kai", "lu", "max"):
        await store.connect(identity)
    clock.advance(400)  # kai and lu expired in the store; max is renewed offline below
    at = clock.now()
    async with store.events() as stream:
        await store.apply_offline(OfflineDelta("kai", first_at=at, connects=3, disconnects=1, created=True,
                                               presence_at=at, connected=False))
        await store.apply_offline(OfflineDelta("lu", first_at=at, deleted=True))
        await store.apply_offline(OfflineDelta("max", first_at=at, continues=at - 400, connects=1,
                                               presence_at=at, connected=True))
        await store.apply_offline(OfflineDelta("nia", first_at=at))  # nothing happened: nothing published
        await store.connect("nia")  # the marker
        events = by_identity(await take(stream, 7, since=at))
    assert events["kai"] == [("expired", "kai", 0), ("created", "kai", 0), ("returned", "kai", 2),
                             ("disconnected", "kai", 2)]
    assert events["lu"] == [("deleted", "lu", 0)]
    assert events["max"] == [("returned", "max", 1)]
    assert events["nia"] == [("created", "nia", 0)]
