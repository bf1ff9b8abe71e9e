"""Benchmark: a new participant's arrival on SQLite against a bare upsert, from one task, same run.

Cases (each ``--count`` operations, in ``--rounds`` interleaved rounds, the best round kept):

- ``bare upsert``: one ``BEGIN IMMEDIATE`` / ``INSERT … ON CONFLICT DO UPDATE`` / ``COMMIT`` per op on a
  sqlite3 connection of this thread, WAL + ``synchronous=NORMAL``: the floor of one durable write;
- ``connect``: ``store.connect(identity)`` for a new identity each time (the single-connection arrival:
  the presence rule, the session row with its analytics counters, the ``created`` event row, which the
  day's analytics are rolled up from every few hundred events, one transaction, on the store's worker
  thread or inline, awaited from one asyncio task; the WAL checkpoints every 500 inline commits included);
- ``arrive``: ``store.arrive(identity, connection, device=…)`` for a new identity (what the controller sends).

Target (issue 13): connect ≥ 0.3× the bare upsert's throughput, durability unchanged (WAL,
``synchronous=NORMAL``, ``BEGIN IMMEDIATE``).

    .venv/bin/python bench/bench_connect_sqlite.py [--count 20000] [--rounds 3] [--profile connect]

``--profile CASE`` runs one round of that case under cProfile and prints where the time goes;
``--breakdown`` times the steps of an arrival on one connection of this thread (no store around it, no
checkpoint but SQLite's own auto-checkpoint): the bare upsert, the session row's insert alone, with the
row lookup, with the event row (every SQL statement of a new identity's arrival, parameters ready),
the same with the day's two analytics rows layout 4 wrote in every arrival (for comparison: they are
rolled up from the events now), and the whole ``operations.arrive`` (the rule in Python and the
roll-ups included), so the rest of ``connect`` is the async call and the checkpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from itertools import count as counter
from pathlib import Path

from lkpersist.clock import to_ms
from lkpersist.model.presence import ArrivalRequest, DeviceSeen
from lkpersist.model.session import Connection, Session
from lkpersist.stores.settings import StoreSettings
from lkpersist.stores.sqlite import SQLiteStore, analytics, operations
from lkpersist.stores.sqlite.db import open_connection
from lkpersist.stores.sqlite.events import write_event_rows
from lkpersist.stores.sqlite.rows import INSERT_ARRIVAL, ops_values, personal_values

Step = Callable[[int], None]
NOW = 1_800_000_000.0

DEVICE = DeviceSeen.bounded("web:Chrome:macOS", "Chrome on macOS")


def bare_upserts(path: Path, identities: list[str]) -> float:
    """Seconds for one transaction per upsert of a small row, the way DESIGN.md's 80k/s was measured."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    started = time.perf_counter()
    for identity in identities:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_raw VALUES (?, 0) ON CONFLICT (k) DO UPDATE SET n = n + 1", (identity,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def store_ops(op: Callable[[str], Awaitable[object]], identities: list[str]) -> float:
    started = time.perf_counter()
    for identity in identities:
        await op(identity)
    return time.perf_counter() - started


def _cases(store: SQLiteStore, path: Path) -> dict[str, Callable[[list[str]], Awaitable[float]]]:
    async def bare(identities: list[str]) -> float:
        return bare_upserts(path.with_name("bare.db"), identities)

    async def connect(identities: list[str]) -> float:
        return await store_ops(store.connect, identities)

    async def arrive(identities: list[str]) -> float:
        return await store_ops(lambda i: store.arrive(i, "agent:job:1", device=DEVICE), identities)

    return {"bare upsert": bare, "connect": connect, "arrive": arrive}


async def run(directory: Path, count: int, rounds: int, profile: str | None) -> None:
    path = directory / "sessions.db"
    store = SQLiteStore(path)
    await store.count("all")  # open the file and its worker thread before timing
    names = counter()
    cases = _cases(store, path)
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}  # CPU seconds of the process (the worker thread's included)
    try:
        if profile is not None:
            await _profile(cases[profile], [f"p{next(names)}" for _ in range(count)])
            return
        for _ in range(rounds):
            for name, case in cases.items():
                cpu = time.process_time()
                seconds = await case([f"new-{next(names)}" for _ in range(count)])
                cpu = time.process_time() - cpu
                best[name] = min(best.get(name, seconds), seconds)
                best_cpu[name] = min(best_cpu.get(name, cpu), cpu)
    finally:
        await store.close()
    _report(best, best_cpu, count)


