"""The presence contract: connections, visits, one greeting per visit, device switches, devices.

One suite over the backends in PRESENCE_BACKENDS (the rule is :mod:`lkpersist.model.presence`). Time is
a VirtualClock; the presence timeout is the default 90 s and the switch grace the default 5 s.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.presence import MAX_DEVICE_CHARS, MAX_DEVICES, DeviceSeen
from lkpersist.model.session import Connection, Device, Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord
from lkpersist.stores.base import SessionStore
from tests.events.conftest import kinds, take

PRESENCE_BACKENDS = ("memory", "sqlite", "redis", "redis-cluster")
"""The backends that keep presence per connection: all of them (Redis and its Cluster included)."""


@pytest.fixture(params=PRESENCE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _ids(session: object) -> list[str]:
    return sorted(c.id for c in session.connections)  # type: ignore[attr-defined]


async def test_first_arrival_opens_visit_one_and_holds_its_greeting(store: SessionStore, clock: VirtualClock) -> None:
    arrival = await store.arrive("ann", "agent:job1:a")
    assert (arrival.new_visit, arrival.returning, arrival.visit, arrival.greet, arrival.switched) == (
        True, False, 1, True, False
    )
    assert arrival.turns == []
    (connection,) = arrival.session.connections
    assert connection.id == "agent:job1:a"
    assert connection.since == pytest.approx(clock.now()) and connection.last_beat == pytest.approx(clock.now())
    assert arrival.session.connected is True and arrival.session.greeted_visit == 1
    assert await store.claim_greeting("ann") is False


async def test_a_second_connection_joins_the_visit(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("ann", "a")
    clock.advance(5)
    second = await store.arrive("ann", "b")
    assert (second.new_visit, second.returning, second.visit, second.greet) == (False, False, 1, False)
    assert _ids(second.session) == ["a", "b"]
    assert second.session.reconnect_count == 0


async def test_a_repeated_arrival_refreshes_its_connection(store: SessionStore, clock: VirtualClock) -> None:
    first = await store.arrive("ann", "a")
    clock.advance(20)
    again = await store.arrive("ann", "a")
    assert again.new_visit is False and again.greet is False
    (connection,) = again.session.connections
    assert connection.since == pytest.approx(first.session.connections[0].since)
    assert connection.last_beat == pytest.approx(clock.now())


async def test_only_the_last_leave_ends_the_visit(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("bo", "a")
    await store.arrive("bo", "b")
    clock.advance(10)
    after_a = await store.leave("bo", "a")
    assert after_a is not None and after_a.connected is True and _ids(after_a) == ["b"]
    assert after_a.expires_at is None
    clock.advance(10)
    after_b = await store.leave("bo", "b")
    assert after_b is not None and after_b.connected is False and after_b.connections == ()
    assert after_b.expires_at == pytest.approx(clock.now() + 300)
    back = await store.arrive("bo", "c")
    assert (back.new_visit, back.returning, back.visit, back.greet) == (True, True, 2, True)
    assert back.session.reconnect_count == 1 and back.session.ttl == 600


async def test_a_leave_of_an_unknown_connection_changes_nothing(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("cy", "a")
    clock.advance(3)
    session = await store.leave("cy", "never-arrived")
    assert session is not None and _ids(session) == ["a"] and session.connected is True
    assert await store.leave("nobody", "a") is None


async def test_a_stale_connection_is_dropped_and_its_beat_refused(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("dee", "alive")
    await store.arrive("dee", "killed")  # its worker is SIGKILLed: no leave, no more beats
    for _ in range(4):
        clock.advance(30)
        assert await store.beat("dee", "alive") is True
    assert await store.beat("dee", "killed") is False
    session = await store.require("dee")
    assert _ids(session) == ["alive"] and session.reconnect_count == 0


async def test_a_connection_is_live_up_to_the_presence_timeout(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("eve", "a")
    clock.advance(90)  # now - last_beat == presence_timeout: still live
    assert (await store.arrive("eve", "b")).new_visit is False
    clock.advance(90.001)
    assert await store.beat("eve", "a") is False
    assert await store.beat("eve", "b") is False


async def test_the_visit_of_a_dead_agent_ends_at_its_last_beat(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("fay", "a")
    clock.advance(30)
    assert await store.beat("fay", "a") is True
    last_beat = clock.now()
    clock.advance(91)
    session = await store.require("fay")
    assert session.connected is False and session.connections == ()
    assert session.expires_at == pytest.approx(last_beat + 300)
    back = await store.arrive("fay", "a")  # the same id coming back after going stale is a return
    assert (back.new_visit, back.returning, back.visit, back.greet) == (True, True, 2, True)


async def test_a_dead_agents_session_expires_from_its_last_beat(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("gil", "a")
    clock.advance(299.999)
    assert await store.get("gil") is not None
    clock.advance(0.001)
    assert await store.get("gil") is None
    fresh = await store.arrive("gil", "a")
    assert fresh.returning is False and fresh.visit == 1 and fresh.greet is True


async def test_exactly_one_greeting_per_visit_among_three_agents(store: SessionStore, clock: VirtualClock) -> None:
    for visit in range(1, 4):
        arrivals = [await store.arrive("hal", f"agent-{n}") for n in range(3)]
        assert [a.greet for a in arrivals] == [True, False, False]
        assert {a.visit for a in arrivals} == {visit}
        assert await store.claim_greeting("hal") is False
        for n in (2, 0, 1):
            await store.leave("hal", f"agent-{n}")
        clock.advance(10)
    assert (await store.require("hal")).reconnect_count == 2


async def test_claim_greeting_follows_the_same_rule(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("ivo")  # the single-connection form does not claim
    await store.arrive("ivo", "agent")  # joins the visit; the greeting is still owed, and arrive takes it
    assert await store.claim_greeting("ivo") is False
    await store.disconnect("ivo")
    await store.leave("ivo", "agent")
    assert await store.claim_greeting("ivo") is False  # no visit is going on
    clock.advance(1)
    await store.connect("ivo")
    assert await store.claim_greeting("ivo") is True
    assert (await store.arrive("ivo", "late-agent")).greet is False


async def test_a_device_switch_continues_the_visit(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("jo", "laptop-job", device=DeviceSeen.bounded("laptop", "Chrome on macOS"))
    clock.advance(60)
    kicked = await store.leave("jo", "laptop-job", reason="duplicate_identity")
    assert kicked is not None and kicked.connected is False
    clock.advance(4)
    phone = await store.arrive("jo", "phone-job", device=DeviceSeen.bounded("phone", "Safari on iOS"))
    assert (phone.switched, phone.new_visit, phone.returning, phone.greet, phone.visit) == (True, False, False, False, 1)
    assert phone.session.reconnect_count == 0 and phone.session.expires_at is None
    assert [d.device_id for d in phone.session.devices] == ["laptop", "phone"]
    assert phone.session.switch_until is None


async def test_a_switch_nobody_completes_ends_the_visit_at_the_leave(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("kim", "laptop-job")
    clock.advance(60)
    left_at = clock.now()
    await store.leave("kim", "laptop-job", reason="duplicate_identity")
    clock.advance(5)  # the grace is over at exactly switch_grace
    assert (await store.require("kim")).expires_at == pytest.approx(left_at + 300)
    late = await store.arrive("kim", "phone-job")
    assert (late.switched, late.new_visit, late.returning, late.greet, late.visit) == (False, True, True, True, 2)


async def test_an_ordinary_leave_is_never_a_switch(store: SessionStore, clock: VirtualClock) -> None:
    await store.arrive("lou", "a")
    await store.leave("lou", "a", reason="client_initiated")
    clock.advance(1)
    assert (await store.arrive("lou", "b")).returning is True


async def test_devices_are_recorded_with_first_and_last_seen(store: SessionStore, clock: VirtualClock) -> None:
    start = clock.now()
    await store.arrive("max", "a", device=DeviceSeen.bounded("laptop", "Firefox"))
    clock.advance(30)
    session = (await store.arrive("max", "a", device=DeviceSeen.bounded("laptop"))).session
    (device,) = session.devices
    assert (device.device_id, device.label) == ("laptop", "Firefox")  # an empty label keeps the known one
    assert device.first_seen == pytest.approx(start) and device.last_seen == pytest.approx(clock.now())
    assert (await store.require("max")).devices == session.devices


async def test_at_most_eight_devices_the_least_recently_seen_dropped(store: SessionStore, clock: VirtualClock) -> None:
    for n in range(MAX_DEVICES + 2):
        await store.arrive("ned", "a", device=DeviceSeen.bounded(f"device-{n}"))
        clock.advance(1)
    await store.arrive("ned", "a", device=DeviceSeen.bounded("device-2"))  # seen again: now the newest
    ids = [d.device_id for d in (await store.require("ned")).devices]
    assert ids == [f"device-{n}" for n in (3, 4, 5, 6, 7, 8, 9, 2)]
    assert len(ids) == MAX_DEVICES


async def test_a_hostile_device_attribute_is_bounded_and_escaped(store: SessionStore) -> None:
    hostile = "\x1b[31m" + "x" * 10_000 + "\n\u2028"
    arrival = await store.arrive("oz", "a", device=DeviceSeen(hostile, "evil\r\nlabel\x00" * 1000))
    (device,) = (await store.require("oz")).devices
    assert arrival.session.devices == (device,)
    for text in (device.device_id, device.label):
        assert len(text) <= MAX_DEVICE_CHARS
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in text)
    assert device.device_id.startswith("\\x1b[31mxxx")
    assert device.label.startswith("evil\\x0d\\x0alabel\\x00")


@pytest.mark.parametrize("connection", ["", "x" * 201, "job\nid", "tab\tid", "\x7f"])
async def test_bad_connection_ids_are_refused(store: SessionStore, connection: str) -> None:
    with pytest.raises(InvalidInputError):
        await store.arrive("pat", connection)
    with pytest.raises(InvalidInputError):
        await store.beat("pat", connection)
    with pytest.raises(InvalidInputError):
        await store.leave("pat", connection)
    assert await store.get("pat") is None  # nothing half-written


@pytest.mark.parametrize("count", [-1, 10_001, 2.5, True])
async def test_bad_restore_turn_counts_are_refused(store: SessionStore, count: object) -> None:
    with pytest.raises(InvalidInputError):
        await store.arrive("pat", "a", restore_turns=count)  # type: ignore[arg-type]
    assert await store.get("pat") is None


async def test_an_empty_device_id_is_refused(store: SessionStore) -> None:
    with pytest.raises(InvalidInputError):
        await store.arrive("pat", "a", device=DeviceSeen("", "label"))
    assert await store.get("pat") is None


async def test_turns_come_with_the_greeting_of_a_return_only(store: SessionStore, clock: VirtualClock) -> None:
    first = await store.arrive("quin", "a", restore_turns=5)
    assert first.greet is True and first.turns == []  # a first visit has nothing to restore
    turns = [Turn("user" if n % 2 else "assistant", f"t{n}", clock.now() + n, f"id{n}") for n in range(8)]
    for turn in turns:
        await store.append_turn("quin", turn)
    await store.update("quin", context={"summary": "asked about trains"})
    await store.leave("quin", "a")
    clock.advance(30)
    greeter = await store.arrive("quin", "a", restore_turns=3)
    assert greeter.greet is True and greeter.turns == turns[-3:]
    assert greeter.session.context["summary"] == "asked about trains"
    other = await store.arrive("quin", "b", restore_turns=3)
    assert other.greet is False and other.turns == []


async def test_the_single_connection_form_is_connection_dash(store: SessionStore, clock: VirtualClock) -> None:
    first = await store.connect("ray")
    assert _ids(first.session) == ["-"] and first.returning is False and first.was_connected is False
    again = await store.connect("ray")  # a repeated event: the same connection, never a reconnect
    assert again.was_connected is True and again.session.reconnect_count == 0
    clock.advance(30)
    assert await store.heartbeat("ray") is True
    assert await store.beat("ray", "-") is True
    left = await store.disconnect("ray")
    assert left is not None and left.connected is False
    assert await store.heartbeat("ray") is False  # not live: the caller connects again
    back = await store.connect("ray")
    assert back.returning is True and back.was_connected is False and back.session.reconnect_count == 1


async def test_a_beat_on_a_gone_session_is_false(store: SessionStore, clock: VirtualClock) -> None:
    assert await store.beat("sam", "a") is False
    await store.arrive("sam", "a")
    await store.leave("sam", "a")
    clock.advance(301)
    assert await store.beat("sam", "a") is False


async def test_presence_events(store: SessionStore, clock: VirtualClock) -> None:
    """Joining a visit or leaving while others stay publishes nothing; the visit's ends do."""
    async with store.events("tom") as stream:
        await store.arrive("tom", "a")
        await store.arrive("tom", "b")
        await store.leave("tom", "a")
        await store.leave("tom", "b")
        await store.arrive("tom", "a")
        await store.delete("tom")  # the marker: nothing else may come before it
        events = await take(stream, 4)
    assert kinds(events) == [("created", "tom", 0), ("disconnected", "tom", 0), ("returned", "tom", 1), ("deleted", "tom", 1)]


