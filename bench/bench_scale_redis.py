"""Benchmark: listing, counting and purging with a million sessions in Redis, in bounded memory.

Loads ``--sessions`` sessions (default 1,000,000; half of them expired, the expired ones older) with
pipelined raw writes of the real layout, built with the store's own key helpers, then times:
the first page of ``list_page`` (active, expired, all) beside the floor of one listing round trip (every
bucket's newest index entries, then the page's hashes, in two pipelines), a second ``expired`` page by
its cursor, an ``all`` page from the active/expired boundary, ``count`` for each status, a dry-run purge and
the purge of every expired session. Peak RSS of this process (getrusage) is reported after each
phase: it must not grow with the number of sessions.

    .venv/bin/python bench/bench_scale_redis.py [--sessions N] [--redis-url URL]

Without ``--redis-url`` it starts its own redis-server (maxmemory 4 GB) on a free loopback port.
With ``--redis-url`` it writes under a fresh prefix and removes what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from lkpersist.clock import to_ms
from lkpersist.model.session import Status
from lkpersist.stores import open_store
from lkpersist.stores.paging import encode_cursor
from lkpersist.stores.redis import NATIVE_TTL_GRACE, RedisStore
from lkpersist.stores.redis.keys import KeyLayout

sys.path.insert(0, os.path.dirname(__file__))
from bench_connect import own_redis_server

CHUNK = 20_000
TTL_MS = 300_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(client: redis.Redis, layout: KeyLayout, sessions: int, now_ms: int) -> None:
    """Half active (connected in the last 5 minutes), half expired (gone an hour ago), in chunks."""
    for first in range(0, sessions, CHUNK):
        seen: dict[int, dict[str, Any]] = defaultdict(dict)
        deadlines: dict[int, dict[str, int]] = defaultdict(dict)
        pipe = client.pipeline(transaction=False)
        for index in range(first, min(first + CHUNK, sessions)):
            member, keys = layout.keys_for(f"user-{index:07d}")
            fields, deadline = _fields(index, sessions, now_ms)
            pipe.hset(keys.session, mapping=fields)  # type: ignore[arg-type]
            pipe.pexpire(keys.session, max(deadline - now_ms, 0) + to_ms(NATIVE_TTL_GRACE))
            bucket = layout.bucket_of(member)
            seen[bucket][member] = fields["l"]
            deadlines[bucket][member] = deadline
        for bucket, scores in seen.items():
            pipe.zadd(layout.seen_key(bucket), scores)
            pipe.zadd(layout.deadline_key(bucket), deadlines[bucket])
        pipe.execute()


def _fields(index: int, sessions: int, now_ms: int) -> tuple[dict[str, Any], int]:
    if index % 2 == 0:  # active: one agent connected, last beat within the last 5 minutes, greeted
        last = now_ms - 1000 - index * (TTL_MS - 60_000) // sessions
        fields = {"j": last, "l": last, "r": 0, "c": 1, "t": TTL_MS, "G": 1, "v": 1, f"c:agent:job-{index}": f"{last},{last}"}
        return fields, last + TTL_MS
    last = now_ms - 3_600_000 - index * 3  # expired: left an hour ago or more
    fields = {"j": last, "l": last, "r": 0, "c": 0, "e": last + TTL_MS, "t": TTL_MS, "G": 1, "v": 1}
    return fields, last + TTL_MS


async def timed(label: str, coro: Any) -> Any:
    started = time.perf_counter()
    result = await coro
    elapsed = time.perf_counter() - started
    shown = result if isinstance(result, int) else getattr(result, "purged", None)
    if hasattr(result, "items"):
        shown = f"{len(result.items)} items"
    print(f"  {label:<34} {elapsed * 1000:9.1f} ms   -> {shown}   peak RSS {peak_rss_mb():6.1f} MB", flush=True)
    return result


async def floor(store: RedisStore, page: int) -> int:
    """The least a first page can cost: one pipelined read of every bucket's newest index entries, then
    one of the page's session hashes (what listing does, without the status filter or decoding)."""
    keys, client = store.keys, store.client
    async with client.pipeline(transaction=False) as pipe:
        for bucket in range(keys.buckets):
            pipe.zrange(keys.seen_key(bucket), 0, 3, desc=True, withscores=True)
        entries = [member for reply in await pipe.execute() for member, _ in reply][:page + 1]
    async with client.pipeline(transaction=False) as pipe:
        for member in entries:
            pipe.hgetall(keys.keys_for_encoded(member.decode("ascii")).session)
        return len(await pipe.execute())


