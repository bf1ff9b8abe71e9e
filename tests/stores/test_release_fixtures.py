"""Stores written by the release before per-connection presence open and behave (tests/fixtures/v1/).

The files were written by that release (``tests/fixtures/make_release_fixtures.py`` says how, and what
each identity's state is). The SQLite file is migrated in place on open; the Redis keys are read as they
are (a connected hash is one live connection ``-`` beating at its last_seen).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.stores.test_presence_contract import PRESENCE_BACKENDS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v1"
RELEASED = ("sqlite", "redis")
ON_PRESENCE = pytest.mark.parametrize("released", [b for b in RELEASED if b in PRESENCE_BACKENDS], indirect=True)
"""The behaviour after opening needs the visit model: the backends of the presence contract."""
START = json.loads((FIXTURES / "SCENARIO.json").read_text())["start"]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START + 120)


def _load_redis_dump(redis_url: str, prefix: str) -> None:
    """Write the dumped keys under this test's own prefix (members and values never name the prefix)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key, entry in json.loads((FIXTURES / "redis.json").read_text()).items():
            name, kind, value = prefix + key.removeprefix("fixture"), entry["type"], entry["value"]
            if kind == "hash":
                client.hset(name, mapping=value)
            elif kind == "list":
                client.rpush(name, *value)
            elif kind == "set":
                client.sadd(name, *value)
            elif kind == "zset":
                client.zadd(name, {member: score for member, score in value})
            else:
                client.set(name, value)
    finally:
        client.close()


@pytest.fixture(params=RELEASED)
async def released(
    request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock
) -> AsyncIterator[SessionStore]:
    """A store holding what the release wrote, opened by this lkpersist."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(FIXTURES / "store.db", path)
        url = f"sqlite:///{path}"
    else:
        redis_url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        _load_redis_dump(redis_url, prefix)
        url = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}"
    store = open_store(url, clock=clock)
    yield store
    await store.close()


async def test_every_session_reads_as_it_was_left(released: SessionStore) -> None:
    live, owed, greeted, gone = [await released.require(i) for i in ("live", "owed", "greeted", "gone")]
    assert (gone.connected, gone.reconnect_count, gone.expires_at) == (False, 0, START + 300)
    assert live.connected and [(c.id, c.last_beat) for c in live.connections] == [("-", START + 100)]
    assert (live.reconnect_count, live.greeted_visit, live.expires_at) == (0, 1, None)
    assert not owed.connected and owed.connections == ()
    assert (owed.reconnect_count, owed.greeted_visit, owed.expires_at) == (3, 0, START + 80 + 1800)  # 4 ungreeted
    assert (greeted.reconnect_count, greeted.greeted_visit, greeted.expires_at) == (1, 2, START + 90 + 600)
    assert (greeted.language, greeted.metadata, greeted.context) == ("fr", {"plan": "pro"}, {"summary": "likes tea"})
    assert [t.text for t in await released.recent_turns("greeted")] == ["bonjour"]
    assert [t.item_id for t in await released.recent_turns("live")] == ["l1", "l2"]


async def test_the_expired_one_expired_when_the_release_said(released: SessionStore, clock: VirtualClock) -> None:
    clock.advance(START + 300 - clock.now())
    assert await released.get("gone") is None
    assert (await released.arrive("gone", "a")).returning is False


@ON_PRESENCE
async def test_the_live_visit_goes_on_and_stays_greeted(released: SessionStore, clock: VirtualClock) -> None:
    assert await released.claim_greeting("live") is False
    joined = await released.arrive("live", "agent:job2:b")
    assert (joined.new_visit, joined.greet, joined.visit) == (False, False, 1)
    assert await released.heartbeat("live") is True  # the legacy connection is still the release's "-"
    await released.disconnect("live")
    await released.leave("live", "agent:job2:b")
    clock.advance(5)
    back = await released.arrive("live", "agent:job3:c", restore_turns=5)
    assert (back.returning, back.visit, back.greet) == (True, 2, True)
    assert [t.item_id for t in back.turns] == ["l1", "l2"]


@ON_PRESENCE
async def test_a_return_after_the_release_is_one_greeted_visit(released: SessionStore) -> None:
    for identity, visit in (("owed", 5), ("greeted", 3)):
        arrivals = [await released.arrive(identity, f"agent-{n}") for n in range(2)]
        assert [(a.returning, a.visit, a.greet) for a in arrivals] == [(True, visit, True), (False, visit, False)]


def test_the_sqlite_file_is_migrated_in_place_once(tmp_path: Path, clock: VirtualClock) -> None:
    import asyncio

    path = tmp_path / "store.db"
    shutil.copy(FIXTURES / "store.db", path)
    events = "SELECT id, time, kind, identity, reconnect_count FROM lkpersist_events ORDER BY id"
    with sqlite3.connect(path) as conn:
        released_events = conn.execute(events).fetchall()
    store = open_store(f"sqlite:///{path}", clock=clock)
    asyncio.run(store.count("all"))
    asyncio.run(store.delete("gone"))
    asyncio.run(store.close())
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM lkpersist_meta WHERE key = 'schema_version'").fetchall() == [("5",)]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(lkpersist_sessions)")}
        migrated_events = conn.execute(events).fetchall()
        table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'lkpersist_events'").fetchone()[0]
    assert {"greeted_visit", "connections", "devices", "switch_until"} <= columns
    assert {"counted_connections", "counted_returns", "counted_turns", "counted_day"} <= columns  # analytics
    assert not {"disconnect_count", "greeted_epoch"} & columns
    assert "AUTOINCREMENT" not in table.upper()
    assert len(released_events) > 5 and migrated_events[:-1] == released_events  # every event kept, ids too
    assert migrated_events[-1][0] == released_events[-1][0] + 1 and migrated_events[-1][2:4] == ("deleted", "gone")


async def test_a_released_sqlite_session_counts_its_first_return_after_the_upgrade(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "store.db"
    shutil.copy(FIXTURES / "store.db", path)
    store = open_store(f"sqlite:///{path}", clock=clock)
    try:
        assert await store.session_counters("owed") is None  # the release kept no counters
        await store.arrive("owed", "agent-0")
        counters = await store.session_counters("owed")
        assert counters is not None and (counters.connections, counters.returns, counters.turns) == (1, 1, 0)
        assert (await store.daily_stats(1)).days[0].returns == 1
    finally:
        await store.close()