async def test_devices_and_the_greeted_visit_travel_but_connections_do_not(
    store: SessionStore, clock: VirtualClock
) -> None:
    now = clock.now()
    laptop, phone = Device("laptop", "Chrome", now - 900, now - 600), Device("phone", "Safari", now - 500, now - 20)
    exported = Session(
        identity="uma", joined_at=now - 1000, last_seen=now - 10, reconnect_count=2, connected=True, ttl=600.0,
        greeted_visit=3, connections=(Connection("agent:job", now - 100, now - 10),), devices=(laptop, phone),
    )
    assert await store.import_records([SessionRecord(exported)]) == [ImportOutcome.CREATED]
    (page,) = [page async for page in store.iter_records("all", ["uma"])]
    (record,) = page
    assert isinstance(record, SessionRecord)
    assert (record.session.devices, record.session.greeted_visit) == ((laptop, phone), 3)
    assert record.session.connections == () and record.session.connected is False
    tablet = Device("tablet", "Firefox", now - 50, now - 5)
    other = replace(exported, devices=(replace(laptop, first_seen=now - 2000, last_seen=now - 400), tablet))
    assert await store.import_records([SessionRecord(other)], "merge") == [ImportOutcome.MERGED]
    merged = await store.require("uma")
    assert [(d.device_id, d.first_seen, d.last_seen) for d in merged.devices] == [
        ("laptop", now - 2000, now - 400), ("phone", now - 500, now - 20), ("tablet", now - 50, now - 5)
    ]
    assert (await store.arrive("uma", "agent")).greet is True  # visit 4 is owed its greeting


def test_a_session_line_keeps_devices_and_reads_the_release_before(clock: VirtualClock) -> None:
    now = clock.now()
    session = Session("vic", now - 60, now, 1, devices=(Device("d", "l", now - 60, now),), greeted_visit=2)
    assert Session.from_dict(session.to_dict()) == session
    old_line = {k: v for k, v in session.to_dict().items() if k not in ("greeted_visit", "connections", "devices")}
    owed = Session.from_dict({**old_line, "connected": True, "disconnect_count": 1, "greeted_epoch": 0})
    assert (owed.greeted_visit, [c.id for c in owed.connections]) == (1, ["-"])  # owed there: owed here
    greeted = Session.from_dict({**old_line, "connected": False, "disconnect_count": 2, "greeted_epoch": 1})
    assert greeted.greeted_visit == 2 and greeted.connections == ()
