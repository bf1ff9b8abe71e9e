"""The export/import and census part of the store contract, on every backend (and behind a FallbackStore).

``iter_records`` reads whole records (a session and its turns); ``import_records`` writes them under a
conflict rule, each atomically; ``census`` counts from indexes. Time is a VirtualClock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Connection, Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord
from lkpersist.stores.base import SessionStore
from tests.stores.test_contract import HOSTILE_IDENTITIES

Created, Merged, Replaced, Skipped, Unchanged = (
    ImportOutcome.CREATED, ImportOutcome.MERGED, ImportOutcome.REPLACED, ImportOutcome.SKIPPED, ImportOutcome.UNCHANGED
)


def _turns(identity: str, count: int, start: float, prefix: str = "t") -> tuple[Turn, ...]:
    roles = ("user", "assistant")
    return tuple(
        Turn(roles[i % 2], f"{prefix} {i} of {identity[:20]}", start + i, f"{prefix}-{i}") for i in range(count)
    )


def _record(clock: VirtualClock, identity: str, *, turns: int = 3, **fields: object) -> SessionRecord:
    now = clock.now()
    session = Session(
        identity=identity, joined_at=now - 100, last_seen=now - 10, reconnect_count=2, language="fr",
        metadata={"plan": "pro"}, context={"summary": "asked about trains"}, connected=False,
        expires_at=now + 590, ttl=600.0, greeted_visit=3,
    )
    return SessionRecord(replace(session, **fields), _turns(identity, turns, now - 60))  # type: ignore[arg-type]


async def _all_records(store: SessionStore, status: str = "all", **options: object) -> dict[str, SessionRecord]:
    found: dict[str, SessionRecord] = {}
    async for page in store.iter_records(status, **options):  # type: ignore[arg-type]
        for item in page:
            assert not isinstance(item, CorruptRecord), item
            assert item.session.identity not in found, "a record came twice"
            found[item.session.identity] = item
    return found


async def test_an_imported_record_reads_back_whole(store: SessionStore, clock: VirtualClock) -> None:
    record = _record(clock, "alice")
    assert await store.import_records([record]) == [Created]
    session = await store.get("alice")
    assert session == record.session
    assert tuple(await store.recent_turns("alice")) == record.turns
    assert (await _all_records(store))["alice"] == record


async def test_importing_the_same_records_twice_changes_nothing(store: SessionStore, clock: VirtualClock) -> None:
    records = [_record(clock, f"user-{i}", turns=i) for i in range(5)]
    assert await store.import_records(records) == [Created] * 5
    for rule in ("merge", "replace", "skip"):
        expected = Skipped if rule == "skip" else Unchanged
        assert await store.import_records(records, rule) == [expected] * 5  # type: ignore[arg-type]
    stored = await _all_records(store)
    assert {identity: r.session.reconnect_count for identity, r in stored.items()} == dict.fromkeys(stored, 2)
    assert [len(stored[f"user-{i}"].turns) for i in range(5)] == [0, 1, 2, 3, 4]


async def test_merge_keeps_both_sides_turns_by_item_id_and_the_larger_counts(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("bob")
    for turn in _turns("bob", 2, clock.now() - 30, prefix="live"):
        await store.append_turn("bob", turn)
    await store.update("bob", metadata={"plan": "free", "seat": 3})
    record = _record(clock, "bob")
    assert await store.import_records([record], "merge") == [Merged]
    merged = await store.require("bob")
    assert merged.connected is True  # the stored presence stays; the file's never travels
    assert merged.reconnect_count == 2 and merged.joined_at == record.session.joined_at
    assert merged.metadata == {"plan": "pro", "seat": 3} and merged.language == "fr"
    turns = await store.recent_turns("bob")
    assert sorted(t.item_id or "" for t in turns) == ["live-0", "live-1", "t-0", "t-1", "t-2"]
    assert [t.timestamp for t in turns] == sorted(t.timestamp for t in turns)
    assert await store.import_records([record], "merge") == [Unchanged]


async def test_skip_leaves_a_live_session_and_replace_overwrites_it(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("carol")
    await store.append_turn("carol", Turn("user", "kept?", clock.now(), "own-1"))
    record = _record(clock, "carol")
    assert await store.import_records([record], "skip") == [Skipped]
    assert [t.item_id for t in await store.recent_turns("carol")] == ["own-1"]
    assert await store.import_records([record], "replace") == [Replaced]
    assert await store.get("carol") == record.session
    assert tuple(await store.recent_turns("carol")) == record.turns


async def test_an_expired_stored_session_is_replaced_whatever_the_rule(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("dave")
    await store.append_turn("dave", Turn("user", "old visit", clock.now(), "old-1"))
    await store.disconnect("dave")
    clock.advance(3600)
    record = _record(clock, "dave")
    assert await store.import_records([record], "skip") == [Created]
    assert tuple(await store.recent_turns("dave")) == record.turns


async def test_a_connected_session_travels_disconnected(store: SessionStore, clock: VirtualClock) -> None:
    live = (Connection("agent:job", clock.now() - 50, clock.now() - 10),)
    record = _record(clock, "erin", connected=True, expires_at=None, connections=live)
    assert await store.import_records([record]) == [Created]
    session = await store.require("erin")
    assert session.connected is False
    assert session.expires_at == pytest.approx(record.session.last_seen + record.session.ttl)
    assert session.connections == ()  # live connections are transient: they never travel
    assert (await store.connect("erin")).returning is True
    assert await store.claim_greeting("erin") is True


async def test_records_are_capped_to_max_turns(store: SessionStore, clock: VirtualClock) -> None:
    record = _record(clock, "frank", turns=store.max_turns + 7)
    await store.import_records([record])
    turns = await store.recent_turns("frank")
    assert tuple(turns) == record.turns[-store.max_turns:]


async def test_iter_records_filters_by_status_and_identity(store: SessionStore, clock: VirtualClock) -> None:
    await store.import_records([_record(clock, "live-1"), _record(clock, "live-2")])
    gone = _record(clock, "gone", last_seen=clock.now() - 900, expires_at=clock.now() - 300)
    await store.import_records([gone])
    assert set(await _all_records(store, "active")) == {"live-1", "live-2"}
    assert set(await _all_records(store, "expired")) == {"gone"}
    assert (await _all_records(store, "expired"))["gone"].turns == gone.turns  # expired records keep their turns
    assert set(await _all_records(store, "all", page_size=1)) == {"live-1", "live-2", "gone"}
    chosen = await _all_records(store, "all", identities=["gone", "nobody", "live-2"])
    assert set(chosen) == {"gone", "live-2"}
    assert set(await _all_records(store, "active", identities=["gone", "live-1"])) == {"live-1"}


@pytest.mark.parametrize("identity", HOSTILE_IDENTITIES)
async def test_hostile_identities_travel_exactly(store: SessionStore, clock: VirtualClock, identity: str) -> None:
    record = _record(clock, identity)
    assert await store.import_records([record]) == [Created]
    assert (await _all_records(store))[identity] == record
    assert (await _all_records(store, identities=[identity]))[identity] == record


async def test_import_refuses_a_bad_rule_or_identity(store: SessionStore, clock: VirtualClock) -> None:
    with pytest.raises(InvalidInputError):
        await store.import_records([_record(clock, "x")], "overwrite")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await store.import_records([_record(clock, "")])
    assert await store.count("all") == 0


async def test_import_publishes_created_and_the_end_of_what_it_replaced(store: SessionStore, clock: VirtualClock) -> None:
    async with store.events() as stream:
        # connect inside the subscription and take its event first: on a Cluster, a PUBLISH made on
        # another node reaches the subscriber over the cluster bus, so one made before subscribing may
        # still arrive after it
        await store.connect("gina")
        assert (await asyncio.wait_for(anext(stream), 5)).kind == "created"
        await store.import_records([_record(clock, "gina"), _record(clock, "hal")], "replace")
        kinds = [(e.kind, e.identity) for e in [await asyncio.wait_for(anext(stream), 5) for _ in range(3)]]
    # per identity in order; a batch's identities may interleave (Redis writes the new ones first)
    assert [kind for kind, who in kinds if who == "gina"] == ["deleted", "created"]
    assert [kind for kind, who in kinds if who == "hal"] == ["created"]


async def test_census_counts_what_the_store_holds(store: SessionStore, clock: VirtualClock) -> None:
    for identity in ("p1", "p2", "p3"):
        await store.connect(identity)
    await store.append_turn("p1", Turn("user", "hi", clock.now(), "i1"))
    await store.disconnect("p3")
    await store.import_records([_record(clock, "left", turns=4, last_seen=clock.now() - 200)])
    await store.import_records([_record(clock, "old", last_seen=clock.now() - 9000, expires_at=clock.now() - 7200)])
    await store.import_records([_record(clock, "recent", last_seen=clock.now() - 900, expires_at=clock.now() - 300)])
    census = await store.census()
    assert (census.active, census.expired, census.stale) == (4, 2, 1)
    assert census.turns == 1 + 4 + 3 + 3
    assert census.turns_exact is True  # few sessions: every turn list was measured
    # p1 and p2 are present; p3 left seconds ago, which only an estimating backend counts
    assert census.connected == (2 if census.connected_exact else 3)
    clock.advance(200)  # past the presence timeout: nobody refreshed them
    assert (await store.census()).connected == 0


async def test_storage_info_names_the_backend_and_its_clock(store: SessionStore) -> None:
    info = await store.storage_info()
    assert info.backend in ("memory", "sqlite", "redis")
    if info.backend == "redis":
        assert info.server_version and info.server_version.startswith("Redis ")
        assert info.server_time is not None and abs(info.server_time - time.time()) < 60
    if info.backend == "sqlite":
        assert info.layout_version == info.supported_layout
