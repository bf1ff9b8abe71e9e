"""The store contract of ``compact_turns``: a summary replaces exactly the oldest turns it covers, or nothing.

Run over every backend by the shared ``store`` fixture (memory, SQLite, Redis, Cluster, Sentinel) and
again through a FallbackStore (tests/fallback/test_contract_fallback.py).
"""

from __future__ import annotations

import asyncio

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError, SessionNotFoundError
from lkpersist.model.session import MAX_SUMMARY_CHARS, SUMMARY_KEY, Turn
from lkpersist.stores.base import SessionStore


async def _talk(store: SessionStore, clock: VirtualClock, identity: str, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        role = "user" if index % 2 == 0 else "assistant"
        await store.append_turn(identity, Turn(role, f"line {index}", clock.now() + index, f"item-{index}"))


async def test_compaction_drops_exactly_the_covered_turns_and_sets_the_summary(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("ana")
    await store.update("ana", context={"preferences": {"seat": "window"}})
    await _talk(store, clock, "ana", 10)
    turns = await store.recent_turns("ana")
    assert await store.compact_turns("ana", "They booked a table — ünï 🎧.", turns[:6]) is True
    left = await store.recent_turns("ana")
    assert [t.item_id for t in left] == [f"item-{i}" for i in range(6, 10)]
    session = await store.require("ana")
    assert session.context == {
        "preferences": {"seat": "window"},
        SUMMARY_KEY: "They booked a table — ünï 🎧.",
    }


async def test_a_span_that_is_no_longer_the_oldest_changes_nothing(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("ben")
    await _talk(store, clock, "ben", 8)
    turns = await store.recent_turns("ben")
    assert await store.compact_turns("ben", "first summary", turns[:4]) is True
    # a second summariser that read the same turns before the first one compacted them
    assert await store.compact_turns("ben", "stale summary", turns[:5]) is False
    assert [t.item_id for t in await store.recent_turns("ben")] == [f"item-{i}" for i in range(4, 8)]
    assert (await store.require("ben")).context[SUMMARY_KEY] == "first summary"


async def test_the_span_must_match_at_both_ends_and_in_length(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("cy")
    await _talk(store, clock, "cy", 6)
    turns = await store.recent_turns("cy")
    assert await store.compact_turns("cy", "s", turns[1:4]) is False  # not starting at the oldest
    assert await store.compact_turns("cy", "s", [turns[0], turns[3]]) is False  # count does not match
    too_many = [*turns, Turn("user", "never stored", clock.now(), "ghost")]
    assert await store.compact_turns("cy", "s", too_many) is False
    assert len(await store.recent_turns("cy")) == 6
    assert SUMMARY_KEY not in (await store.require("cy")).context


async def test_turns_appended_after_the_read_are_kept(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("dee")
    await _talk(store, clock, "dee", 6)
    read = await store.recent_turns("dee")
    await _talk(store, clock, "dee", 3, start=6)  # the conversation went on while the LLM summarised
    assert await store.compact_turns("dee", "summary", read[:5]) is True
    assert [t.text for t in await store.recent_turns("dee")] == [f"line {i}" for i in range(5, 9)]


async def test_compacting_everything_leaves_only_the_summary(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("eli")
    await _talk(store, clock, "eli", 3)
    assert await store.compact_turns("eli", "all of it", await store.recent_turns("eli")) is True
    assert await store.recent_turns("eli") == []
    await _talk(store, clock, "eli", 2, start=3)  # recording goes on after a compaction
    assert [t.item_id for t in await store.recent_turns("eli")] == ["item-3", "item-4"]


async def test_two_summarisers_racing_on_one_span_compact_once(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("fox")
    await _talk(store, clock, "fox", 12)
    turns = await store.recent_turns("fox")
    results = await asyncio.gather(*(store.compact_turns("fox", f"summary {n}", turns[:8]) for n in range(6)))
    assert sorted(results) == [False] * 5 + [True]
    assert len(await store.recent_turns("fox")) == 4


async def test_compacting_a_missing_or_expired_session_raises(
    store: SessionStore, clock: VirtualClock
) -> None:
    turn = Turn("user", "x", clock.now(), "x")
    with pytest.raises(SessionNotFoundError):
        await store.compact_turns("nobody", "summary", [turn])
    await store.connect("gus")
    await store.append_turn("gus", turn)
    await store.disconnect("gus")
    clock.advance(301)
    with pytest.raises(SessionNotFoundError):
        await store.compact_turns("gus", "summary", [turn])


@pytest.mark.parametrize(
    ("summary", "covered"),
    [
        ("", [Turn("user", "x", 1.0, "a")]),
        ("   ", [Turn("user", "x", 1.0, "a")]),
        ("x" * (MAX_SUMMARY_CHARS + 1), [Turn("user", "x", 1.0, "a")]),
        ("fine", []),
        ("fine", [Turn("user", "x", 1.0, None), Turn("user", "y", 2.0, "b")]),
        ("fine", [Turn("user", "x", 1.0, "a"), Turn("user", "y", 2.0, None)]),
    ],
    ids=["empty", "blank", "huge", "no turns", "first without id", "last without id"],
)
async def test_bad_compaction_arguments_are_refused(
    store: SessionStore, clock: VirtualClock, summary: str, covered: list[Turn]
) -> None:
    await store.connect("hal")
    await store.append_turn("hal", Turn("user", "x", 1.0, "a"))
    with pytest.raises(InvalidInputError):
        await store.compact_turns("hal", summary, covered)
    assert len(await store.recent_turns("hal")) == 1


async def test_turns_without_ids_inside_the_span_go_with_it(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("ivy")
    await store.append_turn("ivy", Turn("user", "a", 1.0, "a"))
    await store.append_turn("ivy", Turn("assistant", "anonymous", 2.0))
    await store.append_turn("ivy", Turn("user", "c", 3.0, "c"))
    await store.append_turn("ivy", Turn("assistant", "d", 4.0, "d"))
    turns = await store.recent_turns("ivy")
    assert await store.compact_turns("ivy", "summary", turns[:3]) is True
    assert [t.text for t in await store.recent_turns("ivy")] == ["d"]
