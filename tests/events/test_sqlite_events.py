"""SQLite-only event details: the events table stays bounded, and files from before it get it on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lkpersist.clock import VirtualClock, to_ms
from lkpersist.stores import open_store
from lkpersist.stores.sqlite.events import _PRUNE, KEEP_EVENTS, KEEP_SECONDS, PRUNE_EVERY, write_event_rows
from lkpersist.stores.sqlite.schema import STORAGE_VERSION
from tests.conftest import T0
from tests.events.conftest import kinds, take


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def _open_and_touch(path: Path) -> None:
    store = open_store(f"sqlite:///{path}", clock=VirtualClock(T0))
    try:
        await store.connect("alice")
    finally:
        await store.close()


async def test_the_events_table_keeps_only_the_newest_events(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    await _open_and_touch(path)
    now_ms = to_ms(T0)
    with sqlite3.connect(path) as conn:
        rows = [(now_ms, "created", f"user-{i}", 0) for i in range(KEEP_EVENTS + 3 * PRUNE_EVERY)]
        write_event_rows(conn, rows)
    count, lowest = _raw(path, "SELECT COUNT(*), MIN(id) FROM lkpersist_events")[0]
    assert isinstance(count, int) and KEEP_EVENTS <= count < KEEP_EVENTS + PRUNE_EVERY
    assert lowest == 1 + 1 + 3 * PRUNE_EVERY  # alice's created, then the oldest rows went first


async def test_old_events_are_pruned_by_age_and_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    await _open_and_touch(path)
    later_ms = to_ms(T0 + KEEP_SECONDS + 1)
    with sqlite3.connect(path) as conn:
        write_event_rows(conn, [(later_ms, "created", "bob", 0)] * PRUNE_EVERY)
    assert _raw(path, "SELECT COUNT(*) FROM lkpersist_events WHERE identity = 'alice'") == [(0,)]
    with sqlite3.connect(path) as conn:
        write_event_rows(conn, [(later_ms, "deleted", "bob", 0)])
    assert _raw(path, "SELECT MIN(id), MAX(id) FROM lkpersist_events") == [(2, PRUNE_EVERY + 2)]


async def test_a_prune_by_age_reads_only_the_rows_it_deletes(tmp_path: Path) -> None:
    """Old rows go as one range of ids up to the first young row (the older ``OR time < ?`` form read the
    whole table at every prune); an old row written after a younger one waits for a later prune."""
    path = tmp_path / "sessions.db"
    await _open_and_touch(path)  # alice, at T0: id 1
    young_ms, old_ms = to_ms(T0 + KEEP_SECONDS + 1), to_ms(T0)
    with sqlite3.connect(path) as conn:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {_PRUNE}", (1, 2)))
        assert "USING INTEGER PRIMARY KEY (rowid<?)" in plan and "SEARCH lkpersist_events" in plan
        rows = [(old_ms, "created", "old", 0), (young_ms, "created", "young", 0), (old_ms, "created", "late", 0)]
        write_event_rows(conn, rows + [(young_ms, "created", "bob", 0)] * (PRUNE_EVERY - len(rows)))
    assert _raw(path, f"SELECT identity FROM lkpersist_events WHERE time = {old_ms} ORDER BY id") == [("late",)]
    assert _raw(path, "SELECT MIN(id) FROM lkpersist_events") == [(3,)]  # alice and "old" went; "young" is first


async def test_a_subscriber_follows_a_table_emptied_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    await _open_and_touch(path)
    store = open_store(f"sqlite:///{path}", clock=VirtualClock(T0))
    try:
        async with store.events() as stream:
            await store.connect("carl")
            assert kinds(await take(stream, 1)) == [("created", "carl", 0)]
            with sqlite3.connect(path) as conn:
                conn.execute("DELETE FROM lkpersist_events")
            await store.delete("carl")  # id 1 again
            assert kinds(await take(stream, 1)) == [("deleted", "carl", 0)]
    finally:
        await store.close()


async def test_a_file_of_the_first_layout_gets_the_events_and_locks_tables(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    await _open_and_touch(path)
    with sqlite3.connect(path) as conn:  # make it look like a file written before events and locks existed
        conn.execute("DROP TABLE lkpersist_events")
        conn.execute("DROP TABLE lkpersist_locks")
        conn.execute("UPDATE lkpersist_meta SET value = '1' WHERE key = 'schema_version'")
    store = open_store(f"sqlite:///{path}", clock=VirtualClock(T0))
    try:
        async with store.events() as stream:
            await store.disconnect("alice")
            assert (await anext(stream)).kind == "disconnected"
        assert await store.acquire_lock("purge", 30) is not None
    finally:
        await store.close()
    assert _raw(path, "SELECT value FROM lkpersist_meta WHERE key = 'schema_version'") == [(str(STORAGE_VERSION),)]
