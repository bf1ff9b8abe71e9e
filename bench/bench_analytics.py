"""Benchmark: what the analytics cost ``connect`` (issue 14: throughput within 10 % of connect without them).

Same process, same run, same store object, interleaved rounds (best kept), a pool of pre-created
identities so most connects are returns (the agent's hot path):

- Redis: ``connect`` (the arrive script, which also counts the day: KEYS 9-11) against the same store's
  arrive script with its ``tally_connect`` block removed (:func:`before_analytics`, on the same client). Both are one EVALSHA: the
  analytics add no round trip, only the work inside the script and three keys and arguments.
- SQLite: ``connect`` against the same transaction as it was before analytics, for the baseline rounds:
  the visit's event row written without the identity's keyed hash
  (``lkpersist.stores.sqlite.analytics.identity_hash`` answering None) and never rolled up into the day
  rows (``analytics.roll_up`` doing nothing), and the session row written by the statements without its
  counter columns (``operations.UPDATE_VISIT`` → ``rows.UPDATE_OPS``, ``operations.INSERT_ARRIVAL`` →
  ``rows.INSERT_SESSION``, both taking the counted day as a parameter they ignore).

    .venv/bin/python bench/bench_analytics.py [--redis-url URL] [--seconds 6] [--concurrency 1 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from bench_connect import POOL, STEP, Result, SteppingClock, _cleanup, _pool, _run, own_redis_server

from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from lkpersist.stores.redis import presence as redis_presence
from lkpersist.stores.sqlite import analytics as sqlite_analytics
from lkpersist.stores.sqlite import operations as sqlite_operations
from lkpersist.stores.sqlite import rows as sqlite_rows

Op = Callable[[], Awaitable[int]]
ROUNDS = 7
"""Interleaved rounds per case, the best kept: the difference measured is small beside a shared machine's noise."""
TALLY_BLOCK = (
    "if new_visit then\n"
    "  tally_connect(KEYS[9], KEYS[10], KEYS[11], ARGV[9], tonumber(ARGV[10]), ARGV[11], now, returning and 1 or 0, "
    "int(s.j))\nend\n"
)


def before_analytics(store: RedisStore) -> RedisStore:
    """A second store on the same client whose arrive script is the store's own without its tally block.

    It still receives the three analytics keys and arguments (unused), so the ratio measures the work
    the tally adds inside Redis and in the reply's handling, not the packing of three short arguments."""
    before = RedisStore(store.client, prefix=store.keys.prefix, clock=store.clock)
    assert TALLY_BLOCK in redis_presence.ARRIVE, "the arrive script changed: update TALLY_BLOCK"
    before._presence = redis_presence.RedisPresence(
        before._redis, before._analytics, arrive=redis_presence.ARRIVE.replace(TALLY_BLOCK, ""))
    return before


def _redis_cases(store: RedisStore, clock: SteppingClock) -> dict[str, Op]:
    before, pool = before_analytics(store), _pool("bench")

    # The clock moves STEP per op, so every connect of a pool identity is a return (a new visit, which
    # the analytics count), as in bench_connect.py.
    async def without() -> int:
        clock.t += STEP
        await before.connect(pool())
        return 0

    async def with_analytics() -> int:
        clock.t += STEP
        await store.connect(pool())
        return 0

    return {"before": without, "analytics": with_analytics}


Steps = tuple[Any, Any, str, str]
"""What connect's transaction counts with: the visit's hash, the roll-up, the session row's two statements."""


def _counting() -> Steps:
    return (sqlite_analytics.identity_hash, sqlite_analytics.roll_up, sqlite_operations.UPDATE_VISIT,
            sqlite_operations.INSERT_ARRIVAL)


def _use(steps: Steps) -> None:
    (sqlite_analytics.identity_hash, sqlite_analytics.roll_up, sqlite_operations.UPDATE_VISIT,
     sqlite_operations.INSERT_ARRIVAL) = steps


