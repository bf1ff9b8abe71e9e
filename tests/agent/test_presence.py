"""Presence per connection on the agent side: two agents, a job dying, device switches (issue 11).

Real controllers, real AgentSessions, real rtc.Rooms fed with events; memory, SQLite and Redis stores.
Each job is one store connection; the store decides the visit and who greets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit import rtc

from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.agent.presence import DEVICE_ATTRIBUTE, DEVICE_LABEL_ATTRIBUTE, device_of, number_hasher
from lkpersist.clock import VirtualClock
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.model.presence import MAX_DEVICE_CHARS
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import Job, JobFactory
from tests.conftest import store_url_for

DUPLICATE = rtc.DisconnectReason.DUPLICATE_IDENTITY
SWITCH_LINE = "You're now on your other device."
LAPTOP = {DEVICE_ATTRIBUTE: "laptop-1", DEVICE_LABEL_ATTRIBUTE: "Firefox on Linux"}
PHONE = {DEVICE_ATTRIBUTE: "phone-1", DEVICE_LABEL_ATTRIBUTE: "Chrome on Android"}


def welcome(visit: int) -> str:
    return DEFAULT_RETURNING["en"].format(visit=visit)


async def _two_agents_serving(store: SessionStore, make_job: JobFactory, identity: str = "user-1") -> tuple[Job, Job]:
    """Two agent jobs on ``store``, the participant arrived at both (the first one greets)."""
    a, b = await make_job(store), await make_job(store)
    await a.arrive(identity)
    await b.arrive(identity)
    return a, b


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[SessionStore]:
    """One store per backend on the virtual clock, shared by every job of the test."""
    store = open_store(store_url_for(str(request.param), tmp_path, request), clock=clock)
    yield store
    await store.close()


async def test_each_controller_is_one_connection_of_the_visit(shared: SessionStore, make_job: JobFactory) -> None:
    a, b = await make_job(shared), await make_job(shared)
    assert a.persistence.connection != b.persistence.connection
    assert a.persistence.connection.startswith("agent:local:")
    await a.arrive("user-1")
    await b.arrive("user-1")
    session = await shared.require("user-1")
    assert sorted(c.id for c in session.connections) == sorted([a.persistence.connection, b.persistence.connection])
    assert (session.visit, a.said + b.said) == (1, [DEFAULT_NEW["en"]])
    assert [d.greet for d in a.decisions + b.decisions] == [True, False]


async def test_the_ordering_that_owed_a_second_greeting(
    shared: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    """Agent A's leave, join and claim all happen before B's leave: the visit never ended, so nobody is
    greeted again and the visit number does not move (it rose by two per return before)."""
    a, b = await _two_agents_serving(shared, make_job)
    await a.leave("user-1")
    clock.advance(2)
    await a.arrive("user-1")
    await b.leave("user-1")
    await b.arrive("user-1")
    assert a.said + b.said == [DEFAULT_NEW["en"]]
    assert (await shared.require("user-1")).reconnect_count == 0
    for job in (a, b):  # a real return now: both leave, then both come back
        await job.leave("user-1")
    clock.advance(5)
    spoken = len(a.said) + len(b.said)
    await b.arrive("user-1")
    await a.arrive("user-1")
    assert (a.said + b.said)[spoken:] == [welcome(2)]
    assert [d.visit for d in (a.decisions[-1], b.decisions[-1])] == [2, 2]
    assert (await shared.require("user-1")).reconnect_count == 1


async def test_a_second_agent_joining_a_return_gets_the_turns_without_greeting(
    shared: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    first = await make_job(shared)
    await first.arrive("user-1")
    await first.say_user("Book the table for Friday.")
    await first.leave("user-1")
    clock.advance(10)
    greeter, listener = await make_job(shared), await make_job(shared)
    await greeter.arrive("user-1")
    await listener.arrive("user-1")
    assert (greeter.said, listener.said) == ([welcome(2)], [])
    assert listener.decisions[-1].greet is False and listener.decisions[-1].restored_turns >= 2
    await listener.say_user("Is it booked?")
    received = [m.text_content for m in listener.llm.calls[-1].messages()]
    assert "Book the table for Friday." in received


async def test_a_job_that_dies_goes_stale_and_does_not_hold_the_visit_open(
    shared: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    """A SIGKILLed worker sends no leave: its connection keeps the visit open only until it is stale."""
    dead, alive = await _two_agents_serving(shared, make_job)
    # ``dead`` is killed: from now on nothing of it reaches the store (no events, no heartbeats)
    await alive.leave("user-1")
    clock.advance(10)
    await alive.arrive("user-1")  # within presence_timeout: the dead job still counts, the visit goes on
    assert alive.said == [] and alive.decisions[-1].visit == 1
    live = {c.id for c in (await shared.require("user-1")).connections}
    assert live == {dead.persistence.connection, alive.persistence.connection}
    await alive.leave("user-1")
    clock.advance(shared.ttl_policy.presence_timeout + 1)
    await alive.arrive("user-1")
    assert alive.said == [welcome(2)]
    session = await shared.require("user-1")
    assert [c.id for c in session.connections] == [alive.persistence.connection]


async def test_heartbeats_keep_a_long_visit_live_and_rearrive_when_the_store_lost_it(
    shared: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    a, b = await _two_agents_serving(shared, make_job)
    for _ in range(4):  # 4 × 60 s: well past presence_timeout, each connection beating
        clock.advance(60)
        await a.persistence.heartbeat_now()
        await b.persistence.heartbeat_now()
    session = await shared.require("user-1")
    assert len(session.connections) == 2 and session.visit == 1
    await shared.delete("user-1")  # e.g. removed by an operator while the participant talks
    await a.persistence.heartbeat_now()
    session = await shared.require("user-1")
    assert [c.id for c in session.connections] == [a.persistence.connection]
    assert a.said + b.said == [DEFAULT_NEW["en"]]  # nobody greets mid-conversation


async def test_a_device_switch_continues_the_visit(shared: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(shared, switch_line=SWITCH_LINE)
    await job.arrive("user-1", attributes=LAPTOP)
    await job.say_user("Book the table for Friday.")
    await job.leave("user-1", DUPLICATE)
    spoken = len(job.said)
    await job.arrive("user-1", attributes=PHONE)
    assert job.said[spoken:] == [SWITCH_LINE]
    decision = job.decisions[-1]
    assert (decision.switched, decision.greet, decision.returning, decision.visit) == (True, False, False, 1)
    session = await shared.require("user-1")
    assert session.reconnect_count == 0
    devices = {d.device_id: d.label for d in session.devices}
    assert devices == {"laptop-1": "Firefox on Linux", "phone-1": "Chrome on Android"}
    assert "attributes" not in session.metadata or DEVICE_ATTRIBUTE not in session.metadata["attributes"]
    await job.say_user("Is it booked?")
    received = [m.text_content for m in job.llm.calls[-1].messages()]
    assert received.count("Book the table for Friday.") == 1  # the context went on, nothing doubled


async def test_a_switch_with_two_agents_is_said_once_and_silent_without_a_line(
    shared: SessionStore, make_job: JobFactory
) -> None:
    a = await make_job(shared, switch_line=SWITCH_LINE)
    b = await make_job(shared)  # no switch_line: silent
    for job in (a, b):
        await job.arrive("user-1", attributes=LAPTOP)
    for job in (a, b):
        job.events.leave("user-1", DUPLICATE)
    await asyncio.gather(a.persistence.wait_idle(), b.persistence.wait_idle())
    spoken = (len(a.said), len(b.said))
    for job in (a, b):
        await job.arrive("user-1", attributes=PHONE)
    assert (a.said[spoken[0]:], b.said[spoken[1]:]) == ([SWITCH_LINE], [])
    assert [d.switched for d in (a.decisions[-1], b.decisions[-1])] == [True, False]
    assert (await shared.require("user-1")).reconnect_count == 0


async def test_no_arrival_within_the_switch_grace_is_a_return(
    shared: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    job = await make_job(shared, switch_line=SWITCH_LINE)
    await job.arrive("user-1", attributes=LAPTOP)
    await job.leave("user-1", DUPLICATE)
    clock.advance(30)  # past the switch grace (5 s): the visit ended at the leave
    await job.arrive("user-1", attributes=PHONE)
    assert job.said == [DEFAULT_NEW["en"], welcome(2)]
    assert job.decisions[-1].switched is False


async def test_a_hostile_device_attribute_is_bounded_and_escaped(shared: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(shared)
    hostile = "\x1b[31m" + "x" * 10_000 + "\n\x00"
    await job.arrive("user-1", attributes={DEVICE_ATTRIBUTE: hostile, DEVICE_LABEL_ATTRIBUTE: "\x07" * 500})
    [device] = (await shared.require("user-1")).devices
    for text in (device.device_id, device.label):
        assert len(text) <= MAX_DEVICE_CHARS
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
    assert device.device_id.startswith("\\x1b[31mxxx")
    assert job.said == [DEFAULT_NEW["en"]]


async def test_without_the_attribute_the_device_comes_from_livekit(make_job: JobFactory, clock: VirtualClock) -> None:
    job: Job = await make_job(open_store("memory://", clock=clock))
    browser = job.events.join("web-user")
    caller = job.events.join("caller", kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
                             attributes={"sip.phoneNumber": "+15550100"})
    assert (device_of(browser).device_id, device_of(browser).label) == ("livekit:standard", "LiveKit standard client")
    assert (device_of(caller).device_id, device_of(caller).label) == ("sip:" + hashlib.sha256(b"+15550100").hexdigest()[:12], "phone ending 0100")


async def test_an_encrypted_store_keeps_a_keyed_digest_of_a_callers_number(
    make_job: JobFactory, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain sha256 of a phone number is reversed by trying every number; devices are not encrypted,
    so an encrypted store keys the digest (the same key for every worker: the same caller, one device)."""
    monkeypatch.delenv("LKPERSIST_IDENTITY_KEY", raising=False)
    key = generate_key()
    store = open_store("memory://", clock=clock, codec=FernetCodec([key]))
    job = await make_job(store)
    await job.arrive("caller", kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP, attributes={"sip.phoneNumber": "+15550100"})
    [device] = (await store.require("caller")).devices
    plain = hashlib.sha256(b"+15550100").hexdigest()[:12]
    assert device.device_id.startswith("sip:k") and plain not in device.device_id
    assert device.label == "phone ending 0100"
    other_worker = number_hasher(open_store("memory://", clock=clock, codec=FernetCodec([key])))
    assert other_worker is not None and device.device_id == f"sip:k{other_worker.digest('+15550100')[:16]}"
    another_key = number_hasher(open_store("memory://", clock=clock, codec=FernetCodec([generate_key()])))
    assert another_key is not None and device.device_id != f"sip:k{another_key.digest('+15550100')[:16]}"
    assert number_hasher(open_store("memory://", clock=clock)) is None


