"""Backend-only analytics cases: identities only as keyed hashes, and retention (Redis TTLs; purge elsewhere)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.crypto.identity import IdentityHasher
from lkpersist.model.analytics import DAY, AnalyticsSettings, day_of
from lkpersist.model.session import Turn
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from lkpersist.stores.redis import RedisStore

IDENTITY = "alice-secret-identity"
KEY = "k" * 40


async def test_sqlite_keeps_only_keyed_hashes_and_purge_drops_what_is_past_retention(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "s.db"
    month = TTLPolicy(first=30 * DAY, returning=30 * DAY, frequent=30 * DAY)  # the session outlives retention
    store = open_store(
        f"sqlite:///{path}", clock=clock, ttl_policy=month, analytics=AnalyticsSettings(retention=2 * DAY, key=KEY)
    )
    await store.connect(IDENTITY)
    await store.append_turn(IDENTITY, Turn(role="user", text="hi", timestamp=clock.now(), item_id="i1"))
    await store.purge()  # rolls the visit up from its event row into the day rows (nothing is past retention)
    conn = sqlite3.connect(path)
    rows = [row for table in ("days", "identities") for row in conn.execute(f"SELECT * FROM lkpersist_analytics_{table}")]
    assert IDENTITY not in repr(rows) and IdentityHasher(KEY).digest(IDENTITY) in repr(rows)
    clock.advance(2 * DAY)
    await store.purge()
    assert conn.execute("SELECT COUNT(*) FROM lkpersist_analytics_days").fetchone() == (1,)  # still kept
    kept = await store.session_counters(IDENTITY)
    assert kept is not None and (kept.connections, kept.returns, kept.turns) == (1, 0, 1)
    clock.advance(DAY)
    await store.purge()
    counts = [conn.execute(f"SELECT COUNT(*) FROM lkpersist_analytics_{t}").fetchone()[0] for t in ("days", "identities")]
    assert counts == [0, 0]
    assert await store.session_counters(IDENTITY) is None and await store.get(IDENTITY) is not None
    await store.connect(IDENTITY)  # its connection went stale: a return, which starts the counters again
    again = await store.session_counters(IDENTITY)
    assert again is not None and (again.connections, again.returns, again.turns) == (1, 1, 0)
    conn.close()
    await store.close()


async def test_sqlite_keeps_a_sessions_counters_in_its_row(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = open_store(f"sqlite:///{path}", clock=clock)
    try:
        await store.connect(IDENTITY)
        await store.append_turn(IDENTITY, Turn(role="user", text="hi", timestamp=clock.now(), item_id="i1"))
        with sqlite3.connect(path) as conn:
            row = conn.execute(
                "SELECT counted_connections, counted_returns, counted_turns, counted_day FROM lkpersist_sessions"
            ).fetchone()
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert row == (1, 0, 1, day_of(clock.now())) and "lkpersist_analytics_sessions" not in tables
        assert await store.delete(IDENTITY)
        assert await store.session_counters(IDENTITY) is None  # on SQLite they go with the session's row
        assert (await store.daily_stats(1)).days[0].connections == 1  # the day's counts stay
    finally:
        await store.close()


async def test_a_sqlite_file_of_layout_2_gets_the_analytics_tables(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}", clock=clock)
    await store.connect("alice")
    await store.disconnect("alice")  # so the connect below opens a visit, which analytics count
    await store.close()
    with sqlite3.connect(path) as conn:  # as a file written before analytics existed
        for table in ("days", "identities"):
            conn.execute(f"DROP TABLE lkpersist_analytics_{table}")
        conn.execute("ALTER TABLE lkpersist_events DROP COLUMN visit_hash")  # added by layout 5
        conn.execute("UPDATE lkpersist_meta SET value = '2' WHERE key = 'schema_version'")
    reader = open_store(f"sqlite:///{path}", clock=clock, create=False)
    store = open_store(f"sqlite:///{path}", clock=clock)
    try:
        await store.connect("bob")  # a new session (alice's connection is still live: a connect would join it)
        assert (await store.daily_stats(1)).days[0].connections == 1
        assert (await reader.daily_stats(1)).days[0].active_identities == 1
    finally:
        await store.close()
        await reader.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM lkpersist_meta WHERE key = 'schema_version'").fetchone() == ("5",)


async def test_memory_purge_drops_days_past_retention(clock: VirtualClock) -> None:
    store = open_store("memory://", clock=clock, analytics=AnalyticsSettings(retention=DAY))
    await store.connect(IDENTITY)
    day = day_of(clock.now())
    clock.advance(2 * DAY)
    await store.purge()
    stats = await store.daily_stats(3)
    assert stats.days[0].date == day and stats.days[0].connections == 0
    assert await store.session_counters(IDENTITY) is None


async def test_redis_analytics_keys_hold_no_identity_and_expire_after_retention(
    redis_url: str, redis_prefix: str, clock: VirtualClock, sync_redis: redis.Redis
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock, analytics=AnalyticsSettings(key=KEY))
    assert isinstance(store, RedisStore)
    await store.connect(IDENTITY)
    await store.append_turn(IDENTITY, Turn(role="user", text="hi", timestamp=clock.now(), item_id="i1"))
    encoded = store.keys.encode_identity(IDENTITY)
    keys = [key.decode() for key in sync_redis.scan_iter(match=f"{redis_prefix}:*an:*")]
    assert len(keys) == 3  # day counters, day users, the session's counters (the secret is configured)
    assert not [key for key in keys if IDENTITY in key or encoded in key]
    assert any(IdentityHasher(KEY).digest(IDENTITY) in key for key in keys)
    end_of_retention = clock.now() - clock.now() % DAY + DAY + 90 * DAY
    for key in keys:
        assert sync_redis.type(key) in (b"hash", b"string")
        assert sync_redis.pttl(key) / 1000 == pytest.approx(
            end_of_retention - clock.now() if ":an:s:" not in key else 90 * DAY, abs=5
        )
    dump = b"".join(sync_redis.dump(key) or b"" for key in keys)
    assert IDENTITY.encode() not in dump and encoded.encode() not in dump
    await store.close()


async def test_redis_without_a_configured_key_keeps_one_secret_for_every_process(
    redis_url: str, redis_prefix: str, clock: VirtualClock, sync_redis: redis.Redis
) -> None:
    url = f"{redis_url}?prefix={redis_prefix}"
    first, second = open_store(url, clock=clock), open_store(url, clock=clock)
    await first.connect(IDENTITY)
    await second.connect(IDENTITY)
    secret = sync_redis.get(f"{redis_prefix}:an:key")
    assert secret is not None and len(secret) >= 32
    assert (await second.daily_stats(1)).days[0].active_identities == 1
    await first.close()
    await second.close()


async def test_a_fallback_store_reads_its_primary_s_analytics(tmp_path: Path, clock: VirtualClock) -> None:
    primary = open_store(f"sqlite:///{tmp_path / 'p.db'}", clock=clock)
    store = FallbackStore(primary)
    try:
        await store.connect(IDENTITY)
        await store.append_turn(IDENTITY, Turn(role="user", text="hi", timestamp=clock.now(), item_id="i1"))
        assert (await store.daily_stats(1)).days[0].to_dict() == (await primary.daily_stats(1)).days[0].to_dict()
        assert (await store.daily_stats(1)).days[0].turns == 1
        counters = await store.session_counters(IDENTITY)
        assert counters is not None and (counters.connections, counters.turns) == (1, 1)
    finally:
        await store.close()
