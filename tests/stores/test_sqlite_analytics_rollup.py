"""SQLite's day analytics rolled up from the arrivals' event rows (lkpersist.stores.sqlite.analytics.roll_up).

An arrival writes no analytics row; its ``created``/``returned`` event carries the identity's keyed hash
(``visit_hash``) and is counted into the day rows at the events' prune boundary (right before the prune,
whoever writes the event that crosses it) and by ``purge``, and added by every read until then. These
check that the stats are the same before and after a roll-up, across a prune, from two processes
sharing the file, for a reader without the hash key, past retention, after an outage merge, and on a
file of layout 4.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from lkpersist.clock import VirtualClock, to_ms
from lkpersist.crypto.identity import IdentityHasher
from lkpersist.model.analytics import DAY, AnalyticsSettings, DayStats
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.sqlite import SQLiteStore
from lkpersist.stores.sqlite.events import KEEP_SECONDS, PRUNE_EVERY, write_event_rows
from lkpersist.stores.sqlite.schema import STORAGE_VERSION
from tests.conftest import T0

KEY = "k" * 40
MONTH = TTLPolicy(first=30 * DAY, returning=30 * DAY, frequent=30 * DAY)


def _open(path: Path, clock: VirtualClock, **options: object) -> SQLiteStore:
    store = open_store(f"sqlite:///{path}", clock=clock, ttl_policy=MONTH, **options)  # type: ignore[arg-type]
    assert isinstance(store, SQLiteStore)
    return store


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _stored_days(path: Path) -> list[tuple[object, ...]]:
    """What the day rows hold (the roll-up's output), without the pending events."""
    return _raw(path, "SELECT day, connections, returns, new_sessions FROM lkpersist_analytics_days ORDER BY day")


async def _today(store: SQLiteStore) -> tuple[DayStats, int]:
    stats = await store.daily_stats(1)
    return stats.days[-1], stats.distinct_identities


async def _visits(store: SQLiteStore, identities: list[str]) -> None:
    """Each identity arrives and leaves, so its next arrival opens a visit (a return)."""
    for identity in identities:
        await store.arrive(identity, "c")
        await store.leave(identity, "c")


async def test_the_stats_are_the_same_before_and_after_the_roll_up(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await _visits(store, ["ann", "bo", "ann", "cy", "ann"])
        await store.arrive("bo", "second-agent")
        await store.arrive("bo", "third-agent")  # joins the visit going on: no visit, no count
        before = await _today(store)
        assert _stored_days(path) == []  # nothing rolled up yet: all of it read from the events
        assert (before[0].connections, before[0].returns, before[0].new_sessions) == (6, 3, 3)
        assert (before[0].active_identities, before[1]) == (3, 3)
        await store.purge()  # rolls up
        assert _stored_days(path) == [(before[0].date, 6, 3, 3)]
        assert await _today(store) == before
        await _visits(store, ["dee"])  # counted once more, from its event
        after = await _today(store)
        assert (after[0].connections, after[0].new_sessions, after[0].active_identities, after[1]) == (7, 4, 4, 4)
    finally:
        await store.close()


async def test_the_prune_boundary_rolls_up_and_pruned_visits_stay_counted(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await store.arrive("early", "c")  # its event is pruned by age below
        clock.advance(KEEP_SECONDS + 1)  # the same UTC day (T0 is 08:00)
        await _visits(store, [f"user-{i}" for i in range(PRUNE_EVERY)])  # crosses the boundary
        assert _raw(path, "SELECT COUNT(*) FROM lkpersist_events WHERE identity = 'early'") == [(0,)]
        (rolled_up,) = _raw(path, "SELECT CAST(value AS INTEGER) FROM lkpersist_meta WHERE key = 'analytics_rolled_up'")
        assert isinstance(rolled_up[0], int) and rolled_up[0] > 0
        today, distinct = await _today(store)
        assert (today.connections, today.new_sessions, today.active_identities, distinct) == (
            PRUNE_EVERY + 1, PRUNE_EVERY + 1, PRUNE_EVERY + 1, PRUNE_EVERY + 1)
        stored = _stored_days(path)
        assert len(stored) == 1 and 1 <= int(stored[0][1]) <= PRUNE_EVERY + 1  # part of it still pending
    finally:
        await store.close()


async def test_any_writer_crossing_the_boundary_rolls_up_first(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await store.arrive("ann", "c")
        later_ms = to_ms(clock.now() + KEEP_SECONDS + 1)
        with sqlite3.connect(path) as conn:  # as an import or a purge writes them: no visit among them
            write_event_rows(conn, [(later_ms, "created", "imported", 0)] * PRUNE_EVERY)
        assert _raw(path, "SELECT COUNT(*) FROM lkpersist_events WHERE identity = 'ann'") == [(0,)]  # pruned
        today, distinct = await _today(store)
        assert (today.connections, today.new_sessions, today.active_identities, distinct) == (1, 1, 1, 1)
        assert _stored_days(path) == [(today.date, 1, 0, 1)]
    finally:
        await store.close()


async def test_a_reader_without_the_hash_key_reads_the_same_stats(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock, analytics=AnalyticsSettings(key=KEY))  # the agents' key, kept outside the file
    reader = _open(path, clock, analytics=AnalyticsSettings(), create=False)  # an operator without it
    try:
        await _visits(store, ["ann", "bo"])
        await store.purge()
        await _visits(store, ["ann", "cy"])  # ann: already counted today, in the day rows
        expected = ((4, 1, 3), 3)
        for stats in (await _today(store), await _today(reader)):
            assert ((stats[0].connections, stats[0].returns, stats[0].active_identities), stats[1]) == expected
    finally:
        await reader.close()
        await store.close()


_OTHER_PROCESS = """
import asyncio, sys
from lkpersist.clock import VirtualClock, to_ms
from lkpersist.stores import open_store

async def main() -> None:
    store = open_store(f"sqlite:///{sys.argv[1]}", clock=VirtualClock(float(sys.argv[2])))
    for identity in sys.argv[3:]:
        await store.arrive(identity, "other-process")
        await store.leave(identity, "other-process")
    await store.close()

asyncio.run(main())
"""


def _in_another_process(path: Path, now: float, *identities: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("LKPERSIST_IDENTITY_KEY", None)  # the file's own secret, as this test's stores use
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(path), str(now), *identities], env=env, check=True)


async def test_two_processes_count_each_identity_once(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock, analytics=AnalyticsSettings())
    try:
        await _visits(store, ["ann", "bo"])
        await asyncio.to_thread(_in_another_process, path, clock.now(), "ann", "cy")  # ann returns there
        reader = _open(path, clock, analytics=AnalyticsSettings(), create=False)  # a third, only reading
        try:
            for stats in (await _today(store), await _today(reader)):
                assert (stats[0].connections, stats[0].returns, stats[0].active_identities, stats[1]) == (4, 1, 3, 3)
            await reader.purge()  # the roll-up in a store that never wrote an arrival: the file's secret
            assert await _today(store) == await _today(reader)
            assert (await _today(store))[0].active_identities == 3
        finally:
            await reader.close()
        secret = _raw(path, "SELECT value FROM lkpersist_meta WHERE key = 'analytics_key'")[0][0]
        hashes = {row[0] for row in _raw(path, "SELECT identity_hash FROM lkpersist_analytics_identities")}
        assert hashes == {IdentityHasher(str(secret)).digest(i) for i in ("ann", "bo", "cy")}
    finally:
        await store.close()


async def test_visits_past_retention_are_rolled_up_then_dropped(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock, analytics=AnalyticsSettings(retention=2 * DAY, key=KEY))
    try:
        await _visits(store, ["ann", "bo"])  # pending: no prune boundary crossed
        clock.advance(3 * DAY)
        await store.purge()
        assert _stored_days(path) == [] and _raw(path, "SELECT COUNT(*) FROM lkpersist_analytics_identities") == [(0,)]
        week = await store.daily_stats(7)
        assert sum(day.connections for day in week.days) == 0 and week.distinct_identities == 0
        await _visits(store, ["ann"])  # a return, counted on today
        today, distinct = await _today(store)
        assert (today.connections, today.returns, today.active_identities, distinct) == (1, 1, 1, 1)
    finally:
        await store.close()


async def test_an_outage_merge_is_counted_once_through_the_roll_up(tmp_path: Path, clock: VirtualClock) -> None:
    """The merge counts its tally itself; its ``created``/``returned`` events are not the roll-up's."""
    store = _open(tmp_path / "s.db", clock)
    try:
        delta = OfflineDelta("ann", first_at=T0, connects=3, disconnects=3, created=True, presence_at=T0 + 20,
                             connected=False)
        clock.advance(30)
        await store.apply_offline(delta)
        await _visits(store, ["bo"])
        before = await _today(store)
        assert (before[0].connections, before[0].returns, before[0].new_sessions, before[1]) == (4, 2, 2, 2)
        await store.purge()
        assert await _today(store) == before
    finally:
        await store.close()


async def test_a_file_of_layout_4_is_upgraded_and_counts_nothing_twice(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "old.db"
    store = _open(path, clock)
    await _visits(store, ["ann", "bo"])
    await store.purge()  # the day rows hold ann's and bo's visits, as layout 4 wrote them at each arrival
    await store.close()
    with sqlite3.connect(path) as conn:  # as layout 4 left it: no mark on the events, no watermark
        conn.execute("ALTER TABLE lkpersist_events DROP COLUMN visit_hash")
        conn.execute("DELETE FROM lkpersist_meta WHERE key = 'analytics_rolled_up'")
        conn.execute("UPDATE lkpersist_meta SET value = '4' WHERE key = 'schema_version'")
    store = _open(path, clock)
    try:
        await _visits(store, ["ann", "cy"])
        today, distinct = await _today(store)
        assert (today.connections, today.returns, today.new_sessions, today.active_identities, distinct) == (4, 1, 3, 3, 3)
        await store.purge()
        assert await _today(store) == (today, distinct)
    finally:
        await store.close()
    assert _raw(path, "SELECT value FROM lkpersist_meta WHERE key = 'schema_version'") == [(str(STORAGE_VERSION),)]
    assert "visit_hash" in {row[1] for row in _raw(path, "PRAGMA table_info(lkpersist_events)")}