async def _profile(case: Callable[[list[str]], Awaitable[float]], identities: list[str]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    await case(identities)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def _report(best: dict[str, float], best_cpu: dict[str, float], count: int) -> None:
    floor, cpu_floor = count / best["bare upsert"], count / best_cpu["bare upsert"]
    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
          f"{count:,} new identities per case, best of the rounds, one task (per CPU second: of the process)")
    for name, seconds in best.items():
        rate, cpu_rate = count / seconds, count / best_cpu[name]
        print(f"  {name:<12} {rate:>9,.0f} ops/s  {1e6 / rate:7.1f} us/op  {rate / floor:5.2f}x the bare upsert"
              f"   per CPU second: {1e6 / cpu_rate:7.1f} us/op  {cpu_rate / cpu_floor:5.2f}x")


def breakdown(directory: Path, count: int, rounds: int) -> None:
    """Best per-op time of each step, interleaved rounds, one connection of this thread."""
    path = directory / "steps.db"
    conn = open_connection(SQLiteStore(path)._db.target)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    settings, names = SQLiteStore(path).settings, counter()
    single = ArrivalRequest("-", claim=False)
    steps = _steps(conn, settings, single)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(count):
                step(next(names))
            best[name] = min(best.get(name, 1e9), time.perf_counter() - started)
    conn.close()
    floor = best["bare upsert"]
    for name, seconds in best.items():
        print(f"  {name:<34} {1e6 * seconds / count:7.1f} us/op  {floor / seconds:5.2f}x the bare upsert")


def _steps(conn: sqlite3.Connection, settings: StoreSettings, single: ArrivalRequest) -> dict[str, Step]:
    def tx(*statements: Step) -> Step:
        def step(n: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                statement(n)
            conn.execute("COMMIT")
        return step

    def row(n: int) -> tuple[object, ...]:  # as operations.arrive binds a new session's row
        session = Session(f"s{n}", NOW, NOW, connected=True, connections=(Connection("-", NOW, NOW),))
        return (session.identity, *ops_values(session), *personal_values(session, settings.codec), None)

    def bare(n: int) -> None:
        conn.execute("INSERT INTO bench_raw VALUES (?, 0) ON CONFLICT (k) DO UPDATE SET n = n + 1", (f"s{n}",))

    def lookup(n: int) -> None:
        conn.execute("SELECT * FROM lkpersist_sessions WHERE identity = ?", (f"s{n}",)).fetchone()

    def insert(n: int) -> None:
        conn.execute(INSERT_ARRIVAL, row(n))

    def event(n: int) -> None:
        write_event_rows(conn, [(to_ms(NOW), "created", f"s{n}", 0)], f"{n:032x}")

    def counted(n: int) -> None:  # layout 4's day counters and identity rows, a precomputed hash
        conn.execute(analytics.ADD_TO_DAY, ("2027-01-15", 1, 0, 1, 0))
        conn.execute(analytics.COUNT_IDENTITY, ("2027-01-15", f"{n:032x}"))

    def whole(n: int) -> None:
        operations.arrive(conn, settings, f"s{n}", to_ms(NOW), single)

    return {
        "bare upsert": tx(bare), "session row insert": tx(insert), "+ row lookup": tx(lookup, insert),
        "+ event row": tx(lookup, insert, event), "+ layout 4's day rows": tx(lookup, insert, event, counted),
        "operations.arrive (+ the rule)": whole,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=("connect", "arrive", "bare upsert"))
    parser.add_argument("--breakdown", action="store_true", help="time the steps of an arrival instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lkpersist-bench-") as tmp:
        if args.breakdown:
            breakdown(Path(tmp), args.count, args.rounds)
        else:
            asyncio.run(run(Path(tmp), args.count, args.rounds, args.profile))


if __name__ == "__main__":
    main()
