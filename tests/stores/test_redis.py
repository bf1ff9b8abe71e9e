"""Redis-only behaviour: key layout, isolation, native TTL, round trips, corrupt data, failures, URLs.

Everything runs against the real redis-server of the conftest (or ones started here for passwords).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.connection
from redis.crc import key_slot

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import CorruptRecordError, InvalidStoreURLError, StoreUnavailableError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.stores import open_store
from lkpersist.stores.redis import NATIVE_TTL_GRACE, RedisStore
from lkpersist.stores.redis.keys import KeyLayout
from lkpersist.stores.redis.lua import CONNECT
from tests.conftest import free_port, start_redis_server
from tests.stores.test_contract import HOSTILE_IDENTITIES


def _url(redis_url: str, prefix: str) -> str:
    return f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}"


def _keys(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(match=f"{prefix}:*", count=1000))


# --- key layout ------------------------------------------------------------------------------------


async def test_every_key_is_under_the_prefix_and_one_identity_shares_a_slot(
    rstore: RedisStore, sync_redis: redis.Redis, redis_prefix: str, clock: VirtualClock
) -> None:
    await rstore.connect("alice")
    await rstore.update("alice", language="en", metadata={"plan": "pro"}, context={"summary": "s"})
    await rstore.append_turn("alice", Turn("user", "hi", clock.now(), "i1"))
    everything = _keys(sync_redis, redis_prefix)
    keys = [key for key in everything if ":an:" not in key]  # off a Cluster the day's analytics keys are global
    assert len(keys) == 7  # session, metadata, context, turns, item ids, and the bucket's two indexes
    counters = [key for key in everything if ":an:s:" in key]
    assert len(counters) == 1 and key_slot(counters[0].encode()) == key_slot(keys[0].encode())
    assert {key_slot(key.encode()) for key in keys} == {key_slot(rstore.keys.keys_for("alice")[1].session.encode())}
    _, expected = rstore.keys.keys_for("alice")
    assert sorted(expected) == keys


@pytest.mark.parametrize("identity", HOSTILE_IDENTITIES, ids=lambda i: repr(i[:12]))
async def test_hostile_identity_never_appears_raw_in_a_key(
    rstore: RedisStore, sync_redis: redis.Redis, redis_prefix: str, identity: str
) -> None:
    await rstore.connect(identity)
    await rstore.update(identity, metadata={"k": 1})
    p = re.escape(redis_prefix)  # the analytics keys: the session's counters (a keyed hash), the day's, the secret
    pattern = re.compile(rf"^({p}:\{{b\d+\}}:((s|m|x|t|k):[A-Za-z0-9_-]+|seen|deadline|an:s:[0-9a-f]{{32}})"
                         rf"|{p}:an:(d|u):\d{{4}}-\d\d-\d\d|{p}:an:key)$")
    for key in _keys(sync_redis, redis_prefix):
        assert pattern.match(key), key
    assert KeyLayout.decode_identity(rstore.keys.encode_identity(identity)) == identity


async def test_two_prefixes_on_one_redis_do_not_see_each_other(
    redis_url: str, redis_prefix: str, clock: VirtualClock, sync_redis: redis.Redis
) -> None:
    other_prefix = redis_prefix + "-other"
    first = open_store(_url(redis_url, redis_prefix), clock=clock)
    second = open_store(_url(redis_url, other_prefix), clock=clock)
    try:
        await first.connect("shared")
        await first.disconnect("shared")
        assert await second.get("shared") is None
        assert await second.count("all") == 0
        assert [s async for s in second.iter_sessions("all")] == []
        clock.advance(301)
        assert (await second.purge()).purged == 0
        assert await first.count("expired") == 1
        assert (await second.connect("shared")).returning is False
        assert await first.count("all") == 1
    finally:
        await first.close()
        await second.close()
        keys = list(sync_redis.scan_iter(match=f"{other_prefix}:*"))
        if keys:
            sync_redis.unlink(*keys)


async def test_keys_carry_a_native_ttl_beyond_the_deadline(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    await rstore.connect("tina")
    await rstore.update("tina", context={"a": 1}, metadata={"b": 2})
    await rstore.append_turn("tina", Turn("user", "x", clock.now(), "1"))
    await rstore.disconnect("tina")
    _, keys = rstore.keys.keys_for("tina")
    expected_ms = (300 + NATIVE_TTL_GRACE) * 1000
    for key in keys[:5]:
        assert expected_ms - 5000 < sync_redis.pttl(key) <= expected_ms, key
    assert sync_redis.pttl(keys.seen) == -1 and sync_redis.pttl(keys.deadline) == -1


# --- one round trip ----------------------------------------------------------------------------------


@pytest.fixture
def sent_commands(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts what redis-py's connections write to the socket (the real traffic still goes out)."""
    sent: list[int] = []
    original = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        await original(self, command, check_health)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.mark.parametrize("operation", ["connect", "disconnect", "heartbeat", "claim_greeting"])
