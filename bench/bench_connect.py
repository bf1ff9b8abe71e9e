"""Benchmark: ``RedisStore`` arrivals (connect, the single-connection ``arrive``) against a bare GET, same
client, same run; ``--breakdown`` says where an arrival's time goes.

Cases, each on its own pool of 1000 identities, ``asyncio`` tasks sharing one client:
- ``GET``: one redis-py GET per op, the floor of one round trip through this client;
- ``naive``: the seed guide's pattern (GET the session, then WATCH / GET / MULTI SETEX EXEC), with the
  retry on WatchError the guide forgot; retries are counted;
- ``new``: ``connect`` of an identity never seen (a new session each op);
- ``returning``: ``connect`` of a participant whose previous visit ended (its connection went stale:
  the store's clock moves 0.2 s per op and the pool is walked in turn, so each identity comes back after
  200 s: past the 90 s presence timeout, within its TTL), no turns requested: a return visit each op;
- ``join``: ``connect`` of a participant already connected (a repeated event), the old bench's case.
Targets (issue 13): ``new`` and ``returning`` >= 0.85x a GET's throughput at concurrency 64 and >= 0.7x
(per-op time) at concurrency 1.

``--breakdown`` (returning case): GET; an EVALSHA of ``return 1`` with an arrival's keys and arguments
(routing, packing, the script call); ``bare calls``, a script making only the Redis commands an arrival
cannot do without (``FLOOR_SCRIPT``: the floor of any one-script arrival); the arrival's script through
``execute_command``, one command per call (its work in Redis and hiredis parsing the reply); the same
through the store's ``Coalescer`` (``pipelined``: the calls made at once go out together, as one EVALSHA
of the script running each in turn, a lone one as a plain command, as ``connect`` sends them); the store's ``connect`` (the Arrival and Session
built in Python); and the server's own time per op from ``INFO commandstats``.

    .venv/bin/python bench/bench_connect.py [--redis-url URL] [--seconds 3] [--concurrency 1 64] [--breakdown]

Without ``--redis-url`` it starts its own redis-server on a free loopback port (like the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore

POOL = 1000
ROUNDS = 3


@dataclass
class Result:
    name: str
    concurrency: int
    ops: int
    seconds: float
    retries: int = 0

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    @property
    def us_per_op(self) -> float:
        return 1e6 / self.ops_per_s

    def line(self) -> str:
        latency_ms = self.seconds * self.concurrency / self.ops * 1000
        extra = f"  retries {self.retries} ({100 * self.retries / self.ops:.1f}%)" if self.name == "naive" else ""
        return (f"  {self.name:<8} c={self.concurrency:<3} {self.ops_per_s:>9,.0f} ops/s  {self.us_per_op:>7.1f} us/op"
                f"  mean latency {latency_ms:6.2f} ms{extra}")


class SteppingClock:
    """A store clock the returning case moves by STEP per op, so each pool identity comes back after
    POOL x STEP seconds (200 s: past the presence timeout, within the TTL): a return visit every time."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t


STEP = 0.2

# The Redis commands a returning arrival cannot do without, and nothing else: read the session, its
# metadata and context, write the session, index it twice, publish the event. KEYS and ARGV as arrive's.
FLOOR_SCRIPT = """
local s = redis.call('HGETALL', KEYS[1])
local m, x = redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])
redis.call('HSET', KEYS[1], 'l', ARGV[2], 'c:-', ARGV[2] .. ',' .. ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[2] + 300000, ARGV[1])
redis.call('PUBLISH', ARGV[#ARGV], 'returned')
return {1, s, m, x}
"""
Op = Callable[[], Awaitable[int]]


async def _run(name: str, concurrency: int, seconds: float, op: Op) -> Result:
    counts = [0] * concurrency
    retries = [0] * concurrency
    stop = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        while time.perf_counter() < stop:
            retries[slot] += await op()
            counts[slot] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    return Result(name, concurrency, sum(counts), time.perf_counter() - started, sum(retries))


def _pool(name: str) -> Callable[[], str]:
    """The next identity of a pool, walked in turn."""
    walk = itertools.cycle([f"{name}-{index}" for index in range(POOL)])
    return lambda: next(walk)


def _operations(store: RedisStore, clock: SteppingClock) -> dict[str, Op]:
    client = store.client
    naive_prefix = f"{store.keys.prefix}:naive:"
    gets, naives, returns, joins, fresh = _pool("naive"), _pool("naive"), _pool("back"), _pool("join"), itertools.count()

    async def bare_get() -> int:
        await client.get(naive_prefix + gets())
        return 0

    async def naive() -> int:
        key = naive_prefix + naives()
        await client.get(key)  # the guide reads the session first, then updates it
        retries = 0
        while True:
            try:
                async with client.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    current = await pipe.get(key)
                    data: dict[str, Any] = json.loads(current) if current else {"reconnect_count": -1}
                    data["reconnect_count"] += 1
                    data["last_seen"] = time.time()
                    pipe.multi()
                    pipe.set(key, json.dumps(data), ex=300)
                    await pipe.execute()
                    return retries
            except WatchError:
                retries += 1

    async def new() -> int:
        await store.connect(f"new-{next(fresh)}")
        return 0

    async def returning() -> int:
        clock.t += STEP
        await store.connect(returns())
        return 0

    async def join() -> int:
        await store.connect(joins())
        return 0

    return {"GET": bare_get, "naive": naive, "new": new, "returning": returning, "join": join}


