"""Redis-only arrival behaviour: a lone arrival is one plain EVALSHA sent from its caller's task; the
arrivals made at once go out as one call yet answer each caller; after a script flush each visit is
counted once; the presence scripts carry the store's own constants (the contract part is in
test_presence_contract.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio.connection

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import CorruptRecordError
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from lkpersist.stores.redis.presence import ARRIVAL_BATCH, presence_script, store_constants
from tests.events.conftest import kinds, take
from tests.stores.test_redis_turns import _commands


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[list[list[bytes]]]:
    """The commands of each socket write redis-py's asyncio connections make (a pipeline is one write of
    several commands), each as its first three values (EVALSHA, its SHA, its number of keys); the
    traffic still goes out."""
    seen: list[list[list[bytes]]] = []
    original = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def recording(self: Any, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(bytes(chunk) for chunk in command)
        seen.append([values[:3] for values in _commands(packed)])
        await original(self, command, check_health)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", recording)
    return seen


async def test_a_lone_arrival_is_one_evalsha_sent_from_its_caller_s_task(
    rstore: RedisStore, writes: list[list[list[bytes]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No batch, no task of its own and no extra loop turn for a participant arriving alone."""
    await rstore.connect("una")  # warm: the connection and the script
    await rstore.disconnect("una")
    sending: list[asyncio.Task[Any] | None] = []
    original = rstore.client.execute_command

    async def recording(*args: Any, **options: Any) -> Any:
        sending.append(asyncio.current_task())
        return await original(*args, **options)

    monkeypatch.setattr(rstore.client, "execute_command", recording)
    writes.clear()
    for visit in (1, 2):
        assert (await rstore.connect("una")).session.reconnect_count == visit
        await rstore.disconnect("una")
    assert [[command[0] for command in write] for write in writes] == [[b"EVALSHA"]] * 4
    assert sending == [asyncio.current_task()] * 4


async def test_arrivals_made_at_once_go_out_together_and_answer_each_caller(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock, writes: list[list[list[bytes]]]
) -> None:
    """The first alone at once, the other five as one EVALSHA of the script running each in turn."""
    await rstore.connect("back")
    await rstore.disconnect("back")
    sync_redis.delete(rstore.keys.keys_for("wrong")[1].session)
    sync_redis.set(rstore.keys.keys_for("wrong")[1].session, b"not a hash")  # Redis answers WRONGTYPE
    await rstore.connect("broken")
    sync_redis.hset(rstore.keys.keys_for("broken")[1].session, "c:x", "garbage")  # the script raises LKPCORRUPT
    clock.advance(10)
    writes.clear()
    calls = [("back", "agent:1"), ("fresh", "agent:1"), ("wrong", "agent:1"), ("broken", "agent:1"),
             ("back", "agent:2"), ("other", "a")]
    outcomes = await asyncio.gather(
        *(rstore.arrive(identity, connection) for identity, connection in calls), return_exceptions=True
    )
    scripts = [write for write in writes if write[0][0] == b"EVALSHA"]  # not a new connection's handshake
    arrive, each = rstore._presence._arrive.sha.encode(), rstore._presence._arrivals._many
    assert each is not None
    assert scripts == [[[b"EVALSHA", arrive, b"11"]], [[b"EVALSHA", each.sha.encode(), b"55"]]]
    back, fresh, wrong, broken, joined, other = outcomes
    for failed, identity in ((wrong, "wrong"), (broken, "broken")):  # a Redis error, a script's own
        assert isinstance(failed, CorruptRecordError) and failed.identity == identity
    assert not isinstance(back, BaseException) and not isinstance(joined, BaseException)
    assert (back.returning, back.new_visit, back.visit, back.greet) == (True, True, 2, True)
    assert (joined.returning, joined.new_visit, joined.visit, joined.greet) == (False, False, 2, False)
    assert [c.id for c in joined.session.connections] == ["agent:1", "agent:2"]
    for arrival, identity in ((fresh, "fresh"), (other, "other")):
        assert not isinstance(arrival, BaseException)
        assert (arrival.session.identity, arrival.new_visit, arrival.returning) == (identity, True, False)
    today = (await rstore.daily_stats(1)).days[-1]
    assert (today.connections, today.new_sessions, today.returns) == (5, 4, 1)  # the join is no connect


async def test_a_big_batch_leaves_as_calls_of_at_most_arrival_batch(
    rstore: RedisStore, writes: list[list[list[bytes]]]
) -> None:
    """So that Redis runs one part while the client writes or answers another (they overlap)."""
    await rstore.connect("warm")
    writes.clear()
    identities = [f"crowd-{index}" for index in range(1 + 2 * ARRIVAL_BATCH + 3)]  # one alone, then 35
    arrivals = await asyncio.gather(*(rstore.arrive(identity, "agent:1") for identity in identities))
    each = rstore._presence._arrivals._many
    assert each is not None
    batches = [write[0][2] for write in writes if write[0][:2] == [b"EVALSHA", each.sha.encode()]]
    width = b"%d" % (11 * ARRIVAL_BATCH)
    assert sorted(batches, key=int) == [b"33", width, width]  # 3, 16 and 16 arrivals of 11 keys, in any order
    assert [arrival.session.identity for arrival in arrivals] == identities
    assert all(arrival.new_visit and arrival.greet for arrival in arrivals)