async def test_lifecycle_operations_are_one_round_trip(
    rstore: RedisStore, sync_redis: redis.Redis, sent_commands: list[int], operation: str
) -> None:
    await rstore.connect("rita")  # warm up: opens the connection and loads the script
    await rstore.disconnect("rita")
    await rstore.heartbeat("rita")
    await rstore.claim_greeting("rita")
    await rstore.connect("rita")
    evalsha_before = sync_redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    sent_commands.clear()
    for _ in range(10):
        await getattr(rstore, operation)("rita")
    assert len(sent_commands) == 10
    assert sync_redis.info("commandstats")["cmdstat_evalsha"]["calls"] - evalsha_before == 10


async def test_connect_script_loads_again_after_script_flush(rstore: RedisStore, sync_redis: redis.Redis) -> None:
    await rstore.connect("sam")
    sync_redis.script_flush()
    assert (await rstore.connect("sam")).session.reconnect_count == 1
    assert CONNECT.count("redis.call('TIME')") == 0  # time always comes from the injected clock


# --- corrupt data ------------------------------------------------------------------------------------


def _corrupt(client: redis.Redis, store: RedisStore, identity: str, how: str) -> None:
    _, keys = store.keys.keys_for(identity)
    if how == "garbage bytes":
        client.set(keys.session, b"\xff\x00garbage")
    elif how == "garbage fields":
        client.hset(keys.session, mapping={"l": "not-a-number", "t": b"\xfe"})
    else:
        client.hset(keys.metadata, "plan", b"\xff{not json")


@pytest.mark.parametrize("how", ["garbage bytes", "garbage fields", "bad metadata value"])
async def test_corrupt_record_is_named_and_does_not_stop_list_or_purge(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock, how: str
) -> None:
    for name in ("good-1", "bad one", "good-2"):
        await rstore.connect(name)
        await rstore.disconnect(name)
        clock.advance(1)
    _corrupt(sync_redis, rstore, "bad one", how)
    with pytest.raises(CorruptRecordError) as caught:
        await rstore.get("bad one")
    assert caught.value.identity == "bad one" and "bad one" in str(caught.value)
    items = [item async for item in rstore.iter_sessions("all")]
    assert sorted(i.identity for i in items if isinstance(i, Session)) == ["good-1", "good-2"]
    assert [i.identity for i in items if isinstance(i, CorruptRecord)] == ["bad one"]
    clock.advance(400)
    # Purge judges only the lifecycle fields: a record whose personal values are unreadable but whose
    # expiry is known goes like any other; one whose expiry cannot be read is left for a human.
    lifecycle_readable = how == "bad metadata value"
    assert (await rstore.purge()).purged == (3 if lifecycle_readable else 2)
    assert await rstore.get("good-1") is None and await rstore.get("good-2") is None
    assert await rstore.delete("bad one") is not lifecycle_readable  # removable by name
    assert await rstore.count("all") == 0


async def test_index_entry_whose_keys_redis_dropped_is_skipped_then_purged(
    rstore: RedisStore, sync_redis: redis.Redis, clock: VirtualClock
) -> None:
    await rstore.connect("stays")
    await rstore.connect("dropped")
    await rstore.disconnect("dropped")
    _, keys = rstore.keys.keys_for("dropped")
    sync_redis.unlink(*keys[:5])  # what the native TTL does to an abandoned session
    assert [s.identity async for s in rstore.iter_sessions("all") if isinstance(s, Session)] == ["stays"]
    assert await rstore.count("all") == 2  # documented: counted until the next purge
    clock.advance(200)
    assert await rstore.heartbeat("stays") is True
    clock.advance(101)
    assert (await rstore.purge(dry_run=True)).purged == 1
    assert (await rstore.purge()).purged == 1
    assert await rstore.count("all") == 1 and sync_redis.zscore(keys.seen, rstore.keys.encode_identity("dropped")) is None


