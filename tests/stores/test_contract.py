"""The store contract: one behaviour suite, run against every backend (memory, SQLite, Redis).

Backend-only cases live beside this file (test_sqlite.py, test_redis.py). Time is a VirtualClock: no
test sleeps to wait for expiry.
"""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError, SessionNotFoundError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore

HOSTILE_IDENTITIES = [
    "*",
    "user-1*",
    "user-1",
    "a{b}c",
    "{a}",
    "a:b",
    "x\ny",
    "[abc]?",
    "with space",
    "Zoë 🎧 日本語",
    "k" * 10_000,
    "%s%n\\",
]


async def _idle(store: SessionStore, clock: VirtualClock, seconds: int, present: list[str]) -> None:
    """Let time pass while the agent keeps the ``present`` participants alive with 30 s heartbeats."""
    for _ in range(seconds // 30):
        clock.advance(30)
        for identity in present:
            assert await store.heartbeat(identity) is True
    clock.advance(seconds % 30)


async def test_first_connect_is_a_new_session(store: SessionStore, clock: VirtualClock) -> None:
    result = await store.connect("alice")
    assert result.returning is False
    assert result.session.identity == "alice"
    assert result.session.reconnect_count == 0
    assert result.session.connected is True
    assert result.session.expires_at is None
    assert result.session.joined_at == pytest.approx(clock.now())


async def test_second_connect_is_returning_and_counts(store: SessionStore, clock: VirtualClock) -> None:
    first = await store.connect("alice")
    await store.disconnect("alice")
    clock.advance(30)
    second = await store.connect("alice")
    assert second.returning is True
    assert second.was_connected is False
    assert second.session.reconnect_count == 1
    assert second.session.joined_at == pytest.approx(first.session.joined_at)
    assert second.session.last_seen == pytest.approx(clock.now())
    third = await store.connect("alice")  # still connected: how it counts is the presence contract's
    assert third.was_connected is True


@pytest.mark.parametrize(("gap", "returning"), [(240, True), (299.999, True), (300, False), (360, False)])
async def test_first_time_session_expires_at_exactly_the_ttl(
    store: SessionStore, clock: VirtualClock, gap: float, returning: bool
) -> None:
    await store.connect("bob")
    await store.disconnect("bob")
    clock.advance(gap)
    assert (await store.get("bob") is not None) is returning
    result = await store.connect("bob")
    assert result.returning is returning
    assert result.session.reconnect_count == (1 if returning else 0)


async def test_ttl_grows_with_reconnects(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("carol")
    for _ in range(3):
        await store.disconnect("carol")
        clock.advance(10)
        await store.connect("carol")
    disconnected = await store.disconnect("carol")
    assert disconnected is not None and disconnected.reconnect_count == 3
    assert disconnected.expires_at == pytest.approx(clock.now() + 1800)
    clock.advance(1799)
    assert await store.get("carol") is not None
    clock.advance(1)
    assert await store.get("carol") is None


async def test_ttl_policy_is_configurable(store_url: str, clock: VirtualClock) -> None:
    custom = open_store(store_url, clock=clock, ttl_policy=TTLPolicy(first=10, returning=20, frequent=30))
    try:
        await custom.connect("dora")
        await custom.disconnect("dora")
        clock.advance(11)
        assert await custom.get("dora") is None
    finally:
        await custom.close()


async def test_connected_session_never_expires_with_heartbeats(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("erin")
    for _ in range(120):  # an hour of conversation, a heartbeat every 30 s
        clock.advance(30)
        assert await store.heartbeat("erin") is True
    session = await store.get("erin")
    assert session is not None and session.connected and session.expires_at is None
    assert (await store.connect("erin")).session.joined_at == session.joined_at  # the same session


async def test_countdown_starts_at_disconnect_not_at_connect(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("fay")
    await _idle(store, clock, 3600, ["fay"])
    await store.disconnect("fay")
    clock.advance(240)
    assert (await store.connect("fay")).returning is True


async def test_dead_agent_countdown_runs_from_last_heartbeat(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("gus")
    clock.advance(60)
    assert await store.heartbeat("gus") is True
    clock.advance(299)
    assert await store.get("gus") is not None
    clock.advance(1)
    assert await store.get("gus") is None
    assert await store.heartbeat("gus") is False


async def test_disconnect_of_unknown_identity_is_none(store: SessionStore) -> None:
    assert await store.disconnect("nobody") is None


async def test_greeting_claimed_once_per_return(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("hal")
    assert await store.claim_greeting("hal") is True
    assert await store.claim_greeting("hal") is False
    await store.connect("hal")  # a second agent / repeated event while still connected
    assert await store.claim_greeting("hal") is False
    await store.disconnect("hal")
    clock.advance(1)
    await store.connect("hal")
    assert await store.claim_greeting("hal") is True
    assert await store.claim_greeting("hal") is False


async def test_greeting_cannot_be_claimed_for_absent_session(store: SessionStore) -> None:
    assert await store.claim_greeting("ghost") is False


async def test_update_merges_metadata_and_context(store: SessionStore) -> None:
    await store.connect("ivy")
    await store.update("ivy", metadata={"plan": "pro", "tz": "CET"}, context={"summary": "s1"})
    session = await store.update("ivy", language="fr", metadata={"tz": "EST", "plan": None}, context={"q": 1})
    assert session.language == "fr"
    assert session.metadata == {"tz": "EST"}
    assert session.context == {"summary": "s1", "q": 1}
    reread = await store.get("ivy")
    assert reread is not None
    assert (reread.language, reread.metadata, reread.context) == ("fr", {"tz": "EST"}, {"summary": "s1", "q": 1})


async def test_update_survives_lifecycle_operations(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("jay")
    await store.update("jay", language="de", metadata={"nested": {"a": [1, 2.5, "x"]}, "big": 2**62})
    await store.disconnect("jay")
    clock.advance(5)
    result = await store.connect("jay")
    assert result.session.language == "de"
    assert result.session.metadata == {"nested": {"a": [1, 2.5, "x"]}, "big": 2**62}


async def test_update_of_missing_session_raises(store: SessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        await store.update("nobody", context={"a": 1})


async def test_new_session_after_expiry_starts_clean(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("kim")
    await store.update("kim", language="es", context={"summary": "old"})
    await store.append_turn("kim", Turn("user", "hola", clock.now(), "i1"))
    await store.disconnect("kim")
    clock.advance(301)
    result = await store.connect("kim")
    assert result.returning is False
    assert result.session.language is None and result.session.context == {}
    assert await store.recent_turns("kim") == []


async def test_turns_are_capped_and_ordered(store_url: str, clock: VirtualClock) -> None:
    capped = open_store(store_url, clock=clock, max_turns=5)
    try:
        await capped.connect("lea")
        for index in range(8):
            clock.advance(1)
            await capped.append_turn("lea", Turn("user" if index % 2 else "assistant", f"t{index}", clock.now(), f"id{index}"))
        turns = await capped.recent_turns("lea")
        assert [t.text for t in turns] == ["t3", "t4", "t5", "t6", "t7"]
        assert [t.text for t in await capped.recent_turns("lea", limit=2)] == ["t6", "t7"]
        assert turns[-1].timestamp == pytest.approx(clock.now())
        assert turns[-1].item_id == "id7"
    finally:
        await capped.close()


async def test_default_turn_ceiling_is_500(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("max")
    for index in range(505):
        await store.append_turn("max", Turn("user", f"t{index}", clock.now() + index, f"i{index}"))
    turns = await store.recent_turns("max")
    assert len(turns) == 500
    assert turns[0].text == "t5"


async def test_append_turn_is_idempotent_by_item_id(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("ned")
    turn = Turn("user", "hello", clock.now(), "item-1")
    assert await store.append_turn("ned", turn) is True
    assert await store.append_turn("ned", turn) is False
    assert await store.append_turn("ned", Turn("assistant", "no id", clock.now())) is True
    assert await store.append_turn("ned", Turn("assistant", "no id", clock.now())) is True
    assert [t.text for t in await store.recent_turns("ned")] == ["hello", "no id", "no id"]


async def test_append_turn_to_missing_session_raises(store: SessionStore, clock: VirtualClock) -> None:
    with pytest.raises(SessionNotFoundError):
        await store.append_turn("nobody", Turn("user", "hi", clock.now(), "x"))


async def test_turn_text_round_trips_exactly(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("oz")
    text = 'quotes " \\ newline\n tab\t unicode ünï 🎧 and {"json": [1,2]}'
    await store.append_turn("oz", Turn("user", text, 1_800_000_000.123, "q"))
    (turn,) = await store.recent_turns("oz")
    assert turn == Turn("user", text, 1_800_000_000.123, "q")


async def test_delete_removes_session_and_turns(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("pia")
    await store.append_turn("pia", Turn("user", "x", clock.now(), "1"))
    assert await store.delete("pia") is True
    assert await store.get("pia") is None
    assert await store.delete("pia") is False
    result = await store.connect("pia")
    assert result.returning is False
    assert await store.recent_turns("pia") == []


async def _populate(store: SessionStore, clock: VirtualClock) -> None:
    """Five sessions: a connected, b and c recently gone (live), d and e expired."""
    for name in ("d", "e", "b", "c", "a"):
        await store.connect(name)
        clock.advance(1)
    for name in ("d", "e"):
        await store.disconnect(name)
    await _idle(store, clock, 400, ["a", "b", "c"])
    for name in ("b", "c"):
        await store.disconnect(name)
        clock.advance(1)


async def test_count_by_status(store: SessionStore, clock: VirtualClock) -> None:
    await _populate(store, clock)
    assert await store.count("active") == 3
    assert await store.count("expired") == 2
    assert await store.count("all") == 5


async def test_list_orders_by_last_seen_and_filters(store: SessionStore, clock: VirtualClock) -> None:
    await _populate(store, clock)
    active = [s.identity async for s in store.iter_sessions("active") if isinstance(s, Session)]
    assert active == ["c", "b", "a"]
    expired = [s.identity async for s in store.iter_sessions("expired") if isinstance(s, Session)]
    assert sorted(expired) == ["d", "e"]
    every = [s.identity async for s in store.iter_sessions("all") if isinstance(s, Session)]
    assert every[:3] == ["c", "b", "a"] and sorted(every[3:]) == ["d", "e"]


async def test_list_paginates_without_gaps_or_repeats(store: SessionStore, clock: VirtualClock) -> None:
    names = [f"user-{index:03d}" for index in range(37)]
    for index, name in enumerate(names):
        await store.connect(name)
        if index % 3:
            clock.advance(1)  # some share a last_seen: ties must still paginate stably
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list_page("all", limit=5, cursor=cursor)
        pages += 1
        seen.extend(s.identity for s in page.items if isinstance(s, Session))
        assert len(page.items) <= 5
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(names) and len(seen) == len(names)
    assert pages == 8
    streamed = [s.identity async for s in store.iter_sessions("all", page_size=4) if isinstance(s, Session)]
    assert streamed == seen


async def test_purge_removes_only_expired(store: SessionStore, clock: VirtualClock) -> None:
    await _populate(store, clock)
    dry = await store.purge(dry_run=True)
    assert (dry.purged, dry.dry_run) == (2, True)
    assert await store.count("all") == 5
    assert (await store.purge()).purged == 2
    assert await store.count("all") == 3
    assert (await store.purge()).purged == 0


async def test_purge_older_than_cutoff(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("old")
    await store.disconnect("old")
    clock.advance(200)
    await store.connect("new")
    await store.disconnect("new")
    clock.advance(10)
    assert (await store.purge(older_than=100)).purged == 1
    assert await store.get("old") is None
    assert await store.get("new") is not None


async def test_purge_does_not_delete_a_session_that_came_back(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("zed")
    await store.disconnect("zed")
    clock.advance(301)
    await store.connect("zed")  # a new session: not expired any more
    assert (await store.purge()).purged == 0
    assert await store.get("zed") is not None


@pytest.mark.parametrize("identity", HOSTILE_IDENTITIES, ids=lambda i: repr(i[:12]))
async def test_hostile_identities_are_stored_exactly(store: SessionStore, clock: VirtualClock, identity: str) -> None:
    await store.connect(identity)
    await store.update(identity, metadata={"who": identity})
    await store.append_turn(identity, Turn("user", identity, clock.now(), identity))
    session = await store.get(identity)
    assert session is not None and session.identity == identity and session.metadata == {"who": identity}
    assert [t.text for t in await store.recent_turns(identity)] == [identity]
    listed = [s.identity async for s in store.iter_sessions("all") if isinstance(s, Session)]
    assert listed == [identity]


async def test_hostile_identities_never_touch_each_other(store: SessionStore, clock: VirtualClock) -> None:
    for identity in HOSTILE_IDENTITIES:
        await store.connect(identity)
    await store.disconnect("*")
    await store.disconnect("user-1*")
    await _idle(store, clock, 301, [i for i in HOSTILE_IDENTITIES if i not in ("*", "user-1*")])
    assert await store.count("expired") == 2
    assert (await store.purge()).purged == 2
    remaining = sorted([s.identity async for s in store.iter_sessions("all") if isinstance(s, Session)])
    assert remaining == sorted(i for i in HOSTILE_IDENTITIES if i not in ("*", "user-1*"))
    assert await store.delete("user-1") is True
    assert await store.get("user-1*") is None and await store.get("*") is None
    assert await store.count("all") == len(HOSTILE_IDENTITIES) - 3


@pytest.mark.parametrize("identity", ["", "x" * 70_000, "\ud800"])
async def test_unacceptable_identities_are_refused(store: SessionStore, identity: str) -> None:
    with pytest.raises(InvalidInputError):
        await store.connect(identity)


async def test_invalid_listing_arguments(store: SessionStore) -> None:
    with pytest.raises(InvalidInputError):
        await store.count("bogus")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await store.list_page("all", limit=0)
    with pytest.raises(InvalidInputError):
        await store.list_page("all", cursor="not a cursor!")


async def test_session_json_form(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("uma")
    data = (await store.require("uma")).to_dict()
    for key in ("identity", "joined_at", "last_seen", "reconnect_count", "language", "metadata", "context",
                "connected", "expires_at"):
        assert key in data
    assert not any(isinstance(item, CorruptRecord) for item in [data])


async def test_two_handles_on_one_store_agree(store_url: str, clock: VirtualClock, backend: str) -> None:
    if backend == "memory":
        pytest.skip("memory:// is one process, one handle by definition")
    first = open_store(store_url, clock=clock)
    second = open_store(store_url, clock=clock)
    try:
        await first.connect("vic")
        await first.disconnect("vic")
        clock.advance(10)
        assert (await second.connect("vic")).returning is True
        assert (await first.require("vic")).reconnect_count == 1
    finally:
        await first.close()
        await second.close()


async def test_a_dead_agents_presence_goes_stale(store: SessionStore, clock: VirtualClock) -> None:
    """The agent was SIGKILLed: no disconnect was recorded, yet the next join is a return owed a greeting."""
    await store.connect("kai")
    assert await store.claim_greeting("kai") is True
    clock.advance(89)
    fresh = await store.connect("kai")  # still within the presence timeout: a second connection
    assert fresh.was_connected is True
    assert await store.claim_greeting("kai") is False
    clock.advance(91)  # past the presence timeout (90 s) since the last sign of life
    stale = await store.connect("kai")
    assert stale.returning is True and stale.was_connected is False
    assert await store.claim_greeting("kai") is True
    assert await store.claim_greeting("kai") is False


async def test_reads_count_the_turns_a_session_holds(store_url: str, clock: VirtualClock) -> None:
    """``get`` and listings say how many turns are stored, in the same read, on every backend."""
    capped = open_store(store_url, clock=clock, max_turns=3)
    try:
        await capped.connect("talker")
        await capped.connect("quiet")
        assert (await capped.require("quiet")).turn_count == 0
        for index in range(5):
            await capped.append_turn("talker", Turn("user", f"t{index}", clock.now(), f"id{index}"))
        assert (await capped.require("talker")).turn_count == 3  # the cap, not the number ever appended
        listed = {s.identity: s.turn_count async for s in capped.iter_sessions("all") if isinstance(s, Session)}
        assert listed == {"talker": 3, "quiet": 0}
        assert (await capped.require("talker")).to_dict()["turn_count"] == 3
    finally:
        await capped.close()


async def test_purge_reports_progress_as_it_goes(store: SessionStore, clock: VirtualClock) -> None:
    for index in range(7):
        await store.connect(f"gone-{index}")
        await store.disconnect(f"gone-{index}")
    clock.advance(301)
    await store.connect("stays")
    seen: list[int] = []
    assert (await store.purge(dry_run=True, progress=seen.append)).purged == 7
    assert seen == []  # a dry run removes nothing, so it reports nothing
    assert (await store.purge(progress=seen.append)).purged == 7
    assert seen and seen == sorted(seen) and seen[-1] == 7
