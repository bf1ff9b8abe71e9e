"""SQLite at scale: listing, counting and purging 1,000,000 sessions in bounded memory; connect throughput.

Usage: ``.venv/bin/python bench/bench_scale_sqlite.py [--sessions N] [--connects M] [--path FILE]``

A child process fills a fresh file through the real schema (the store creates it; rows are then written
with ``executemany``, which is much faster than a million connects): the newest half of the sessions
are live, the older half expired, as in a real deployment. The parent then times, through the public
store API, the first page of each listing (``expired`` is the worst case: the index walk skips every
live row first), a deep page via its cursor, the counts, a dry-run and a real purge of the expired half,
and reports its own peak RSS after each phase: building happened in another process, so the figure is
what listing and purging cost. Last, connect throughput in one process (each connect is one
``BEGIN IMMEDIATE`` transaction running the Python rule), beside a raw-SQL upsert baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from lkpersist.clock import VirtualClock
from lkpersist.model.session import STATUSES
from lkpersist.stores.paging import encode_cursor
from lkpersist.stores.sqlite import SQLiteStore

NOW_MS = 1_800_000_000_000
STEP_MS = 500  # one session every half second, going back in time
INSERT = (
    "INSERT INTO lkpersist_sessions (identity, joined_at, last_seen, reconnect_count, connected, expires_at, "
    "ttl, deadline, greeted_visit, schema_version, language, metadata, context) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _identity(index: int) -> str:
    return f"user-{index:07d}"


def _rows(sessions: int) -> Iterator[tuple[object, ...]]:
    """Session ``i`` was last seen ``i`` steps ago; the newest half is live, the older half expired."""
    for index in range(sessions):
        last_seen = NOW_MS - index * STEP_MS
        live = index < sessions // 2
        deadline = NOW_MS + 600_000 if live else NOW_MS - 1_000
        yield (_identity(index), last_seen - 60_000, last_seen, 1, 0, deadline, 600_000, deadline, 2, 1, "en",
               '{"plan":"pro","source":"bench"}', '{"summary":"asked about the weather"}')


def _build(path: str, sessions: int) -> None:
    """Runs in a child process so the parent's peak RSS reflects only the measured operations."""
    asyncio.run(_create_schema(Path(path)))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    rows = _rows(sessions)
    while True:
        chunk = [row for _, row in zip(range(100_000), rows, strict=False)]
        if not chunk:
            break
        conn.execute("BEGIN")
        conn.executemany(INSERT, chunk)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _create_schema(path: Path) -> None:
    store = SQLiteStore(path)
    await store.count("all")
    await store.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _Report:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def line(self, label: str, seconds: float, extra: str = "") -> None:
        print(f"  {label:<44} {seconds * 1000:10.1f} ms   peak RSS {_peak_rss_mb():6.1f} MB  {extra}")


async def _timed(report: _Report, label: str, coro: object, extra: str = "") -> object:
    started = time.perf_counter()
    result = await coro  # type: ignore[misc]
    report.line(label, time.perf_counter() - started, extra.format(result=result))
    return result


async def _measure_scale(path: Path, sessions: int) -> None:
    report = _Report()
    store = SQLiteStore(path, clock=VirtualClock(NOW_MS / 1000))
    try:
        await _timed(report, "open (first query)", store.count("all"))
        for status in STATUSES:
            await _timed(report, f"list_page({status!r}, limit=500) first page", store.list_page(status, 500),
                         "{result.items[0].identity}..")
        deep = encode_cursor(NOW_MS - (sessions * 9 // 10) * STEP_MS, _identity(sessions * 9 // 10))
        await _timed(report, "list_page('all') at 90% depth via cursor", store.list_page("all", 500, deep),
                     "{result.items[0].identity}..")
        for status in STATUSES:
            await _timed(report, f"count({status!r})", store.count(status), "= {result}")
        await _timed(report, "purge(dry_run=True)", store.purge(dry_run=True), "= {result.purged}")
        started = time.perf_counter()
        result = await store.purge()
        elapsed = time.perf_counter() - started
        report.line("purge() of the expired half, 1000-row chunks", elapsed,
                    f"= {result.purged} ({result.purged / elapsed:,.0f} sessions/s)")
        await _timed(report, "count('all') after purge", store.count("all"), "= {result}")
    finally:
        await store.close()


async def _measure_connects(path: Path, connects: int) -> None:
    store = SQLiteStore(path)
    identities = [f"caller-{index}" for index in range(max(1, connects // 10))]
    try:
        await store.count("all")
        started = time.perf_counter()
        for index in range(connects):
            await store.connect(identities[index % len(identities)])
        sequential = connects / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, connects, 64):
            await asyncio.gather(*(store.connect(identities[i % len(identities)]) for i in range(start, start + 64)))
        concurrent = connects / (time.perf_counter() - started)
    finally:
        await store.close()
    print(f"  store.connect, one task                       {sequential:10,.0f} connects/s")
    print(f"  store.connect, 64 concurrent tasks            {concurrent:10,.0f} connects/s")
    print(f"  raw SQL upsert, one transaction each (floor)  {_raw_upserts(path, connects):10,.0f} upserts/s")


def _raw_upserts(path: Path, count: int) -> float:
    """The baseline DESIGN.md quotes: a bare upsert per transaction, WAL + synchronous=NORMAL, no Python rule."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    started = time.perf_counter()
    for index in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_raw VALUES (?, 0) ON CONFLICT (k) DO UPDATE SET n = n + 1",
                     (f"caller-{index % 1000}",))
        conn.execute("COMMIT")
    rate = count / (time.perf_counter() - started)
    conn.execute("DROP TABLE bench_raw")
    conn.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--connects", type=int, default=20_000)
    parser.add_argument("--path", type=Path, help="database file to create (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lkpersist-bench-") as tmp:
        path = args.path or Path(tmp) / "sessions.db"
        if path.exists():
            parser.error(f"{path} exists; the benchmark builds a fresh file")
        started = time.perf_counter()
        builder = multiprocessing.get_context("spawn").Process(target=_build, args=(str(path), args.sessions))
        builder.start()
        builder.join()
        if builder.exitcode != 0:
            raise SystemExit("building the database failed")
        size_mb = path.stat().st_size / 2**20
        print(f"SQLite {sqlite3.sqlite_version}: {args.sessions:,} sessions built in "
              f"{time.perf_counter() - started:.1f} s ({size_mb:,.0f} MB), newest half live, oldest half expired")
        asyncio.run(_measure_scale(path, args.sessions))
        print(f"connect throughput ({args.connects:,} connects of {max(1, args.connects // 10):,} identities):")
        asyncio.run(_measure_connects(path, args.connects))


if __name__ == "__main__":
    main()