def _breakdown_operations(store: RedisStore, clock: SteppingClock) -> dict[str, Op]:
    """The returning arrival taken apart (see the module docstring), each on the ``back`` pool."""
    client, ctx, presence = store.client, store._redis, store._presence
    trivial = client.register_script("return 1")
    floor = client.register_script(FLOOR_SCRIPT)
    returns, gets = _pool("back"), _pool("naive")
    naive_prefix = f"{store.keys.prefix}:naive:"

    def next_call() -> tuple[tuple[bytes, ...], tuple[Any, ...]]:
        """An arrival's KEYS and ARGV, as ``RedisPresence.arrive`` builds them (analytics included)."""
        clock.t += STEP
        identity = returns()
        more_keys, tally = store._analytics.connect_part(identity, clock.t)
        keys, argv = ctx.script_call(identity, ("-", b"0", b"0", b"", b"", *tally))
        return (*keys, *more_keys), argv

    async def bare_get() -> int:
        await client.get(naive_prefix + gets())
        return 0

    async def call_only() -> int:
        keys, argv = next_call()
        await client.execute_command("EVALSHA", trivial.sha, len(keys), *keys, *argv)
        return 0

    async def bare_calls() -> int:
        keys, argv = next_call()
        await client.execute_command("EVALSHA", floor.sha, len(keys), *keys, *argv)
        return 0

    async def script() -> int:
        keys, argv = next_call()
        await client.execute_command("EVALSHA", presence._arrive.sha, len(keys), *keys, *argv)
        return 0

    async def pipelined() -> int:
        keys, argv = next_call()
        await presence._arrivals.call(keys, argv)
        return 0

    async def connect() -> int:
        clock.t += STEP
        await store.connect(returns())
        return 0

    return {"GET": bare_get, "return 1": call_only, "bare calls": bare_calls, "script": script,
            "pipelined": pipelined, "connect": connect}


async def bench(url: str, seconds: float, concurrencies: list[int], breakdown: bool) -> list[Result]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    clock = SteppingClock()
    store = open_store(url, prefix=prefix, clock=clock)
    assert isinstance(store, RedisStore)
    operations = (_breakdown_operations if breakdown else _operations)(store, clock)
    results = []
    try:
        await _seed_get_keys(store)
        for source in ("return 1", FLOOR_SCRIPT):  # the breakdown's EVALSHAs go out raw: no NOSCRIPT retry
            await store.client.script_load(source)
        for index in range(POOL):  # the returning pool's sessions, before any raw script touches them
            await store.connect(f"back-{index}")
        for name, op in operations.items():  # create every pool's identities once, and warm up
            for _ in range(POOL):
                await op()
        for concurrency in concurrencies:
            best: dict[str, Result] = {}
            server: dict[str, float] = {}
            for _ in range(ROUNDS):  # interleaved rounds, best kept: other load on the machine hits all cases
                for name, op in operations.items():
                    await store.client.config_resetstat()
                    result = await _run(name, concurrency, seconds / ROUNDS, op)
                    if name not in best or result.ops_per_s > best[name].ops_per_s:
                        best[name] = result
                        server[name] = await _server_us(store, name, result.ops)
            for name, result in best.items():
                results.append(result)
                extra = f"  server {server[name]:5.1f} us/op" if breakdown else ""
                print(result.line() + extra, flush=True)
    finally:
        await _cleanup(store, prefix)
        await store.close()
    return results


async def _seed_get_keys(store: RedisStore) -> None:
    """The keys the GET case reads: a session-sized JSON value each, as the naive case writes them."""
    value = json.dumps({"reconnect_count": 3, "last_seen": time.time(), "identity": "naive-0000"})
    async with store.client.pipeline(transaction=False) as pipe:
        for index in range(POOL):
            pipe.set(f"{store.keys.prefix}:naive:naive-{index}", value, ex=3600)
        await pipe.execute()


async def _server_us(store: RedisStore, name: str, ops: int) -> float:
    """Redis' own time per op of the case's command (INFO commandstats), in microseconds: per arrival, also
    when one EVALSHA carries a batch of them."""
    stats = await store.client.info("commandstats")
    entry = stats.get("cmdstat_get" if name == "GET" else "cmdstat_evalsha", {})
    return float(entry.get("usec", 0)) / max(ops, 1)


async def _cleanup(store: RedisStore, prefix: str) -> None:
    keys = [key async for key in store.client.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 500):
        await store.client.unlink(*keys[start:start + 500])


def report(results: list[Result], breakdown: bool) -> None:
    by = {(r.name, r.concurrency): r for r in results}
    print(f"\nratios ({os.cpu_count()} cores)")
    for concurrency in sorted({r.concurrency for r in results}):
        get = by[("GET", concurrency)]
        names = ("return 1", "bare calls", "script", "pipelined", "connect") if breakdown else ("naive", "new", "returning", "join")
        parts = []
        for name in names:
            r = by[(name, concurrency)]
            parts.append(f"{name} {r.ops_per_s / get.ops_per_s:4.2f}x (+{r.us_per_op - get.us_per_op:5.1f} us)")
        print(f"  c={concurrency:<3} vs GET throughput: " + "   ".join(parts))
    if not breakdown:
        print("  targets: new and returning >= 0.85x at c=64, >= 0.70x at c=1")


@contextmanager
def own_redis_server(*extra: str) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (no persistence); ``extra``: more server options."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found on PATH (apt-get install redis-server), or pass --redis-url")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each case")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--breakdown", action="store_true", help="take the returning arrival apart instead")
    args = parser.parse_args()
    print(f"arrivals vs a bare GET, {args.seconds:g} s per case (best of {ROUNDS} rounds), pools of {POOL} identities")
    if args.redis_url:
        results = asyncio.run(bench(args.redis_url, args.seconds, args.concurrency, args.breakdown))
    else:
        with own_redis_server() as url:
            results = asyncio.run(bench(url, args.seconds, args.concurrency, args.breakdown))
    report(results, args.breakdown)


if __name__ == "__main__":
    main()
