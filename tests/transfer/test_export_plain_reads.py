"""Redis export by plain commands (``stores/redis/snapshots.py`` over ``wire.py``: a MULTI/EXEC of five
commands a member, read by a hiredis Reader of our own) gives exactly what the ``READ_RECORDS`` script
gives: the same lines byte for byte and the same damaged records reported, over RESP3 and RESP2; a
damaged value is never written as if it were fine (the page's metadata and context are read in one
pass, each value still on its own); a wrong-type key fails the export as the script did; a stopped
export leaves no connection half-read; a step reads at most a page of members, however big a bucket."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import CorruptRecordError
from lkpersist.model.jsonform import parse_json_texts
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Device, Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore, wire
from lkpersist.stores.redis.snapshots import _payloads
from lkpersist.transfer.export import export_sessions


def _record(clock: VirtualClock, index: int) -> SessionRecord:
    now = clock.now()
    metadata = [{"plan": "pro"}, {}, {"big": 2**70, "neg": -(2**65)}, {"deep": [[{"x": [1.5, None, True]}]]},
                {"f": 1e-7, "g": 1e16, "u": "é «»\u2028\x01"}][index % 5]
    devices = (Device(f"d{index}", "a «phone», v2", now - 90, now - 20),) if index % 3 == 0 else ()
    session = Session(identity=f"plain-{index:03d}" if index % 4 else f"ü-{index} «x»", joined_at=now - 100 - index,
                      last_seen=now - 10, reconnect_count=index % 3, language=None if index % 5 == 0 else "en",
                      metadata=metadata, context={"c": [index, "x"]} if index % 2 else {}, expires_at=now + 500,
                      ttl=600.0, devices=devices)
    return SessionRecord(session, tuple(Turn(("user", "assistant")[t % 2], f"turn {t} «é» \n\"q\"", now - 50 + t,
                                             None if t % 3 == 1 else f"i-{index}-{t}") for t in range(index % 7)))


DAMAGE: dict[str, tuple[str, dict[str, Any]]] = {
    # identity: (which hash, fields written over the stored ones)
    "plain-001": ("metadata", {"bad": '{"a":'}),  # corrupt JSON in one metadata value
    "plain-002": ("context", {"bad": "not json"}),
    "plain-003": ("metadata", {"p1": "[1", "p2": "2]", "p3": "3,4"}),  # values that read as JSON only together
    "plain-005": ("metadata", {"bin": b"\xff\xfe"}),  # not UTF-8
    "plain-006": ("metadata", {b"\xff": '"x"'}),  # a field name that is not UTF-8
    "plain-007": ("session", {"j": "notanumber"}),
    "plain-009": ("session", {"c:bad": "zz"}),  # a malformed presence entry
}
ODD: dict[str, tuple[str, dict[str, Any]]] = {
    # read as the standard library reads them, written as before (the ordinary path)
    "plain-010": ("metadata", {"ws": ' { "a" : 1 } ', "nan": "NaN", "inf": "1e400"}),
    "plain-011": ("metadata", {"long": "1" * 25, "digits": '"' + "1" * 25 + '"'}),
    "plain-013": ("context", {"bigf": "18446744073709551616", "dup": '{"a":1,"a":2}'}),
    "plain-014": ("session", {"c": "1", "c:conn1": "1799999995000,1799999999000"}),  # connected: detached
    "plain-015": ("session", {"w": "1800000000000"}),  # a switch pending
}


@pytest.fixture
async def store(redis_url: str, redis_prefix: str, clock: VirtualClock) -> AsyncIterator[RedisStore]:
    """A store opened as the CLI opens one (its own client, from the URL)."""
    opened = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(opened, RedisStore)
    try:
        yield opened
    finally:
        await opened.close()


async def _fill(store: RedisStore, url: str, clock: VirtualClock) -> None:
    await store.import_records([_record(clock, index) for index in range(80)])
    client = redis.Redis.from_url(url)
    try:
        for identity, (kind, fields) in {**DAMAGE, **ODD}.items():
            client.hset(getattr(store.keys.keys_for(identity)[1], kind), mapping=fields)
        turns = store.keys.keys_for
        client.lset(turns("plain-017")[1].turns, 0, b"xx")  # a frame without its item-id prefix
        client.lset(turns("plain-018")[1].turns, 1, b"999:x")  # an item id longer than the frame
        client.lset(turns("plain-019")[1].turns, 0, b'-:{"role":"user","text":"t","timestamp":1,"item_id":null}')
    finally:
        client.close()


async def _export(store: RedisStore, *, script: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Any]]:
    with monkeypatch.context() as patch:
        if script:
            patch.setattr(wire, "usable", lambda client: False)
        out = io.StringIO()
        result = await export_sessions(store, out, status="all")
    lines = sorted(out.getvalue().split("\n")[1:])
    return lines, sorted((c.identity, c.reason) for c in result.corrupt)


@pytest.mark.parametrize("protocol", [3, 2])
async def test_plain_reads_export_what_the_script_exports(
    redis_url: str, redis_prefix: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, protocol: int
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, protocol=protocol)
    store = RedisStore(client, prefix=redis_prefix, clock=clock)
    try:
        assert wire.usable(client)
        await _fill(store, redis_url, clock)
        lines, corrupt = await _export(store, script=False, monkeypatch=monkeypatch)
        assert (lines, corrupt) == await _export(store, script=True, monkeypatch=monkeypatch)
        reported = {identity for identity, _ in corrupt}
        assert reported == {*DAMAGE, "plain-017", "plain-018"}  # plain-019's integer timestamp reads as a float
        written = "\n".join(lines)
        assert not any(f'"identity":"{identity}"' in written for identity in reported)
        assert all(f'"identity":"{identity}"' in written for identity in ODD)
        assert len(lines) == 80 - len(reported) + 1  # and the empty text after the last line break
    finally:
        await store.close()


async def test_corrupt_metadata_is_reported_and_not_written(
    store: RedisStore, redis_url: str, clock: VirtualClock
) -> None:
    await store.import_records([_record(clock, index) for index in range(6)])
    client = redis.Redis.from_url(redis_url)
    client.hset(store.keys.keys_for("plain-002")[1].metadata, mapping={"p1": "[1", "p2": "2]", "p3": "3,4"})
    client.hset(store.keys.keys_for("plain-003")[1].context, "bad", '{"a":')
    client.close()
    out = io.StringIO()
    result = await export_sessions(store, out, status="all")
    assert sorted(c.identity for c in result.corrupt) == ["plain-002", "plain-003"]
    assert result.sessions == 4 and "plain-002" not in out.getvalue() and "plain-003" not in out.getvalue()


async def test_a_key_of_the_wrong_type_fails_the_export_as_the_script_did(
    store: RedisStore, redis_url: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.import_records([_record(clock, index) for index in range(6)])
    client = redis.Redis.from_url(redis_url)
    key = store.keys.keys_for("plain-001")[1].metadata
    client.delete(key)
    client.set(key, "a string, not a hash")
    client.close()
    for script in (False, True):
        with pytest.raises(CorruptRecordError, match="wrong type"):
            await _export(store, script=script, monkeypatch=monkeypatch)
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()
    lines, corrupt = await _export(store, script=False, monkeypatch=monkeypatch)  # the pool's connections are fine
    assert len(lines) == 7 and not corrupt


async def test_an_export_stopped_mid_read_leaves_the_pool_usable(
    store: RedisStore, redis_url: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.import_records([_record(clock, index) for index in range(200)])
    for pause in (0, 0.0005, 0.002):
        task = asyncio.ensure_future(_export(store, script=False, monkeypatch=monkeypatch))
        await asyncio.sleep(pause)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        lines, corrupt = await _export(store, script=False, monkeypatch=monkeypatch)
        assert len(lines) == 201 and not corrupt
        assert await store.count("all") == 200


@pytest.mark.parametrize(("frames", "payloads"), [
    ([b"3:abc{}", b"-:{}", b"0:{}", b"03:abc[]"], [b"{}", b"{}", b"{}", b"[]"]),
    ([b"3:abc{}", b"1000:" + b"i" * 1000 + b"{}", b"0001:x[]"], [b"{}", b"{}", b"[]"]),  # heads not looked up
    ([b"9:ab"], [b""]),  # an id longer than the frame: nothing left, as Lua's string.sub gives
    ([], []),
    ([b"{}"], None), ([b"-{}"], None), ([b"x:{}"], None), ([b":{}"], None), ([b"12"], None), ([b"-"], None),
    ([b"\xd9\xa1:{}"], None),  # a digit that is not ASCII is not Lua's %d
    ([b"3:abc{}", b"-{}"], None), ([b"3:abc{}", b"12"], None),
])
def test_frames_lose_their_item_id_prefix_as_the_script_strips_it(
    frames: list[bytes], payloads: list[bytes] | None
) -> None:
    assert _payloads(frames) == payloads


def test_json_texts_read_together_only_where_each_reads_the_same() -> None:
    assert parse_json_texts([b'"a"', b"1", b'{"x":[1.5,null]}']) == ["a", 1, {"x": [1.5, None]}]
    assert parse_json_texts([]) == []
    for texts in ([b"[1", b"2]"], [b"NaN"], [b"1e400"], [b'"\\ud800"'], [b"\xff"], [b"1,2"],
                  [b"18446744073709551616"], [b"-9223372036854775809"]):
        assert parse_json_texts(texts) is None, texts
    assert parse_json_texts([b"9223372036854775807", b'"' + b"1" * 30 + b'"']) == [2**63 - 1, "1" * 30]


def test_records_read_plain_write_the_lines_the_ordinary_way_writes(clock: VirtualClock) -> None:
    from lkpersist.transfer.format import record_line

    for index in range(30):
        record = _record(clock, index)
        session = record.session
        if index % 4 == 1:
            session.connected, session.expires_at = True, None
        plain = SessionRecord.of_turn_dicts(session, record.turn_dicts, plain=True)
        assert plain.plain_session and not SessionRecord.of_turn_dicts(session, record.turn_dicts).plain_session
        assert record_line(plain) == record_line(record)
    odd = Session(identity="odd", joined_at=1.0, last_seen=2.0, metadata={"n": float("nan")})
    assert "NaN" in record_line(SessionRecord.of_turn_dicts(odd, [], plain=False))
    lone = SessionRecord.of_turn_dicts(odd, [{"role": "user", "text": "\ud800", "timestamp": 1.0, "item_id": None}],
                                       plain=True)
    assert "\ud800" in record_line(SessionRecord(Session("a", 1.0, 2.0), lone.turns)) == record_line(
        SessionRecord.of_turn_dicts(Session("a", 1.0, 2.0), lone.turn_dicts, plain=True))


async def test_an_export_raises_the_collector_threshold_and_restores_it(
    store: RedisStore, redis_url: str, clock: VirtualClock
) -> None:
    import gc

    before = gc.get_threshold()
    seen: list[int] = []

    def progress(_: int) -> None:
        seen.append(gc.get_threshold()[0])

    await store.import_records([_record(clock, index) for index in range(30)])
    first = asyncio.ensure_future(export_sessions(store, io.StringIO(), status="all", page_size=5, progress=progress))
    await asyncio.sleep(0)
    second = await export_sessions(store, io.StringIO(), status="all", page_size=3, progress=progress)
    await first
    assert second.sessions == first.result().sessions == 30
    assert seen and set(seen) == {max(before[0], 50_000)}
    assert gc.get_threshold() == before
    gc.set_threshold(0, *before[1:])
    try:
        await export_sessions(store, io.StringIO(), status="all", progress=progress)
        assert seen[-1] == 0 and gc.get_threshold()[0] == 0  # collection turned off stays off
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize("script", [False, True])
async def test_a_step_reads_a_page_of_members_however_big_the_bucket(
    store: RedisStore, redis_url: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, script: bool
) -> None:
    from lkpersist.stores.redis import export

    store.keys.buckets = 2  # 150 members a bucket: more than a page
    steps: list[int] = []
    read_step = export.read_step

    async def counted(ctx: Any, reads: Any, scans: Any, count: int) -> Any:
        steps.append(sum(len(members) for _, members in reads))
        return await read_step(ctx, reads, scans, count)

    await store.import_records([_record(clock, index) for index in range(300)])
    monkeypatch.setattr(export, "read_step", counted)
    if script:
        monkeypatch.setattr(wire, "usable", lambda client: False)
    found = [item.session.identity async for page in store.iter_records("all", None, 40) for item in page
             if not isinstance(item, CorruptRecord)]
    assert sorted(found) == sorted(_record(clock, index).session.identity for index in range(300))
    assert max(steps) == 40 and sum(steps) == 300


async def test_a_connection_wire_cannot_read_falls_back_to_the_script(
    store: RedisStore, redis_url: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lkpersist.stores.redis import snapshots

    await _fill(store, redis_url, clock)
    expected = await _export(store, script=False, monkeypatch=monkeypatch)
    monkeypatch.setattr(wire, "stream_of", lambda connection: None)  # a redis-py keeping its stream elsewhere
    assert await _export(store, script=False, monkeypatch=monkeypatch) == expected
    assert store._redis.client in snapshots._unwired  # asked once, not at every step
    assert await store.count("all") == 80  # the connection it looked at went back to the pool


class _PoolOfRedisPy52(redis.asyncio.ConnectionPool):
    """A pool whose ``get_connection`` wants a command name, as redis-py's did before 5.3."""

    async def get_connection(self, command_name: str, *keys: Any, **options: Any) -> Any:  # type: ignore[override]
        assert isinstance(command_name, str) and command_name
        return await super().get_connection()


async def test_a_pool_of_an_older_redis_py_is_given_a_command_name(redis_url: str) -> None:
    client = redis.asyncio.Redis(connection_pool=_PoolOfRedisPy52.from_url(redis_url))
    try:
        assert wire.usable(client)
        replies = await wire.run_commands(client, [wire.pack(("PING",)), wire.pack(("ECHO", "x"))], 2)
        assert replies == [b"PONG", b"x"]
    finally:
        await client.aclose()
