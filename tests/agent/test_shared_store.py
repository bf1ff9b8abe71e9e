"""Persistence across processes: a worker restart on one SQLite file / Redis, and two agents on one Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.agent.history import RESTORED_MARK
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from tests.agent.conftest import Job, JobFactory
from tests.conftest import store_url_for


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_restarted_worker_recognises_the_participant_and_continues(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: VirtualClock, make_job: JobFactory
) -> None:
    url = store_url_for(backend, tmp_path, request)
    before = open_store(url, clock=clock)
    first = await make_job(before)
    await first.arrive("user-1")
    await first.say_user("Book the table for Friday.")
    await first.close()  # the job ends (worker restart): the participant is recorded as gone
    await before.close()
    clock.advance(20)

    after = open_store(url, clock=clock)  # a fresh handle, as a new worker process would open
    second = await make_job(after)
    try:
        await second.arrive("user-1")
        assert second.said == [DEFAULT_RETURNING["en"].format(visit=2)]
        await second.say_user("Is it booked?")
        restored = [
            (m.role, m.text_content) for m in second.llm.calls[-1].messages() if m.extra.get(RESTORED_MARK)
        ]
        assert ("user", "Book the table for Friday.") in restored
        assert ("assistant", DEFAULT_NEW["en"]) in restored
    finally:
        await second.close()
        await after.close()


async def test_two_agents_sharing_redis_greet_each_return_once(
    tmp_path: Path, request: pytest.FixtureRequest, clock: VirtualClock, make_job: JobFactory
) -> None:
    url = store_url_for("redis", tmp_path, request)
    stores = [open_store(url, clock=clock), open_store(url, clock=clock)]
    try:
        agents = [await make_job(store) for store in stores]
        await _arrive_everywhere(agents, "user-1")
        assert sum(len(a.said) for a in agents) == 1
        for visit in range(2, 5):
            for agent in agents:
                agent.events.leave("user-1")
            await asyncio.gather(*(a.persistence.wait_idle() for a in agents))
            clock.advance(3)
            spoken = [len(a.said) for a in agents]
            await _arrive_everywhere(agents, "user-1")
            greetings = [text for a, n in zip(agents, spoken, strict=True) for text in a.said[n:]]
            assert len(greetings) == 1, f"return {visit - 1}: {greetings}"
            assert greetings[0].startswith("Welcome back!")
    finally:
        for store in stores:
            await store.close()


async def _arrive_everywhere(agents: list[Job], identity: str) -> None:
    """The same participant joins both agents' rooms at the same moment."""
    for agent in agents:
        agent.events.join(identity)
        agent.events.activate(identity)
    await asyncio.gather(*(a.persistence.wait_idle() for a in agents))