@pytest.mark.parametrize("concurrent", [1, 5])
async def test_arrivals_after_a_script_flush_count_each_visit_once(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock, concurrent: int
) -> None:
    """NOSCRIPT means the call did nothing: only those calls run again, so no visit is counted twice."""
    names = [f"p{index}" for index in range(concurrent)]
    for name in names:
        await rstore.connect(name)
        await rstore.disconnect(name)
    for visit in (1, 2):
        clock.advance(10)
        sync_redis.script_flush()
        results = await asyncio.gather(*(rstore.connect(name) for name in names))
        assert [result.session.reconnect_count for result in results] == [visit] * concurrent
        assert all(result.returning for result in results)
        await asyncio.gather(*(rstore.disconnect(name) for name in names))
    today = (await rstore.daily_stats(1)).days[-1]
    assert (today.connections, today.returns) == (3 * concurrent, 2 * concurrent)


async def test_an_arrival_cancelled_in_its_batch_leaves_the_others_answered(rstore: RedisStore) -> None:
    await rstore.connect("gil")  # warm
    tasks = [asyncio.create_task(rstore.arrive("gil", f"agent:{index}")) for index in range(4)]
    await asyncio.sleep(0)  # the first is out to Redis, the other three have joined the batch
    tasks[2].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    for index in (0, 1, 3):
        arrival = outcomes[index]
        assert not isinstance(arrival, BaseException) and f"agent:{index}" in {c.id for c in arrival.session.connections}


async def test_each_store_s_presence_scripts_carry_its_own_constants(
    redis_url: str, redis_prefix: str, clock: VirtualClock, sync_redis: redis.Redis
) -> None:
    """Two stores with different TTL policies on one Redis: each arrival gets its own store's TTL, each
    after a script flush too."""
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={redis_prefix}"
    short = open_store(url, clock=clock, ttl_policy=TTLPolicy(first=100, returning=200))
    long = open_store(url, clock=clock, ttl_policy=TTLPolicy(first=1000, returning=2000))
    assert isinstance(short, RedisStore) and isinstance(long, RedisStore)
    try:
        assert short._presence._arrive.sha != long._presence._arrive.sha
        for _ in range(2):
            assert (await short.connect("s")).session.ttl == 100 and (await long.connect("l")).session.ttl == 1000
            sync_redis.script_flush()
            await short.disconnect("s")
            await long.disconnect("l")
            clock.advance(10)
            assert (await short.connect("s")).session.ttl == 200 and (await long.connect("l")).session.ttl == 2000
            await short.delete("s")
            await long.delete("l")
    finally:
        await short.close()
        await long.close()


async def test_an_odd_prefix_is_a_plain_lua_string_in_the_scripts(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    """The events channel (from the prefix) is baked into the scripts as a string literal: quotes and the
    like must neither end it nor change it."""
    prefix = f"{redis_prefix}'\"=%;"
    store = open_store(redis_url, prefix=prefix, clock=clock)
    assert isinstance(store, RedisStore)
    try:
        async with store.events() as stream:
            await store.connect("quote")
            events = await take(stream, 1)
        assert kinds(events) == [("created", "quote", 0)]
    finally:
        await store.delete("quote")
        await store.close()


def test_presence_script_literals() -> None:
    constants = dict.fromkeys(("ttl_first", "ttl_returning", "ttl_frequent", "frequent_after", "max_devices",
                               "timeout", "switch_grace"), 7)
    constants |= {"schema": 3, "plain_ok": b"*", "kids": b"ab12,cd34", "channel": b"p'\"\\]]:ev"}
    head = presence_script("return 1", constants).split("\n")[0]
    assert head.endswith('= 7, 7, 7, 7, "3", 7, 7, 7, "\\042", "ab12\\044cd34", "p\\039\\034\\092\\093\\093:ev"')


async def test_store_constants_follow_the_settings(rstore: RedisStore) -> None:
    constants = store_constants(rstore._redis)
    assert constants["ttl_first"] == 300_000 and constants["channel"] == rstore.keys.events_channel.encode()


async def test_a_return_after_a_stale_connection_rewrites_its_field_without_deleting_it(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    """The agent died without a leave: the next arrival of that connection is a return, one HSET, no HDEL."""
    await rstore.connect("kai")
    clock.advance(rstore.ttl_policy.presence_timeout + 1)
    hdel_before = sync_redis.info("commandstats").get("cmdstat_hdel", {}).get("calls", 0)
    result = await rstore.connect("kai")
    assert result.returning and result.session.reconnect_count == 1
    assert [c.id for c in result.session.connections] == ["-"]
    assert sync_redis.info("commandstats").get("cmdstat_hdel", {}).get("calls", 0) == hdel_before