async def test_the_greeting_decision_of_a_return_is_one_redis_command(
    tmp_path: Path, request: pytest.FixtureRequest, clock: VirtualClock, make_job: JobFactory
) -> None:
    """Issue 13: the greeter's decision (visit, claim, recent turns) is one round trip; the second agent,
    which does not greet, reads the turns with a second. Redis itself lists what its clients sent
    (MONITOR; the commands a script runs inside Redis are tagged ``lua`` and are no round trips); only
    commands on this test's keys count, as the server is shared with the rest of the suite."""
    import redis

    seen: list[tuple[float, str, str]] = []
    monitor = redis.Redis.from_url(request.getfixturevalue("redis_url"))

    def listen() -> None:
        with contextlib.suppress(redis.ConnectionError), monitor.monitor() as feed:
            for item in feed.listen():
                seen.append((item["time"], item["client_type"], item["command"]))

    threading.Thread(target=listen, daemon=True).start()
    store = open_store(store_url_for("redis", tmp_path, request), clock=clock)
    try:
        first = await make_job(store)
        await first.arrive("user-1")
        await first.say_user("Book the table for Friday.")
        await first.leave("user-1")
        clock.advance(10)
        for _ in range(1000):  # MONITOR has started (it saw the first visit) before anything is counted
            if seen:
                break
            await asyncio.sleep(0.01)
        decided: list[float] = []
        greeter = await make_job(store, on_decision=lambda _d: decided.append(time.time()))
        other = await make_job(store, on_decision=lambda _d: decided.append(time.time()))
        spans = []
        for job in (greeter, other):
            started = time.time()
            await job.arrive("user-1")
            spans.append((started, decided[-1]))
        await store.count()  # sent after both: once MONITOR shows it, it has shown everything before
        for _ in range(1000):  # at most 10 s
            if any(t > spans[-1][1] and kind != "lua" for t, kind, _ in seen):
                break
            await asyncio.sleep(0.01)
        ours = request.getfixturevalue("redis_prefix")  # this test's keys: other tests share the server
        sent = [[c.split()[0] for t, kind, c in seen if a <= t <= b and kind != "lua" and ours in c]
                for a, b in spans]
        assert (greeter.decisions[-1].greet, greeter.decisions[-1].restored_turns) == (True, 3)
        assert other.decisions[-1].greet is False and other.decisions[-1].restored_turns == 4  # + the welcome back
        assert [len(commands) for commands in sent] == [1, 2], sent
    finally:
        await store.close()
        monitor.close()


async def test_inside_a_job_the_connection_id_names_the_agent_and_the_job() -> None:
    from livekit.agents.testing import fake_job_context

    from lkpersist.agent.presence import connection_id

    with fake_job_context(job_id="AJ_abc123") as context:
        context.job.agent_name = "concierge"
        first, second = connection_id(), connection_id()
        assert connection_id("voice").startswith("voice:AJ_abc123:")
    assert first.startswith("concierge:AJ_abc123:") and first != second
    assert len(first.rsplit(":", 1)[1]) == 8
    assert connection_id().startswith("agent:local:")  # outside a job