def boundary_cursor(layout: KeyLayout, sessions: int, now_ms: int) -> str:
    """The cursor just after the oldest active session: the next page of ``all`` is the newest expired."""
    index = (sessions - 1) // 2 * 2
    return encode_cursor(_fields(index, sessions, now_ms)[0]["l"], layout.encode_identity(f"user-{index:07d}"))


async def measure(url: str, prefix: str, sessions: int, now_ms: int) -> None:
    store = open_store(url, prefix=prefix)
    assert isinstance(store, RedisStore)
    try:
        base = await best_of("floor: one listing round trip (no filter, no decoding)", lambda: floor(store, 50))
        statuses: tuple[Status, ...] = ("active", "expired", "all")
        first = {status: await best_of(f"list_page({status!r}, limit=50)", lambda s=status: store.list_page(s, 50))
                 for status in statuses}
        cursor = (await store.list_page("expired", 50)).next_cursor
        await best_of("list_page('expired') second page", lambda: store.list_page("expired", 50, cursor=cursor))
        boundary = boundary_cursor(store.keys, sessions, now_ms)
        await best_of("list_page('all') across the active/expired boundary",
                      lambda: store.list_page("all", 50, cursor=boundary))
        await best_of("list_page('active', limit=500)", lambda: store.list_page("active", 500))
        print(f"  first page, expired / active: {first['expired'] / first['active']:.2f}x; "
              f"expired / floor: {first['expired'] / base:.2f}x; active / floor: {first['active'] / base:.2f}x")
        for status in statuses:
            await timed(f"count({status!r})", store.count(status))
        await timed("purge(dry_run=True)", store.purge(dry_run=True))
        started = time.perf_counter()
        result = await timed("purge() of the expired half", store.purge())
        rate = getattr(result, "purged", 0) / (time.perf_counter() - started)
        print(f"  purge rate: {rate:,.0f} sessions/s (each: session hash + 2 index entries)")
        await timed("count('all') after purge", store.count("all"))
    finally:
        await store.close()


async def best_of(label: str, read: Callable[[], Awaitable[Any]], runs: int = 3) -> float:
    """The best of ``runs`` runs of a read, in ms (the first also warms the connection pool)."""
    elapsed = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await read()
        elapsed.append((time.perf_counter() - started) * 1000)
    shown = f"{len(result.items)} items" if hasattr(result, "items") else result
    print(f"  {label:<52} {min(elapsed):8.1f} ms (best of {runs})  -> {shown}   peak RSS {peak_rss_mb():6.1f} MB",
          flush=True)
    return min(elapsed)


def run(url: str, sessions: int, clean_up: bool) -> None:
    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    layout = KeyLayout(prefix)
    print(f"loading {sessions:,} sessions (half expired) under prefix {prefix!r} ...", flush=True)
    started = time.perf_counter()
    now_ms = to_ms(time.time())
    load(client, layout, sessions, now_ms)
    memory = client.info("memory")["used_memory_human"]
    print(f"  loaded in {time.perf_counter() - started:.1f} s; Redis used_memory {memory}; "
          f"peak RSS {peak_rss_mb():.1f} MB", flush=True)
    try:
        asyncio.run(measure(url, prefix, sessions, now_ms))
    finally:
        if clean_up:  # a server of our own is simply stopped
            for key in client.scan_iter(match=f"{prefix}:*", count=5000):
                client.unlink(key)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    args = parser.parse_args()
    if args.redis_url:
        run(args.redis_url, args.sessions, clean_up=True)
        return
    with own_redis_server("--maxmemory", "4gb") as url:
        run(url, args.sessions, clean_up=False)


if __name__ == "__main__":
    main()