# --- failures -------------------------------------------------------------------------------------------


async def test_unreachable_redis_fails_fast_without_the_password(clock: VirtualClock) -> None:
    store = open_store(f"redis://user:s3cretpw@127.0.0.1:{free_port()}/0", clock=clock)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.connect("x")
    finally:
        await store.close()
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert "s3cretpw" not in message and "***" in message and "\n" not in message


@pytest.fixture(scope="module")
def password_redis() -> Iterator[int]:
    proc, port = start_redis_server("--requirepass", "right-pass")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("credentials", [":wrong-pass@", "default:wrong-pass@", ""])
async def test_wrong_or_missing_password_is_store_unavailable(
    password_redis: int, clock: VirtualClock, credentials: str
) -> None:
    store = open_store(f"redis://{credentials}127.0.0.1:{password_redis}/0", clock=clock)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.connect("x")
    finally:
        await store.close()
    assert "wrong-pass" not in str(caught.value)


async def test_right_password_works(password_redis: int, clock: VirtualClock) -> None:
    store = open_store(f"redis://:right-pass@127.0.0.1:{password_redis}/0?prefix=pw", clock=clock)
    try:
        assert (await store.connect("x")).returning is False
        assert await store.delete("x") is True
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:port/0",
        "redis://127.0.0.1:6379/zero",
        "redis://127.0.0.1:6379/0/1",
        "redis://127.0.0.1:6379/0?bogus=1",
        "redis://127.0.0.1:6379/0?ssl_ca_certs=/ca.pem",
        "rediss://127.0.0.1:6379/0?ssl_cert_reqs=sometimes",
        "redis://127.0.0.1:6379/0?prefix=a{b}",
        "redis://127.0.0.1:6379/0?prefix=",
        "redis://127.0.0.1:6379/0?socket_timeout=-1",
        "redis+sentinel://127.0.0.1:26379",
        "redis+cluster://127.0.0.1:7000/1",
        "redis://a:1,b:2/0",
    ],
)
def test_bad_urls_are_refused_before_any_connection(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        open_store(url)


async def test_url_forms_build_the_right_clients() -> None:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import SentinelConnectionPool

    tls = open_store("rediss://:pw@127.0.0.1:6390/2?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca.pem")
    assert isinstance(tls, RedisStore) and isinstance(tls.client, Redis)
    kwargs = tls.client.connection_pool.connection_kwargs
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"], kwargs["db"]) == ("none", "/etc/ca.pem", 2)
    assert "pw" not in tls.display_url
    sentinel = open_store("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/3?prefix=app")
    assert isinstance(sentinel, RedisStore) and isinstance(sentinel.client.connection_pool, SentinelConnectionPool)
    assert sentinel.client.connection_pool.service_name == "mymaster" and sentinel.keys.prefix == "app"
    cluster = open_store("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert isinstance(cluster, RedisStore) and isinstance(cluster.client, RedisCluster)
    for store in (tls, sentinel, cluster):
        await store.close()


async def test_two_purges_at_once_delete_only_expired_and_never_twice(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    first = open_store(_url(redis_url, redis_prefix), clock=clock)
    second = open_store(_url(redis_url, redis_prefix), clock=clock)
    try:
        for index in range(1200):
            await first.connect(f"user-{index}")
            if index % 3 == 0:
                await first.disconnect(f"user-{index}")
        clock.advance(200)
        for index in range(1200):
            if index % 3:
                await first.heartbeat(f"user-{index}")
        clock.advance(101)
        results = await asyncio.gather(first.purge(), second.purge())
        assert sum(result.purged for result in results) == 400
        assert await first.count("all") == 800 and await first.count("expired") == 0
    finally:
        await first.close()
        await second.close()


async def test_the_empty_state_digest_is_what_the_script_computes(redis_url: str, redis_prefix: str) -> None:
    from lkpersist.stores.redis import RedisStore
    from lkpersist.stores.redis.reconcile import EMPTY_DIGEST, scripts_for

    store = RedisStore.from_url(redis_url, prefix=redis_prefix)
    try:
        reply = await store._redis.run(scripts_for(store._redis).read, "nobody")
        assert reply[0].decode() == EMPTY_DIGEST
    finally:
        await store.close()
