"""Benchmark: the cost of encryption at rest on connect and on ``sessions ls``, Redis and SQLite, same run.

For each backend two stores hold the same sessions (language, 3 metadata and 2 context values, 10
turns each): one in plaintext, one encrypted (Fernet). Measured on both, interleaved, best of 3 rounds:

- connect: a returning participant's connect (the reconnect path) at ``--concurrency`` tasks, ops/s;
- ``sessions ls``: streaming every session page by page (``iter_sessions("all")``), sessions/s;
- Redis round trips per connect: commands the server processed per connect (``INFO stats``), which
  must be the same with and without encryption (one EVALSHA).

    .venv/bin/python bench/bench_encryption.py [--redis-url URL] [--sessions 2000] [--seconds 2]

Without ``--redis-url`` it starts its own redis-server on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_connect import own_redis_server

from lkpersist.crypto.codec import PLAIN_GUARD, ValueCodec
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore

ROUNDS = 3
TURNS = 10


@dataclass
class Pair:
    """One measurement with and without encryption."""

    backend: str
    case: str
    unit: str
    plain: float = 0.0
    encrypted: float = 0.0

    def keep_best(self, which: str, value: float) -> None:
        setattr(self, which, max(getattr(self, which), value))

    def line(self) -> str:
        ratio = self.encrypted / self.plain if self.plain else float("nan")
        return (f"  {self.backend:<7}{self.case:<26}{self.plain:>12,.1f}{self.encrypted:>12,.1f} {self.unit:<11}"
                f"  encrypted/plain {ratio:5.2f}")


async def seed(store: SessionStore, sessions: int) -> list[str]:
    identities = [f"bench-{n}" for n in range(sessions)]
    for identity in identities:
        await store.connect(identity)
        await store.update(identity, language="en-GB",
                           metadata={"email": f"{identity}@example.org", "plan": "pro", "room": "support-7"},
                           context={"summary": "asked about the invoice from March", "last_query": "refund?"})
        for t in range(TURNS):
            await store.append_turn(identity, Turn("user" if t % 2 else "assistant", f"turn {t} " * 8, 1.0 + t,
                                                   item_id=f"i{t}"))
    return identities


async def connect_rate(store: SessionStore, identities: list[str], concurrency: int, seconds: float) -> float:
    done = [0] * concurrency
    stop = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        pick = random.Random(slot).choice
        while time.perf_counter() < stop:
            await store.connect(pick(identities))
            done[slot] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    return sum(done) / (time.perf_counter() - started)


async def listing_rate(store: SessionStore) -> float:
    started = time.perf_counter()
    listed = 0
    async for _ in store.iter_sessions("all"):
        listed += 1
    return listed / (time.perf_counter() - started)


async def round_trips_per_connect(store: Any, identities: list[str], count: int = 200) -> float:
    """Requests the client sent per connect, counted at redis-py's ``execute_command`` (the one way out)."""
    client = store.client
    original = client.execute_command
    sent = 0

    async def counting(*args: Any, **options: Any) -> Any:
        nonlocal sent
        sent += 1
        return await original(*args, **options)

    client.execute_command = counting
    try:
        for identity in identities[:count]:
            await store.connect(identity)
    finally:
        client.execute_command = original
    return sent / count


async def bench_backend(backend: str, urls: dict[str, str], args: argparse.Namespace) -> list[Pair]:
    codecs: dict[str, ValueCodec] = {"plain": PLAIN_GUARD, "encrypted": FernetCodec([generate_key()])}
    stores = {which: open_store(urls[which], codec=codec) for which, codec in codecs.items()}
    concurrency = args.concurrency if backend == "redis" else min(args.concurrency, 8)
    connect = Pair(backend, f"connect (c={concurrency})", "ops/s")
    listing = Pair(backend, "sessions ls (all)", "sessions/s")
    pairs = [connect, listing]
    identities: dict[str, list[str]] = {}
    try:
        for which, store in stores.items():
            identities[which] = await seed(store, args.sessions)
        for _ in range(ROUNDS):  # interleaved: other load on the machine hits both alike
            for which, store in stores.items():
                rate = await connect_rate(store, identities[which], concurrency, args.seconds / ROUNDS)
                connect.keep_best(which, rate)
                listing.keep_best(which, await listing_rate(store))
        if backend == "redis":
            trips = Pair(backend, "round trips per connect", "requests")
            for which, store in stores.items():
                setattr(trips, which, await round_trips_per_connect(store, identities[which]))
            pairs.append(trips)
    finally:
        for which, store in stores.items():
            if backend == "redis":  # leave nothing behind on a Redis that was given to us
                for identity in identities.get(which, []):
                    await store.delete(identity)
            await store.close()
    return pairs


async def run(args: argparse.Namespace, redis_url: str) -> list[Pair]:
    run_id = uuid.uuid4().hex[:8]
    results = []
    separator = "&" if "?" in redis_url else "?"
    redis_urls = {which: f"{redis_url}{separator}prefix=benchenc-{run_id}-{which}" for which in ("plain", "encrypted")}
    results += await bench_backend("redis", redis_urls, args)
    with tempfile.TemporaryDirectory() as directory:
        sqlite_urls = {which: f"sqlite:///{Path(directory) / which}.db" for which in ("plain", "encrypted")}
        results += await bench_backend("sqlite", sqlite_urls, args)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis (keys under a fresh prefix) instead of starting one")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="connect time per store (split in rounds)")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(f"encryption cost: {args.sessions} sessions of {TURNS} turns per store, best of {ROUNDS} interleaved rounds")
    print(f"  {'':<7}{'case':<26}{'plain':>12}{'encrypted':>12}")
    if args.redis_url:
        results = asyncio.run(run(args, args.redis_url))
    else:
        with own_redis_server() as url:
            results = asyncio.run(run(args, url))
    for pair in results:
        print(pair.line())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
