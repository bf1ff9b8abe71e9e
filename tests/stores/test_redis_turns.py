"""Redis-only turn behaviour: the turn scripts take only the three keys a turn touches, damaged frames are
named, a session hash carrying only the liveness fields is read, and the reads and appends made at once
go out as one pipeline yet answer each caller (the contract part is in test_turns.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio.connection

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import CorruptRecordError, SessionNotFoundError
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.redis import NATIVE_TTL_GRACE, RedisStore
from lkpersist.stores.redis.context import TURN_BATCH


def _commands(packed: bytes) -> list[list[bytes]]:
    """The commands in one RESP write, each as its values."""
    commands, position = [], 0
    while position < len(packed):
        end = packed.index(b"\r\n", position)
        count, position = int(packed[position + 1:end]), end + 2
        values = []
        for _ in range(count):
            end = packed.index(b"\r\n", position)
            size, position = int(packed[position + 1:end]), end + 2
            values.append(packed[position:position + size])
            position += size + 2
        commands.append(values)
    return commands


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[list[bytes]]]:
    """What redis-py's asyncio connections write, one entry per socket write (a pipeline is one write of
    several commands), each command as its values; the traffic still goes out."""
    writes: list[list[list[bytes]]] = []
    original = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def recording(self: Any, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(bytes(chunk) for chunk in command)
        writes.append(_commands(packed))
        await original(self, command, check_health)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", recording)
    return writes


@pytest.mark.parametrize("operation", ["recent_turns", "append_turn"])
async def test_a_redis_turn_operation_is_one_evalsha_on_three_keys(
    rstore: RedisStore, clock: VirtualClock, sent: list[list[list[bytes]]], operation: str
) -> None:
    """The session hash (is it live?), the turns and the item ids: not the metadata, context or indexes."""
    await rstore.connect("eve")
    await rstore.append_turn("eve", Turn("user", "hi", clock.now(), "1"))
    await rstore.recent_turns("eve")  # warm: both scripts are loaded
    sent.clear()
    if operation == "recent_turns":
        assert [t.text for t in await rstore.recent_turns("eve", limit=5)] == ["hi"]
    else:
        assert await rstore.append_turn("eve", Turn("user", "again", clock.now(), "2")) is True
    _, keys = rstore.keys.keys_for("eve")
    ((command,),) = sent
    assert command[0] == b"EVALSHA"
    if operation == "recent_turns":
        assert command[2:6] == [b"3", keys.session.encode(), keys.turns.encode(), keys.item_ids.encode()]
    else:  # and the analytics a turn counts in: the day's counters and the session's
        assert command[2:8] == [b"5", keys.session.encode(), keys.turns.encode(), keys.item_ids.encode(),
                                *rstore._analytics.turn_part("eve", clock.now())[0]]


async def test_a_redis_append_gives_the_turns_the_session_s_native_ttl(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    await rstore.connect("ray")
    _, keys = rstore.keys.keys_for("ray")
    clock.advance(100)  # the deadline is 200 s away now: the new keys live natively as long as the session
    await rstore.append_turn("ray", Turn("user", "x", clock.now(), "1"))
    session_ms = sync_redis.pttl(keys.session)
    assert session_ms > (200 + NATIVE_TTL_GRACE) * 1000 - 5000
    for key in (keys.turns, keys.item_ids):  # the session's native expiry, as seen 100 virtual seconds on
        assert abs(sync_redis.pttl(key) - (session_ms - 100_000)) < 5000, key


def _turn_key(store: RedisStore, identity: str) -> str:
    return store.keys.keys_for(identity)[1].turns


@pytest.mark.parametrize("frame", [
    b"-:{not json",
    b"-:" + Turn("user", "a", 1.0).to_json().encode() + b"," + Turn("user", "b", 2.0).to_json().encode(),
    b"7:short",
    b"-:[1, 2]",
    b"-:\xff\xfe",
])
async def test_a_damaged_redis_frame_among_good_ones_is_named(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock, frame: bytes
) -> None:
    await rstore.connect("fay")
    await rstore.append_turn("fay", Turn("user", "good", clock.now(), "g"))
    sync_redis.rpush(_turn_key(rstore, "fay"), frame)
    await rstore.append_turn("fay", Turn("user", "also good", clock.now(), "h"))
    with pytest.raises(CorruptRecordError, match="fay"):
        await rstore.recent_turns("fay")
    assert [t.text for t in await rstore.recent_turns("fay", limit=1)] == ["also good"]


async def test_a_redis_frame_with_whitespace_around_its_json_is_read(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    await rstore.connect("gus")
    sync_redis.rpush(_turn_key(rstore, "gus"), b"-: " + Turn("user", "padded", 5.0).to_json().encode() + b"\n")
    await rstore.append_turn("gus", Turn("user", "next", 6.0, "n"))
    assert await rstore.recent_turns("gus") == [Turn("user", "padded", 5.0), Turn("user", "next", 6.0, "n")]


async def test_a_redis_read_needs_only_the_liveness_fields(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    """Liveness is last_seen, ttl, connected and expires_at; the other fields may change form."""
    await rstore.connect("hal")
    await rstore.append_turn("hal", Turn("user", "kept", clock.now(), "k"))
    session_key = rstore.keys.keys_for("hal")[1].session
    sync_redis.hdel(session_key, "r", "d", "g", "j", "v")
    assert [t.text for t in await rstore.recent_turns("hal")] == ["kept"]
    sync_redis.hset(session_key, "e", "soon")
    with pytest.raises(CorruptRecordError, match="hal"):
        await rstore.recent_turns("hal")
    sync_redis.hdel(session_key, "e", "l")
    with pytest.raises(CorruptRecordError, match="hal"):
        await rstore.recent_turns("hal")
    sync_redis.delete(session_key)
    assert await rstore.recent_turns("hal") == []  # no session: no turns, whatever the list holds


async def test_turn_reads_made_at_once_go_out_together_and_answer_each_caller(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock, sent: list[list[list[bytes]]]
) -> None:
    for name in ("ok", "bad", "wrong"):
        await rstore.connect(name)
        await rstore.append_turn(name, Turn("user", f"{name} says hi", clock.now(), "1"))
    sync_redis.rpush(_turn_key(rstore, "bad"), b"-:{damaged")
    sync_redis.delete(rstore.keys.keys_for("wrong")[1].session)
    sync_redis.set(rstore.keys.keys_for("wrong")[1].session, b"not a hash")  # Redis answers WRONGTYPE
    await rstore.recent_turns("ok")  # the script is loaded
    sent.clear()
    names = ["ok", "never", "bad", "wrong", "ok"]
    outcomes = await asyncio.gather(*(rstore.recent_turns(name) for name in names), return_exceptions=True)
    assert [len(write) for write in sent] == [5]  # one pipeline of the five
    assert [t.text for t in outcomes[0]] == ["ok says hi"] and outcomes[1] == [] and outcomes[0] == outcomes[4]
    for name, outcome in zip(names[2:4], outcomes[2:4], strict=True):
        assert isinstance(outcome, CorruptRecordError) and outcome.identity == name


@pytest.mark.parametrize("operation", ["recent_turns", "append_turn"])
async def test_many_turn_calls_at_once_leave_as_pipelines_of_at_most_turn_batch(
    rstore: RedisStore, clock: VirtualClock, sent: list[list[list[bytes]]], operation: str
) -> None:
    """Short pipelines one after the other, so Redis runs one while the client writes or answers another."""
    names = [f"reader-{index}" for index in range(2 * TURN_BATCH + 8)]
    for name in names:
        await rstore.connect(name)
    await rstore.append_turn(names[0], Turn("user", "warm", clock.now(), "0"))  # the scripts are loaded
    await rstore.recent_turns(names[0])
    sent.clear()
    if operation == "recent_turns":
        outcomes: list[Any] = await asyncio.gather(*(rstore.recent_turns(name) for name in names))
        assert [len(turns) for turns in outcomes] == [1] + [0] * (len(names) - 1)
    else:
        outcomes = await asyncio.gather(
            *(rstore.append_turn(name, Turn("user", f"{name} here", clock.now(), "1")) for name in names))
        assert outcomes == [True] * len(names)
    scripts = [write for write in sent if write[0][0] == b"EVALSHA"]  # not a new connection's handshake
    assert sorted(len(write) for write in scripts) == [8, TURN_BATCH, TURN_BATCH]
    if operation == "append_turn":
        assert [t.text for t in await rstore.recent_turns(names[5])] == [f"{names[5]} here"]


async def test_turn_reads_load_the_script_again_after_a_flush(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    await rstore.connect("flo")
    await rstore.append_turn("flo", Turn("user", "still here", clock.now(), "1"))
    for concurrent in (1, 6):  # a lone read is a plain EVALSHA, several a pipeline: both reload
        sync_redis.script_flush()
        outcomes = await asyncio.gather(*(rstore.recent_turns("flo") for _ in range(concurrent)))
        assert all([t.text for t in turns] == ["still here"] for turns in outcomes)


async def test_a_turn_read_cancelled_in_its_batch_leaves_the_others_answered(
    rstore: RedisStore, clock: VirtualClock
) -> None:
    await rstore.connect("gil")
    await rstore.append_turn("gil", Turn("user", "hello", clock.now(), "1"))
    await rstore.recent_turns("gil")
    tasks = [asyncio.create_task(rstore.recent_turns("gil")) for _ in range(4)]
    await asyncio.sleep(0)  # all four have joined the batch
    tasks[1].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert all([t.text for t in outcomes[i]] == ["hello"] for i in (0, 2, 3))


async def test_turn_appends_made_at_once_go_out_together_and_answer_each_caller(
    rstore: RedisStore, clock: VirtualClock, sent: list[list[list[bytes]]]
) -> None:
    for name in ("kim", "lee"):
        await rstore.connect(name)
    await rstore.append_turn("kim", Turn("user", "warm", clock.now(), "0"))  # the script is loaded
    sent.clear()
    appends = [("kim", "a", "1"), ("lee", "b", "1"), ("kim", "a again", "1"), ("nobody", "c", "1"),
               ("kim", "d", None), ("lee", "e", None)]
    outcomes = await asyncio.gather(
        *(rstore.append_turn(name, Turn("user", text, clock.now(), item)) for name, text, item in appends),
        return_exceptions=True,
    )
    assert [len(write) for write in sent] == [6]  # one pipeline of the six
    assert outcomes[:3] == [True, True, False] and isinstance(outcomes[3], SessionNotFoundError)
    assert outcomes[4:] == [True, True]
    assert [t.text for t in await rstore.recent_turns("kim")] == ["warm", "a", "d"]
    assert [t.text for t in await rstore.recent_turns("lee")] == ["b", "e"]


async def test_appends_after_a_script_flush_are_each_stored_once(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    """NOSCRIPT means the call did nothing: only those calls run again, so nothing is appended twice."""
    await rstore.connect("mo")
    await rstore.append_turn("mo", Turn("user", "first", clock.now()))
    sync_redis.script_flush()
    await asyncio.gather(*(rstore.append_turn("mo", Turn("user", f"t{i}", clock.now())) for i in range(5)))
    sync_redis.script_flush()
    await rstore.append_turn("mo", Turn("user", "alone", clock.now()))
    assert [t.text for t in await rstore.recent_turns("mo")] == ["first", "t0", "t1", "t2", "t3", "t4", "alone"]



def test_a_turn_read_left_behind_by_a_closed_loop_does_not_hold_up_the_next(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    """A loop stopped and closed between a read joining its batch and the batch leaving (a worker
    shutting down): the store, used again from a new loop, still answers."""
    url = f"{redis_url}?prefix={redis_prefix}"

    async def prepare() -> None:
        async with open_store(url, clock=clock) as writer:
            await writer.connect("ned")
            await writer.append_turn("ned", Turn("user", "hi", clock.now(), "1"))

    asyncio.run(prepare())
    store = open_store(url, clock=clock)  # no connection is opened before the new loop
    old = asyncio.new_event_loop()

    async def leave_a_read_behind() -> None:
        read = asyncio.create_task(store.recent_turns("ned"))
        await asyncio.sleep(0)  # the read runs up to joining its batch, whose send is the next callback
        assert not read.done()
        asyncio.get_running_loop().stop()
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="stopped"):
        old.run_until_complete(leave_a_read_behind())
    old.close()

    async def read_again() -> list[str]:
        try:
            return [t.text for t in await asyncio.wait_for(store.recent_turns("ned"), 5)]
        finally:
            await store.close()

    assert asyncio.run(read_again()) == ["hi"]