def _sqlite_cases(store: Any, clock: SteppingClock) -> dict[str, Op]:
    counting = _counting()
    before = (_no_hash, _skip, *_statements_before_analytics())
    pool = _pool("bench")
    use = _use

    # Cases run one after the other (every op of a round finishes before the next case starts), so each
    # op setting its own mode switches the whole round. The clock moves STEP per op: every connect of the
    # pool's identities is a return (a new visit, which analytics count), as in bench_connect.py.
    async def without() -> int:
        use(before)
        clock.t += STEP
        await store.connect(pool())
        return 0

    async def with_analytics() -> int:
        use(counting)
        clock.t += STEP
        await store.connect(pool())
        return 0

    return {"before": without, "analytics": with_analytics}


def _statements_before_analytics() -> tuple[str, str]:
    """The session row's writes without the counter columns, taking the same positional parameters as
    ``UPDATE_VISIT`` and ``INSERT_ARRIVAL`` (the counted day is bound and ignored)."""
    update = sqlite_rows.UPDATE_OPS.replace(" WHERE id = ?", " WHERE id = ?14")  # ?13: the day
    insert = sqlite_rows.INSERT_SESSION.removesuffix(" RETURNING id")
    for index, name in enumerate(("identity", *sqlite_rows.OPS_FIELDS, *sqlite_rows.PERSONAL_FIELDS), 1):
        insert = insert.replace(f":{name},", f"?{index},").replace(f":{name})", f"?{index})")
    assert ":" not in insert.split(" ON CONFLICT")[0], insert
    return update, insert + " WHERE ?17 IS ?17"  # ?17: the day


def _skip(*_: Any) -> None:
    """The baseline: connect's transaction without the analytics roll-up."""


def _no_hash(*_: Any) -> None:
    """The baseline: the visit's event row without the identity's keyed hash (nothing for a roll-up)."""


async def _compare(label: str, cases: dict[str, Op], seconds: float, concurrencies: list[int]) -> None:
    for op in cases.values():  # create every identity, warm up both paths
        for _ in range(POOL):
            await op()
    for concurrency in concurrencies:
        best: dict[str, Result] = {}
        for _ in range(ROUNDS):
            for name, op in cases.items():
                result = await _run(name, concurrency, seconds / ROUNDS, op)
                if name not in best or result.ops_per_s > best[name].ops_per_s:
                    best[name] = result
        before, after = best["before"], best["analytics"]
        print(f"  {label:<6} c={concurrency:<3} before {before.ops_per_s:>9,.0f} ops/s   with analytics "
              f"{after.ops_per_s:>9,.0f} ops/s   ratio {after.ops_per_s / before.ops_per_s:5.3f} (target >= 0.90)",
              flush=True)


async def bench_redis(url: str, seconds: float, concurrencies: list[int]) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    clock = SteppingClock()
    store = open_store(url, prefix=prefix, clock=clock)
    assert isinstance(store, RedisStore)
    try:
        await _compare("redis", _redis_cases(store, clock), seconds, concurrencies)
    finally:
        await _cleanup(store, prefix)
        await store.close()


async def bench_sqlite(seconds: float, concurrencies: list[int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        clock = SteppingClock()
        store = open_store(f"sqlite:///{Path(directory) / 'bench.db'}", clock=clock)
        counting = _counting()
        try:
            await _compare("sqlite", _sqlite_cases(store, clock), seconds, concurrencies)
        finally:
            _use(counting)
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of each case")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--only", choices=("redis", "sqlite"), help="one backend only")
    args = parser.parse_args()
    print(f"connect with and without analytics, {args.seconds:g} s per case (best of {ROUNDS} rounds), "
          f"pool of {POOL} identities, {os.cpu_count()} cores")
    if args.only != "sqlite" and args.redis_url:
        asyncio.run(bench_redis(args.redis_url, args.seconds, args.concurrency))
    elif args.only != "sqlite":
        with own_redis_server() as url:
            asyncio.run(bench_redis(url, args.seconds, args.concurrency))
    if args.only != "redis":
        asyncio.run(bench_sqlite(args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
