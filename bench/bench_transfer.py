"""Benchmark: ``sessions export`` / ``sessions import`` throughput between SQLite and Redis, and peak RSS.

Usage: ``.venv/bin/python bench/bench_transfer.py [--sessions N] [--turns K] [--rounds R] [--rss-sessions M] [--rss-turns T] [--only PART]`` (PART: throughput, export, memory, transaction)

Throughput (N sessions of K turns, default 20,000 of 10): a SQLite file is filled through
``import_records``, then exported to a file, imported into Redis, exported from Redis and imported into a
second SQLite file, each timed (sessions/s), ``--rounds`` times (default 3) into fresh targets, the best
round of each step kept. Each is set against its floor measured in the same run: the
same rows read back by two bare SELECTs (SQLite) or the same keys read as the export reads them
(Redis: five commands a session in one MULTI/EXEC per page, hiredis-packed and parsed), with no decoding; the ratio is what lkpersist's decoding, encoding and checks cost on top.

``--only export``: the two exports alone (SQLite and Redis, N sessions of K turns), ``--rounds`` rounds
interleaved in one process over the same data, best round of each: wall rate, rate per second of this
process's CPU, and for Redis the rate per second of the server's own CPU (``INFO cpu``; on a 2-core machine
the export's wall rate is bounded by the slower of the two when they overlap).

``--only transaction``: SQLite's import transaction alone (``stores.sqlite.transfer.import_batch`` on the
store's connection, in this thread, 500 new sessions per call, best of five fresh files), per CPU second:
the part of an import into SQLite that runs on the store's worker thread.

Memory (M sessions of T turns, default 100,000 of 20, and a tenth of that): export and import each run in
a child process of their own, which reports its peak RSS (VmHWM); flat means the two sizes cost the
same; then the file is imported into Redis and exported from it, the export in a child of its own. It
starts its own redis-server on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import redis

from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from lkpersist.transfer.export import export_sessions
from lkpersist.transfer.import_ import import_sessions

sys.path.insert(0, os.path.dirname(__file__))
from bench_connect import own_redis_server

BATCH = 500


def records(start: int, count: int, turns: int) -> list[SessionRecord]:
    now = time.time()
    return [
        SessionRecord(
            Session(identity=f"user-{index:07d}", joined_at=now - 3600, last_seen=now - 60, reconnect_count=2,
                    language="en", metadata={"plan": "pro", "source": "bench"}, context={"summary": "the weather"},
                    expires_at=now + 600, ttl=600.0, greeted_visit=3),
            tuple(Turn(("user", "assistant")[t % 2], f"turn {t}: a sentence of about the usual length said aloud",
                       now - 600 + t, f"item-{index}-{t}") for t in range(turns)),
        )
        for index in range(start, start + count)
    ]


async def fill(url: str, sessions: int, turns: int) -> float:
    store = open_store(url)
    try:
        started = time.perf_counter()
        for start in range(0, sessions, BATCH):
            await store.import_records(records(start, min(BATCH, sessions - start), turns))
        return sessions / (time.perf_counter() - started)
    finally:
        await store.close()


class Rate(float):
    """Sessions per second of wall time, with the rate per second of this process's CPU time beside it
    (on a machine shared with other work, the CPU figure is the steadier one; it leaves out Redis' own)."""

    cpu: float

    @classmethod
    def of(cls, sessions: int, wall: float, cpu: float) -> Rate:
        rate = cls(sessions / wall)
        rate.cpu = sessions / cpu if cpu else 0.0
        return rate


async def export_to(url: str, path: Path) -> Rate:
    store = open_store(url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        with path.open("w", encoding="utf-8") as out:
            result = await export_sessions(store, out, status="all")
        return Rate.of(result.sessions, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await store.close()


async def import_from(url: str, path: Path) -> Rate:
    store = open_store(url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        with path.open(encoding="utf-8") as lines:
            result = await import_sessions(store, lines)
        assert result.bad_lines == 0 and not result.failed
        return Rate.of(result.sessions, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await store.close()


def sqlite_floor(path: Path) -> float:
    """Two bare SELECTs of every session row and turn row: no decoding, no Python per value."""
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    count = len(conn.execute("SELECT * FROM lkpersist_sessions").fetchall())
    conn.execute("SELECT session_id, payload FROM lkpersist_turns ORDER BY session_id, seq").fetchall()
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def wire_floor(url: str, prefix: str, sessions: int) -> float:
    """The keys an export reads, read as it reads them (``stores/redis/snapshots.py``: five commands a
    session in one MULTI/EXEC per page, packed and parsed by hiredis through ``wire``), nothing decoded:
    the floor of the export's own read path (a pipeline of redis-py, the floor before, is slower than the export itself now)."""
    from lkpersist.stores.redis import wire

    async def read_all() -> float:
        store = RedisStore.from_url(url, prefix=prefix)
        client = redis.asyncio.Redis.from_url(url)
        started = time.perf_counter()
        for start in range(0, sessions, BATCH):
            packed = [wire.pack(("MULTI",))]
            for index in range(start, min(start + BATCH, sessions)):
                _, keys = store.keys.keys_for(f"user-{index:07d}")
                packed += [wire.pack(("HGETALL", keys.session)), wire.pack(("HGETALL", keys.metadata)),
                           wire.pack(("HGETALL", keys.context)), wire.pack(("LRANGE", keys.turns, 0, -1)),
                           wire.pack(("HGETALL", keys.devices))]
            packed.append(wire.pack(("EXEC",)))
            await wire.run_commands(client, packed, len(packed))
        elapsed = time.perf_counter() - started
        await client.aclose()
        await store.close()
        return sessions / elapsed

    return asyncio.run(read_all())


def throughput(sessions: int, turns: int, tmp: Path, redis_url: str, rounds: int) -> None:
    """The chain SQLite → file → Redis → file → SQLite, ``rounds`` times over fresh targets; each step's best
    round is kept (one run of a step varies by ±15 % on a 2-core machine)."""
    first = f"sqlite:///{tmp / 'first.db'}"
    print(f"throughput, {sessions:,} sessions of {turns} turns, best of {rounds} rounds "
          "(sessions/s; floor = raw reads, same run):")
    print(f"  import_records into SQLite (building)   {asyncio.run(fill(first, sessions, turns)):10,.0f}")
    best: dict[str, tuple[Rate, float | None]] = {}
    for round_ in range(rounds):
        for label, rate, floor in _chain(first, tmp, redis_url, f"benchtransfer{round_}", round_, sessions):
            kept = best.get(label)
            if kept is None or rate > kept[0]:
                best[label] = (rate, floor)
        redis.Redis.from_url(redis_url).flushall()
    for label, (rate, floor) in best.items():
        ratio = "" if floor is None else f"   floor {floor:10,.0f}  ({rate / floor:.2f} of it)"
        print(f"  {label:<40} {rate:10,.0f}   per CPU second {rate.cpu:10,.0f}{ratio}")


def _chain(first: str, tmp: Path, redis_url: str, prefix: str, round_: int,
           sessions: int) -> list[tuple[str, Rate, float | None]]:
    """One round of the chain, into a fresh Redis prefix and a fresh second file."""
    middle, second = f"{redis_url}?prefix={prefix}", f"sqlite:///{tmp / f'second-{round_}.db'}"
    return [
        ("export from SQLite", asyncio.run(export_to(first, tmp / "one.ndjson")), sqlite_floor(tmp / "first.db")),
        ("import into Redis", asyncio.run(import_from(middle, tmp / "one.ndjson")), None),
        ("export from Redis", asyncio.run(export_to(middle, tmp / "two.ndjson")), wire_floor(redis_url, prefix, sessions)),
        ("import into SQLite", asyncio.run(import_from(second, tmp / "two.ndjson")), None),
        ("import again into SQLite (unchanged)", asyncio.run(import_from(second, tmp / "two.ndjson")), None),
    ]


def exports(sessions: int, turns: int, tmp: Path, redis_url: str, rounds: int) -> None:
    """Export from SQLite and from Redis alone, interleaved over ``rounds``, each one's best round kept."""
    first, middle = f"sqlite:///{tmp / 'first.db'}", f"{redis_url}?prefix=benchexport"
    asyncio.run(fill(first, sessions, turns))
    asyncio.run(export_to(first, tmp / "one.ndjson"))
    asyncio.run(import_from(middle, tmp / "one.ndjson"))
    server = redis.Redis.from_url(redis_url)
    best: dict[str, tuple[Rate, float]] = {}
    for _ in range(rounds):
        for label, url in (("export from SQLite", first), ("export from Redis", middle)):
            before = _server_cpu(server)
            rate = asyncio.run(export_to(url, tmp / "out.ndjson"))
            spent = _server_cpu(server) - before
            if label not in best or rate > best[label][0]:
                best[label] = (rate, sessions / spent if "Redis" in label and spent else 0.0)
    print(f"exports alone, {sessions:,} sessions of {turns} turns, best of {rounds} rounds (sessions/s):")
    for label, (rate, served) in best.items():
        server_rate = f"   per Redis CPU second {served:10,.0f}" if served else ""
        print(f"  {label:<20} {rate:10,.0f}   per CPU second {rate.cpu:10,.0f}{server_rate}")
    server.close()


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def sqlite_transaction(sessions: int, turns: int, tmp: Path) -> None:
    """SQLite's import transaction alone: the store's ``import_batch`` called directly, per CPU second."""
    from lkpersist.clock import to_ms
    from lkpersist.model.transfer import prepared
    from lkpersist.stores.sqlite import SQLiteStore
    from lkpersist.stores.sqlite import transfer as sqlite_transfer

    batches = [[prepared(r, 500) for r in records(start, min(BATCH, sessions - start), turns)]
               for start in range(0, sessions, BATCH)]
    best = 0.0
    for round_ in range(5):
        path = tmp / f"transaction-{round_}.db"
        store = open_store(f"sqlite:///{path}")
        asyncio.run(store.import_records([]))  # the schema
        assert isinstance(store, SQLiteStore)
        settings = store.settings
        asyncio.run(store.close())
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = NORMAL")
        cpu = time.process_time()
        for batch in batches:
            sqlite_transfer.import_batch(conn, settings, batch, "merge", to_ms(time.time()))
        best = max(best, sessions / (time.process_time() - cpu))
        conn.close()
    print(f"SQLite import transaction alone, {sessions:,} new sessions of {turns} turns: "
          f"{best:,.0f} per CPU second (best of 5)")


def _child(kind: str, url: str, path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    rate = asyncio.run(export_to(url, Path(path)) if kind == "export" else import_from(url, Path(path)))
    queue.put((float(rate), peak_rss_mb()))


def peak_rss_mb() -> float:
    """This process's own high-water mark (VmHWM). Not getrusage: its ru_maxrss survives fork and exec,
    so a spawned child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(kind: str, url: str, path: Path) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(kind, url, str(path), queue))
    child.start()
    result = queue.get()
    child.join()
    return result  # type: ignore[no-any-return]


def memory(sessions: int, turns: int, tmp: Path, redis_url: str) -> None:
    print(f"peak RSS of the process doing the work, sessions of {turns} turns (SQLite to file, file to SQLite; "
          "the file into Redis and out again):")
    for count in (sessions // 10, sessions):
        source, target = tmp / f"rss-{count}.db", tmp / f"rss-{count}-copy.db"
        asyncio.run(fill(f"sqlite:///{source}", count, turns))
        dump = tmp / f"rss-{count}.ndjson"
        export_rate, export_rss = in_child("export", f"sqlite:///{source}", dump)
        import_rate, import_rss = in_child("import", f"sqlite:///{target}", dump)
        size = dump.stat().st_size / 2**20
        print(f"  {count:>8,} sessions ({size:,.0f} MB file): export {export_rss:6.1f} MB ({export_rate:,.0f}/s), "
              f"import {import_rss:6.1f} MB ({import_rate:,.0f}/s)")
        middle = f"{redis_url}?prefix=benchrss{count}"
        asyncio.run(import_from(middle, dump))
        redis_rate, redis_rss = in_child("export", middle, tmp / f"rss-{count}-redis.ndjson")
        print(f"  {count:>8,} sessions from Redis: export {redis_rss:6.1f} MB ({redis_rate:,.0f}/s)")
        redis.Redis.from_url(redis_url).flushall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--rss-sessions", type=int, default=100_000)
    parser.add_argument("--rss-turns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="throughput: rounds, the best of each step kept")
    parser.add_argument("--only", choices=("throughput", "export", "memory", "transaction"), help="run one part only")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    if args.only == "transaction":
        with tempfile.TemporaryDirectory(prefix="lkpersist-bench-") as tmp:
            sqlite_transaction(args.sessions, args.turns, Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="lkpersist-bench-") as tmp, own_redis_server() as url:
        if args.only == "export":
            exports(args.sessions, args.turns, Path(tmp), url, args.rounds)
            return
        if args.only != "memory":
            throughput(args.sessions, args.turns, Path(tmp), url, args.rounds)
        if args.only != "throughput":
            memory(args.rss_sessions, args.rss_turns, Path(tmp), url)


if __name__ == "__main__":
    main()
