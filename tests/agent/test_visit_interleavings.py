"""Property-style: random interleavings of 2–3 real controllers and one participant keep the visit exact.

Each controller is a real agent job (its own AgentSession and rtc.Room, one store connection); they share
one store on a virtual clock. A seeded random schedule mixes the participant's joins, leaves, refreshes
and device switches (each event reaching the controllers one by one, in a random order, interleaved with
everything else and often without waiting for the store), heartbeats, small clock steps, and a
controller dying without a leave (a SIGKILLed worker: nothing of it reaches the store again, so its
connection goes stale after ``presence_timeout``), replaced by a new job. After the run, on every
backend: each visit the store opened was greeted by exactly one controller and spoken at most once,
every decision names a visit the store opened, and ``reconnect_count == visits - 1``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from livekit import rtc

from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.agent.presence import DEVICE_ATTRIBUTE
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import Job, JobFactory
from tests.conftest import store_url_for

IDENTITY = "user-1"
STEPS = 80
BEAT_EVERY = 40.0  # virtual seconds between the live controllers' heartbeats (presence_timeout is 90)
DUPLICATE = rtc.DisconnectReason.DUPLICATE_IDENTITY
CLIENT = rtc.DisconnectReason.CLIENT_INITIATED


@dataclass
class _Agent:
    job: Job
    pending: list[Callable[[], None]] = field(default_factory=list)
    alive: bool = True


@dataclass
class _World:
    """The schedule's state: the controllers, whether the participant is in the room, the clock."""

    store: SessionStore
    clock: VirtualClock
    make_job: JobFactory
    rng: random.Random
    agents: list[_Agent] = field(default_factory=list)
    present: bool = False
    device: int = 0
    last_beat: float = 0.0
    away_since: float = 0.0

    async def add_agent(self) -> None:
        agent = _Agent(await self.make_job(self.store, ready_timeout=0.2))
        self.agents.append(agent)
        if self.present:
            self._queue_join(agent)

    def live(self) -> list[_Agent]:
        return [a for a in self.agents if a.alive]

    def _queue_join(self, agent: _Agent) -> None:
        events, attributes = agent.job.events, {DEVICE_ATTRIBUTE: f"device-{self.device}"}
        agent.pending += [lambda: events.join(IDENTITY, attributes=attributes), lambda: events.activate(IDENTITY)]

    def join(self) -> None:
        self.present = True
        for agent in self.live():
            self._queue_join(agent)

    def leave(self, reason: rtc.DisconnectReason.ValueType) -> None:
        self.present, self.away_since = False, self.clock.now()
        for agent in self.live():
            events = agent.job.events
            agent.pending.append(lambda events=events: events.leave(IDENTITY, reason))  # type: ignore[misc]

    def deliver_one(self) -> None:
        waiting = [a for a in self.live() if a.pending]
        if waiting:
            self.rng.choice(waiting).pending.pop(0)()

    def deliver_all(self) -> None:
        while any(a.pending for a in self.live()):
            self.deliver_one()

    async def settle(self) -> None:
        self.deliver_all()
        await asyncio.gather(*(a.job.persistence.wait_idle() for a in self.live()))

    async def tick(self, seconds: float) -> None:
        if self.clock.now() - self.last_beat + seconds >= BEAT_EVERY:
            await self.settle()  # the live controllers beat before their connections could go stale
            await asyncio.gather(*(a.job.persistence.heartbeat_now() for a in self.live()))
            self.last_beat = self.clock.now()
        self.clock.advance(seconds)

    async def kill(self) -> None:
        """One controller dies without a leave; a new job takes its place."""
        victim = self.rng.choice(self.live())
        await victim.job.persistence.wait_idle()  # what it was doing reached the store; nothing after
        victim.alive, victim.pending = False, []
        await self.add_agent()


async def _step(world: _World) -> None:
    rng = world.rng
    move = rng.choices(
        ["join", "leave", "refresh", "switch", "deliver", "settle", "tick", "kill"],
        weights=[3, 3, 2, 1, 6, 3, 3, 1],
    )[0]
    away_too_long = not world.present and world.clock.now() - world.away_since > 120  # keep inside the TTL
    if move == "join" and not world.present or away_too_long:
        world.join()
    elif move == "leave" and world.present:
        world.leave(CLIENT)
    elif move in ("refresh", "switch") and world.present:
        world.leave(DUPLICATE if move == "switch" else CLIENT)
        world.device += move == "switch"
        world.join()
    elif move == "deliver":
        world.deliver_one()
    elif move == "settle":
        await world.settle()
    elif move == "tick":
        await world.tick(rng.choice([1.0, 3.0, 7.0, 20.0]))
    elif move == "kill":
        await world.kill()


def _check(world: _World, visits: int) -> None:
    decisions = [d for a in world.agents for d in a.job.decisions]
    assert decisions and all(d.store_ok for d in decisions)
    seen = sorted({d.visit for d in decisions})
    assert seen == list(range(1, visits + 1)), f"decisions saw visits {seen}, the store opened {visits}"
    greeters = {v: sum(d.greet for d in decisions if d.visit == v) for v in seen}
    assert all(count == 1 for count in greeters.values()), f"greetings claimed per visit: {greeters}"
    said = [text for a in world.agents for text in a.job.said]
    spoken = {v: said.count(DEFAULT_NEW["en"] if v == 1 else DEFAULT_RETURNING["en"].format(visit=v)) for v in seen}
    assert all(count <= 1 for count in spoken.values()), f"greetings spoken per visit: {spoken}"


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[SessionStore]:
    store = open_store(store_url_for(str(request.param), tmp_path, request), clock=clock)
    yield store
    await store.close()


@pytest.mark.parametrize("seed", [11, 23, 37, 41, 53, 67, 79, 97])
async def test_random_interleavings_greet_each_visit_once(
    shared: SessionStore, clock: VirtualClock, make_job: JobFactory, seed: int
) -> None:
    rng = random.Random(seed)
    world = _World(shared, clock, make_job, rng, last_beat=clock.now())
    for _ in range(rng.choice([2, 3])):
        await world.add_agent()
    world.join()
    for _ in range(STEPS):
        await _step(world)
    await world.settle()
    if world.present:  # end on a clean return, so its greeting must have been spoken exactly once
        world.leave(CLIENT)
    await world.settle()
    clock.advance(shared.ttl_policy.presence_timeout + 10)  # the dead controllers are stale by now
    world.last_beat = clock.now()
    spoken = [len(a.job.said) for a in world.agents]
    world.join()
    await world.settle()
    session = await shared.require(IDENTITY)
    _check(world, session.visit)
    assert session.reconnect_count == session.visit - 1
    last = DEFAULT_NEW["en"] if session.visit == 1 else DEFAULT_RETURNING["en"].format(visit=session.visit)
    assert [t for a, n in zip(world.agents, spoken, strict=True) for t in a.job.said[n:]] == [last]
    assert sorted(c.id for c in session.connections) == sorted(a.job.persistence.connection for a in world.live())
