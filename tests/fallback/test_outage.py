"""The issue's outage test: Redis is killed during a real agent conversation and started again.

Real SessionPersistence (fallback on) + real AgentSession with the package's ScriptedLLM + a real
redis-server that gets SIGKILLed mid-conversation: the participant keeps talking, leaves and comes back,
a new participant arrives, and after Redis returns the store holds every turn and every increment.
"""

from __future__ import annotations

from livekit.agents import llm

from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import Job, JobFactory
from tests.fallback.conftest import KillableRedis

NEW = DEFAULT_NEW["en"]


def welcome(visit: int) -> str:
    return DEFAULT_RETURNING["en"].format(visit=visit)


async def _visit(job: Job, clock: VirtualClock, identity: str, *lines: str) -> list[llm.ChatMessage]:
    """Arrive, say ``lines``, leave, let 20 s pass; returns the conversation items of this visit."""
    first = len(job.items)
    await job.arrive(identity)
    for line in lines:
        await job.say_user(line)
    await job.leave(identity)
    clock.advance(20)
    return job.items[first:]


async def _assert_turns(store: SessionStore, identity: str, items: list[llm.ChatMessage]) -> None:
    turns = await store.recent_turns(identity)
    assert [t.item_id for t in turns] == [item.id for item in items]  # every turn, once, in time order
    assert [t.timestamp for t in turns] == sorted(t.timestamp for t in turns)
    assert [t.text for t in turns] == [item.text_content for item in items]


async def test_a_redis_killed_mid_conversation_loses_no_turn_increment_or_greeting(
    killable_redis: KillableRedis, clock: VirtualClock, make_job: JobFactory
) -> None:
    primary = open_store(killable_redis.url, clock=clock)
    check = open_store(killable_redis.url, clock=clock)
    try:
        job = await make_job(primary, fallback=True, store_timeout=1.0)
        fallback = job.persistence.fallback
        assert fallback is not None
        fallback.retry_interval = 3600  # reconcile when the test says so (retry_now), not by the clock

        ada = await _visit(job, clock, "ada", "Book a table for two.")
        first = len(job.items)
        await job.arrive("ada")
        await job.say_user("At eight, please.")
        killable_redis.kill()  # mid-conversation
        await job.say_user("Actually make it three people.")
        assert fallback.degraded
        await job.leave("ada")
        clock.advance(20)
        ada += job.items[first:]
        ada += await _visit(job, clock, "ada", "Still three people?")  # a return during the outage
        bob = await _visit(job, clock, "bob", "I am new here.")  # first seen during the outage
        first = len(job.items)
        await job.arrive("ada")  # back again, and still here when Redis returns
        await job.say_user("Thanks!")
        ada += job.items[first:]

        killable_redis.start()
        assert await fallback.retry_now() is True
        assert job.said.count(NEW) == 2  # ada's first visit, bob's
        for visit in (2, 3, 4):
            assert job.said.count(welcome(visit)) == 1  # once per return, across the switch
        assert job.persistence.store_failures == 0  # the agent never saw the outage

        session = await check.require("ada")
        assert (session.reconnect_count, session.connected) == (3, True)
        await _assert_turns(check, "ada", ada)
        assert await check.claim_greeting("ada") is False  # the greeting given offline is not owed again
        created = await check.require("bob")
        assert (created.reconnect_count, created.connected) == (0, False)
        await _assert_turns(check, "bob", bob)

        await job.leave("ada")  # after the switch back: Redis again
        clock.advance(20)
        await job.arrive("ada")
        assert job.said[-1] == welcome(5)
        assert (await check.require("ada")).reconnect_count == 4
    finally:
        await check.close()
        await primary.close()


async def test_a_hung_redis_still_greets_within_the_store_budget(
    killable_redis: KillableRedis, clock: VirtualClock, make_job: JobFactory
) -> None:
    primary = open_store(killable_redis.url, clock=clock)
    try:
        job = await make_job(primary, fallback=True, store_timeout=0.4)
        await _visit(job, clock, "cy", "Hello.")
        killable_redis.pause()  # connections stay open, nothing answers
        await job.arrive("cy")
        decision = job.decisions[-1]
        assert job.said[-1] == welcome(2)  # known to this worker: welcomed back from memory
        assert decision.store_ok and decision.elapsed < 0.4
        assert job.persistence.fallback is not None and job.persistence.fallback.degraded
    finally:
        killable_redis.resume()
        await primary.close()
