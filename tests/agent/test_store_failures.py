"""A dead, slow or failing store never crashes the agent and never holds the greeting past its budget."""

from __future__ import annotations

import asyncio
from typing import Any

from lkpersist.agent.greetings import DEFAULT_NEW
from lkpersist.clock import VirtualClock
from lkpersist.exceptions import StoreUnavailableError
from lkpersist.model.results import Arrival
from lkpersist.stores import open_store
from lkpersist.stores.memory import MemoryStore
from tests.agent.conftest import JobFactory
from tests.conftest import free_port

BUDGET = 0.3


class SlowStore(MemoryStore):
    """A real memory store behind a slow link: every arrival takes ``delay`` seconds."""

    def __init__(self, delay: float, **options: Any) -> None:
        super().__init__(**options)
        self.delay = delay

    async def arrive(self, identity: str, connection: str, **options: Any) -> Arrival:
        await asyncio.sleep(self.delay)
        return await super().arrive(identity, connection, **options)


class BrokenStore(MemoryStore):
    """A store whose backend refuses every call, as an unreachable server does."""

    async def arrive(self, identity: str, connection: str, **options: Any) -> Arrival:
        raise StoreUnavailableError("backend refused the connection")

    async def leave(self, identity: str, connection: str, **options: Any) -> None:
        raise StoreUnavailableError("backend refused the connection")


async def _time_to_greeting(make_job: JobFactory, store: Any) -> tuple[float, Any]:
    job = await make_job(store, store_timeout=BUDGET)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await job.arrive("user-1")
    return loop.time() - started, job


async def test_a_dead_redis_costs_at_most_the_budget(make_job: JobFactory, clock: VirtualClock) -> None:
    store = open_store(f"redis://127.0.0.1:{free_port()}/0", clock=clock)  # nothing listens there
    try:
        elapsed, job = await _time_to_greeting(make_job, store)
        assert job.said == [DEFAULT_NEW["en"]]
        assert elapsed < BUDGET + 0.5
        assert job.persistence.store_failures >= 1
        assert job.decisions[0].store_ok is False
        await job.leave("user-1")  # leaving with the store down is logged, not raised
    finally:
        await store.close()


async def test_a_slow_store_is_cut_off_and_the_agent_greets_as_new(make_job: JobFactory) -> None:
    elapsed, job = await _time_to_greeting(make_job, SlowStore(delay=5.0))
    assert job.said == [DEFAULT_NEW["en"]]
    assert BUDGET - 0.05 <= elapsed < BUDGET + 0.5
    assert job.persistence.store_failures >= 1
    assert job.decisions[0].store_ok is False


async def test_a_failing_store_is_counted_and_the_agent_carries_on(make_job: JobFactory) -> None:
    store = BrokenStore()
    job = await make_job(store, store_timeout=BUDGET)
    await job.arrive("user-1")
    reply = await job.say_user("Can you hear me?")
    await job.leave("user-1")
    assert job.said == [DEFAULT_NEW["en"], reply]
    assert job.persistence.store_failures >= 2  # arrive, then leave (turn appends fail too)
