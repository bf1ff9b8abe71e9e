"""Benchmark: a ``lkpersist metrics`` scrape at 1,000,000 sessions, SQLite and Redis (target: under 200 ms).

Usage: ``.venv/bin/python bench/bench_metrics.py [--sessions N] [--turns K]``

The stores are built by the scale benchmarks' own builders (``bench_scale_sqlite._build``,
``bench_scale_redis.load``: half the sessions live, half expired), plus K turns for every tenth session.
Then the exporter is served in this process and scraped over HTTP: seven scrapes that each run the
count pass (census and ping; median and best), and one served from the cached reading, beside the
store's plain ``count("all")`` measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import redis

from lkpersist.clock import Clock, VirtualClock, to_ms
from lkpersist.crypto.codec import PLAIN
from lkpersist.exporter.server import serve
from lkpersist.exporter.snapshot import SnapshotCache
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.redis.keys import KeyLayout
from lkpersist.stores.redis.records import frame_turn

sys.path.insert(0, os.path.dirname(__file__))
from bench_connect import own_redis_server
from bench_scale_redis import load as load_redis
from bench_scale_sqlite import NOW_MS, _identity
from bench_scale_sqlite import _build as build_sqlite

EVERY = 10
"""One session in this many gets turns."""


def add_sqlite_turns(path: Path, sessions: int, turns: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    rows = ((session_id, seq, f"i{session_id}-{seq}", Turn("user", "hello there", 1.8e9, None).to_json())
            for session_id in range(1, sessions + 1, EVERY) for seq in range(1, turns + 1))
    conn.executemany("INSERT INTO lkpersist_turns (session_id, seq, item_id, payload) VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()


def add_redis_turns(url: str, prefix: str, sessions: int, turns: int) -> None:
    client, layout = redis.Redis.from_url(url), KeyLayout(prefix)
    frame = frame_turn(Turn("user", "hello there", 1.8e9, None), PLAIN)
    for start in range(0, sessions, 20_000 * EVERY):
        pipe = client.pipeline(transaction=False)
        for index in range(start, min(start + 20_000 * EVERY, sessions), EVERY):
            pipe.rpush(layout.keys_for(f"user-{index:07d}")[1].turns, *([frame] * turns))
        pipe.execute()
    client.close()


SCRAPES = 7


async def measure(label: str, store: SessionStore) -> None:
    started = time.perf_counter()
    count = await store.count("all")
    counted = time.perf_counter() - started
    cache = SnapshotCache(store, interval=0)  # every scrape a count pass, to time it; then cached
    server, thread = await serve(cache, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        cold = [await _scrape(url) for _ in range(SCRAPES)]
        cache.interval = 3600
        await _scrape(url)
        cached, body = await _scrape(url, keep=True)
    finally:
        server.shutdown()
        thread.join()
    shown = ("lkpersist_turns_stored ", "lkpersist_census_seconds ")
    values = "; ".join(line for line in body.splitlines() if line.startswith(shown))
    cold.sort()
    print(f"  {label:<7} {count:,} sessions: count('all') {counted * 1000:6.1f} ms; scrape with its count pass: "
          f"median {cold[SCRAPES // 2] * 1000:6.1f} ms, best {cold[0] * 1000:6.1f} ms; cached {cached * 1000:4.1f} ms"
          f"\n          {values}")


async def _scrape(url: str, *, keep: bool = False) -> Any:
    started = time.perf_counter()
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=60).read().decode())
    elapsed = time.perf_counter() - started
    return (elapsed, body) if keep else elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {args.turns} turns on every "
          f"{EVERY}th session")
    with tempfile.TemporaryDirectory(prefix="lkpersist-bench-") as tmp:
        path = Path(tmp) / "sessions.db"
        builder = multiprocessing.get_context("spawn").Process(target=build_sqlite, args=(str(path), args.sessions))
        builder.start()
        builder.join()
        add_sqlite_turns(path, args.sessions, args.turns)
        asyncio.run(_measure_url("SQLite", f"sqlite:///{path}", VirtualClock(NOW_MS / 1000)))  # the builder's now
    with own_redis_server("--maxmemory", "4gb") as url:
        prefix = f"metrics-{uuid.uuid4().hex[:8]}"
        load_redis(redis.Redis.from_url(url), KeyLayout(prefix), args.sessions, to_ms(time.time()))
        add_redis_turns(url, prefix, args.sessions, args.turns)
        asyncio.run(_measure_url("Redis", f"{url}?prefix={prefix}"))
    assert _identity(0) == "user-0000000"  # the builders' identities, which the turns were added to


async def _measure_url(label: str, url: str, clock: Clock | None = None) -> None:
    store = open_store(url, clock=clock)
    try:
        await measure(label, store)
    finally:
        await store.close()


if __name__ == "__main__":
    main()
