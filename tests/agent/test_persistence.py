"""The seed's manual test plan, automated, on the real controller and a real AgentSession (memory store)."""

from __future__ import annotations

import asyncio
import json

import pytest
from livekit import rtc

from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.agent.history import RESTORED_MARK
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import JobFactory

WELCOME_2 = DEFAULT_RETURNING["en"].format(visit=2)


@pytest.fixture
async def memory(clock: VirtualClock) -> SessionStore:
    return open_store("memory://", clock=clock)


async def test_initial_connection_is_greeted_as_new(memory: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(memory)
    await job.arrive("user-1", name="Ada", attributes={"plan": "gold"}, metadata=json.dumps({"tier": 2}))
    assert job.said == [DEFAULT_NEW["en"]]
    session = await memory.require("user-1")
    assert (session.connected, session.reconnect_count) == (True, 0)
    assert session.metadata["name"] == "Ada"
    assert session.metadata["attributes"] == {"plan": "gold"}
    assert session.metadata["participant_metadata"] == {"tier": 2}
    assert job.decisions[0].returning is False and job.decisions[0].visit == 1


@pytest.mark.parametrize(
    ("away", "reason"),
    [
        (3.0, rtc.DisconnectReason.CLIENT_INITIATED),  # soft disconnect, 3 s
        (10.0, rtc.DisconnectReason.CONNECTION_TIMEOUT),  # network drop, 10 s
        (240.0, rtc.DisconnectReason.CLIENT_INITIATED),  # 4 minutes away
    ],
)
async def test_a_return_within_the_ttl_is_welcomed_back_once(
    memory: SessionStore,
    clock: VirtualClock,
    make_job: JobFactory,
    away: float,
    reason: rtc.DisconnectReason.ValueType,
) -> None:
    first = await make_job(memory)
    await first.arrive("user-1")
    await first.say_user("I need a table for two.")
    await first.leave("user-1", reason)
    clock.advance(away)
    second = await make_job(memory)  # a new job: everything it knows comes from the store
    await second.arrive("user-1")
    assert second.said == [WELCOME_2]
    assert (await memory.require("user-1")).reconnect_count == 1


async def test_six_minutes_away_after_a_first_visit_is_a_new_session(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    first = await make_job(memory)
    await first.arrive("user-1")
    await first.say_user("Remember the olives.")
    await first.leave("user-1")
    clock.advance(360)
    second = await make_job(memory)
    await second.arrive("user-1")
    assert second.said == [DEFAULT_NEW["en"]]
    assert (await memory.require("user-1")).reconnect_count == 0
    await second.say_user("Hello?")
    assert "Remember the olives." not in [text for _, text in second.llm.received_texts()]


async def test_refresh_in_the_same_job_welcomes_back_once(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    job = await make_job(memory)
    await job.arrive("user-1")
    job.events.repeat_join("user-1")  # the same event again must not count as a return
    await job.persistence.wait_idle()
    # a browser refresh: leave and join again within a second, events handled back to back
    job.events.leave("user-1")
    clock.advance(0.4)
    job.events.join("user-1")
    job.events.activate("user-1")
    job.events.repeat_join("user-1")
    await job.persistence.wait_idle()
    assert job.said == [DEFAULT_NEW["en"], WELCOME_2]
    session = await memory.require("user-1")
    assert (session.reconnect_count, session.connected) == (1, True)


async def test_earlier_turns_reach_the_llm_with_timestamps_marked_as_history(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    first = await make_job(memory)
    await first.arrive("user-1")
    await first.say_user("My name is Ada.")
    await first.say_user("I like window seats.")
    recorded = await memory.recent_turns("user-1")
    await first.leave("user-1")
    clock.advance(30)
    second = await make_job(memory)
    await second.arrive("user-1")
    await second.say_user("Where were we?")
    received = second.llm.calls[-1].messages()
    restored = [m for m in received if m.extra.get(RESTORED_MARK)]
    header, *turns = restored
    assert header.role == "assistant" and "earlier_conversation" in (header.text_content or "")
    assert [(m.id, m.role, m.text_content, m.created_at) for m in turns] == [
        (t.item_id, t.role, t.text, t.timestamp) for t in recorded
    ]
    assert all(m.role in ("user", "assistant") for m in restored)  # never promoted to instructions
    order = [m.text_content for m in received]
    assert order.index("I like window seats.") < order.index(WELCOME_2) < order.index("Where were we?")
    assert received[0].role == "system"  # the agent's own instructions still come first


async def test_every_item_is_recorded_once_as_it_is_added(memory: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(memory)
    await job.arrive("user-1")
    reply = await job.say_user("Hello there.")
    turns = await memory.recent_turns("user-1")
    assert [(t.role, t.text) for t in turns] == [
        ("assistant", DEFAULT_NEW["en"]),
        ("user", "Hello there."),
        ("assistant", reply),
    ]
    assert [t.item_id for t in turns] == [item.id for item in job.items]
    assert [t.timestamp for t in turns] == [item.created_at for item in job.items]


async def test_a_summary_in_the_context_is_restored(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    first = await make_job(memory)
    await first.arrive("user-1")
    await memory.update("user-1", context={"summary": "Ada booked a table for Friday."})
    await first.leave("user-1")
    clock.advance(5)
    second = await make_job(memory)
    await second.arrive("user-1")
    await second.say_user("Anything else?")
    texts = [text for _, text in second.llm.received_texts()]
    assert any("Ada booked a table for Friday." in text for text in texts)


async def test_language_comes_from_the_participant_and_is_remembered(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    first = await make_job(memory)
    await first.arrive("user-1", attributes={"language": "es-MX"})
    assert first.said == [DEFAULT_NEW["es"]]
    await first.leave("user-1")
    clock.advance(5)
    second = await make_job(memory)
    await second.arrive("user-1")  # announces nothing this time: the stored language is used
    assert second.said == [DEFAULT_RETURNING["es"].format(visit=2)]
    assert (await memory.require("user-1")).language == "es-MX"


async def test_the_greeting_waits_for_the_participant_to_be_ready(
    memory: SessionStore, make_job: JobFactory
) -> None:
    job = await make_job(memory, ready_timeout=5.0)
    job.events.join("user-1")
    await asyncio.sleep(0.2)
    assert job.said == []  # decided, but the participant cannot hear yet
    job.events.activate("user-1")
    await job.persistence.wait_idle()
    assert job.said == [DEFAULT_NEW["en"]]


async def test_the_wait_for_readiness_is_bounded(memory: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(memory, ready_timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    job.events.join("user-1")  # never becomes active
    await job.persistence.wait_idle()
    assert job.said == [DEFAULT_NEW["en"]]
    assert 0.25 <= loop.time() - started < 2.0


async def test_heartbeat_keeps_a_long_conversation_alive(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    job = await make_job(memory, heartbeat_interval=0.02)
    await job.arrive("user-1")
    for _ in range(20):  # 20 virtual minutes of conversation, far past the 5-minute TTL
        clock.advance(60)  # within the presence timeout (90 s) of the last heartbeat
        await asyncio.sleep(0.05)
        assert await memory.get("user-1") is not None
    assert (await memory.require("user-1")).reconnect_count == 0  # one visit all along
    await job.persistence.aclose()
    clock.advance(301)
    assert await memory.get("user-1") is None  # counting down from the last refresh


async def test_session_close_records_the_participant_as_gone(
    memory: SessionStore, make_job: JobFactory
) -> None:
    job = await make_job(memory)
    await job.arrive("user-1")
    await job.session.aclose()
    await job.persistence.wait_idle()
    session = await memory.require("user-1")
    assert session.connected is False and session.expires_at is not None


async def test_agents_and_other_kinds_are_not_followed(memory: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(memory)
    job.events.join("agent-2", kind=rtc.ParticipantKind.PARTICIPANT_KIND_AGENT)
    await job.persistence.wait_idle()
    assert job.said == [] and await memory.get("agent-2") is None


async def test_the_agent_track_being_subscribed_also_means_ready(
    memory: SessionStore, make_job: JobFactory
) -> None:
    job = await make_job(memory, ready_timeout=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    job.events.join("user-1")
    await asyncio.sleep(0.05)
    assert job.said == []
    job.room.emit("local_track_subscribed", None)  # the participant subscribed to the agent's audio
    await job.persistence.wait_idle()
    assert job.said == [DEFAULT_NEW["en"]] and loop.time() - started < 1.0
