"""Benchmark: lkpersist's turn reads and appends against the OpenAI Agents SDK's sessions, one run.

The peer is ``openai-agents`` (a bench-only dependency: ``pip install -e '.[bench]'``):
``agents.extensions.memory.RedisSession`` and ``agents.memory.SQLiteSession``. Both sides are measured
in this process, in interleaved rounds (each case's best round kept, and the median of the rounds' ratios
shown beside), against the same redis-server and the same
client settings (redis-py asyncio with hiredis, one pool each, built by lkpersist's own client builder),
and on SQLite files in the same directory:

- read: ``store.recent_turns(identity, limit=10)`` vs ``session.get_items(limit=10)``;
- append: ``store.append_turn(identity, turn)`` (with an item id, as the agent records them) vs
  ``session.add_items([item])``.

``--concurrency`` asyncio tasks (default 64) each pick one of ``--identities`` (default 500) at random,
every identity holding ``--turns`` turns (default 20) beforehand. On SQLite each side keeps its default
durability: lkpersist ``synchronous=NORMAL`` (WAL; a power cut may lose the last commits, never corrupt),
the peer SQLite's default FULL (an fsync per commit); ``--synchronous full`` compares like with like. lkpersist does more per call than the
peer: a read checks the session is live (an expired session has no turns) and decodes through the
store's codec; an append checks liveness and the item id, and trims to the newest ``max_turns``.
Targets (issue 13): read >= 1.0x and append >= 4x the peer's throughput, on Redis and on SQLite.

    .venv/bin/python bench/bench_peer.py [--seconds 3] [--backend redis sqlite] [--only CASE [--profile]]

``--only redis-read`` (any ``<backend>-<read|append>-<lkpersist|peer>`` prefix) runs only those cases, for
py-spy (``py-spy record --threads -- .venv/bin/python bench/bench_peer.py --only ...``); with ``--profile``
the first of them runs under cProfile, which prints where the event loop's time goes.
Without ``--redis-url`` it starts its own redis-server on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.redis.client import build_client
from lkpersist.stores.redis.url import parse_redis_url

sys.path.insert(0, os.path.dirname(__file__))
from bench_connect import own_redis_server

TARGETS = {"read": 1.0, "append": 4.0}
Op = Callable[[str], Awaitable[Any]]


@dataclass
class Result:
    backend: str
    kind: str  # read | append
    side: str  # lkpersist | peer
    ops: int
    seconds: float
    cpu: float  # this process's CPU seconds (the event loop and, for SQLite, the worker threads)
    server: float | None  # redis-server's own time in commands (INFO commandstats), seconds

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.kind}-{self.side}"

    def line(self) -> str:
        server = "" if self.server is None else f"  server {1e6 * self.server / self.ops:5.1f} us/op"
        return (f"  {self.name:<26} {self.ops_per_s:>9,.0f} ops/s  {1e6 / self.ops_per_s:>7.1f} us/op"
                f"  client CPU {1e6 * self.cpu / self.ops:6.1f} us/op{server}")


def _text(index: int) -> str:
    return f"turn {index}: the participant asked about the delivery window and the agent answered politely"


def _turn(index: int) -> Turn:
    return Turn(role="user" if index % 2 else "assistant", text=_text(index), timestamp=time.time(),
                item_id=uuid.uuid4().hex)


def _item(index: int) -> dict[str, Any]:
    return {"role": "user" if index % 2 else "assistant", "content": _text(index)}


Probe = Callable[[], Awaitable[float]]


async def _throughput(
    op: Op, identities: list[str], concurrency: int, seconds: float, server: Probe | None = None
) -> tuple[int, float, float, float | None]:
    """(operations, wall seconds, this process's CPU seconds, the server's seconds in commands)."""
    counts = [0] * concurrency
    stop = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        pick = random.Random(slot).choice
        while time.perf_counter() < stop:
            await op(pick(identities))
            counts[slot] += 1

    busy = None if server is None else await server()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return sum(counts), elapsed, cpu, None if busy is None or server is None else await server() - busy


def _server_time(client: Any) -> Probe:
    """redis-server's total time in commands so far (seconds), from INFO commandstats."""

    async def probe() -> float:
        stats = await client.info("commandstats")
        return sum(float(entry["usec"]) for entry in stats.values()) / 1e6

    return probe


class Side:
    """One library on one backend: how to fill an identity, read it and append to it."""

    def __init__(self, read: Op, append: Op, fill: Callable[[str, int], Awaitable[None]]) -> None:
        self.read, self.append, self.fill = read, append, fill


def _lkpersist_side(store: SessionStore) -> Side:
    counter = iter(range(10**12))

    async def read(identity: str) -> Any:
        return await store.recent_turns(identity, limit=10)

    async def append(identity: str) -> Any:
        return await store.append_turn(identity, _turn(next(counter)))

    async def fill(identity: str, turns: int) -> None:
        await store.connect(identity)
        for index in range(turns):
            await store.append_turn(identity, _turn(index))

    return Side(read, append, fill)


def _peer_side(sessions: dict[str, Any]) -> Side:
    counter = iter(range(10**12))

    async def read(identity: str) -> Any:
        return await sessions[identity].get_items(limit=10)

    async def append(identity: str) -> Any:
        return await sessions[identity].add_items([_item(next(counter))])

    async def fill(identity: str, turns: int) -> None:
        await sessions[identity].add_items([_item(index) for index in range(turns)])

    return Side(read, append, fill)


@contextmanager
def _redis_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
    else:
        with own_redis_server() as url:
            yield url


async def _sides(
    backend: str, url: str, directory: Path, identities: list[str], stack: AsyncExitStack, synchronous: str
) -> tuple[dict[str, Side], Probe | None]:
    """Both libraries on ``backend``, each with its own client or file, closed by ``stack``; on Redis, a
    probe of the server's time in commands."""
    from agents import SQLiteSession
    from agents.extensions.memory import RedisSession

    if backend == "redis":
        prefix = f"peer-bench-{uuid.uuid4().hex[:8]}"
        store = open_store(url, prefix=prefix)
        client = build_client(parse_redis_url(url, url))  # the store's client settings, a pool of its own
        stack.push_async_callback(client.aclose)
        sessions = {i: RedisSession(i, redis_client=client, key_prefix=f"{prefix}:agents") for i in identities}
        probe: Probe | None = _server_time(client)
    else:
        store = open_store(f"sqlite:///{directory / 'lkpersist.db'}?synchronous={synchronous}")
        sessions = {i: SQLiteSession(i, directory / "agents.db") for i in identities}
        stack.callback(lambda: [session.close() for session in sessions.values()])
        probe = None
    stack.push_async_callback(store.close)
    return {"lkpersist": _lkpersist_side(store), "peer": _peer_side(sessions)}, probe


async def bench(args: argparse.Namespace, url: str) -> list[Result]:
    identities = [f"peer-{index:04d}" for index in range(args.identities)]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="lkpersist-peer-") as directory:
        async with AsyncExitStack() as stack:
            for backend in args.backend:
                sides, probe = await _sides(backend, url, Path(directory), identities, stack, args.synchronous)
                for side in sides.values():
                    for identity in identities:
                        await side.fill(identity, args.turns)
                results += await _measure(backend, sides, identities, args, probe)
    return results


def _cases(backend: str, sides: dict[str, Side]) -> Iterator[tuple[str, str, Op]]:
    for kind in ("read", "append"):
        for name, side in sides.items():
            yield kind, name, side.read if kind == "read" else side.append


async def _measure(
    backend: str, sides: dict[str, Side], identities: list[str], args: argparse.Namespace, probe: Probe | None
) -> list[Result]:
    cases = [case for case in _cases(backend, sides) if f"{backend}-{case[0]}-{case[1]}".startswith(args.only or "")]
    for _, _, op in cases:  # warm up
        await _throughput(op, identities, 8, 0.2)
    if args.profile:
        return [await _profiled(backend, cases, identities, args)]
    best: dict[tuple[str, str], Result] = {}
    ratios: dict[str, list[float]] = {kind: [] for kind in TARGETS}
    for _ in range(args.rounds):  # interleaved rounds: other load on the machine hits every case alike
        this_round: dict[tuple[str, str], Result] = {}
        for kind, name, op in cases:
            measured = await _throughput(op, identities, args.concurrency, args.seconds / args.rounds, probe)
            result = this_round[kind, name] = Result(backend, kind, name, *measured)
            if (kind, name) not in best or result.ops_per_s > best[kind, name].ops_per_s:
                best[kind, name] = result
        for kind, values in ratios.items():
            if (kind, "lkpersist") in this_round and (kind, "peer") in this_round:
                values.append(this_round[kind, "lkpersist"].ops_per_s / this_round[kind, "peer"].ops_per_s)
    for result in best.values():
        print(result.line(), flush=True)
    for kind, values in ratios.items():
        if values:
            print(f"  {backend}-{kind} ratio per round: {' '.join(f'{v:.2f}' for v in values)}"
                  f"  (median {statistics.median(values):.2f})")
    return list(best.values())


async def _profiled(backend: str, cases: list[tuple[str, str, Op]], identities: list[str], args: argparse.Namespace) -> Result:
    kind, name, op = cases[0]
    profile = cProfile.Profile()
    profile.enable()
    measured = await _throughput(op, identities, args.concurrency, args.seconds)
    profile.disable()
    result = Result(backend, kind, name, *measured)
    print(result.line(), "(under cProfile)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    return result


def report(results: list[Result]) -> None:
    by = {(r.backend, r.kind, r.side): r for r in results}
    print("\nratios (lkpersist / peer throughput)")
    for backend in sorted({r.backend for r in results}):
        for kind, target in TARGETS.items():
            ours, peer = by.get((backend, kind, "lkpersist")), by.get((backend, kind, "peer"))
            if ours and peer:
                ratio = ours.ops_per_s / peer.ops_per_s
                verdict = "met" if ratio >= target else "NOT met"
                print(f"  {backend:<6} {kind:<6} {ratio:5.2f}x  (target >= {target:g}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each case (split over the rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each case's best is kept")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--identities", type=int, default=500)
    parser.add_argument("--turns", type=int, default=20, help="turns stored per identity before measuring")
    parser.add_argument("--backend", nargs="+", choices=("redis", "sqlite"), default=["redis", "sqlite"])
    parser.add_argument("--synchronous", choices=("normal", "full"), default="normal",
                        help="lkpersist's SQLite durability (the peer's is its default, FULL: an fsync per commit)")
    parser.add_argument("--only", metavar="CASE", help="run only the cases whose names start with CASE")
    parser.add_argument("--profile", action="store_true", help="run the first case of --only under cProfile")
    args = parser.parse_args()
    if args.only:
        args.backend = [args.only.split("-")[0]]
    print(f"lkpersist vs openai-agents sessions: c={args.concurrency}, {args.identities} identities, "
          f"{args.turns} turns each, {args.seconds:g} s per case (best of {args.rounds} rounds), {os.cpu_count()} cores")
    with _redis_url(args.redis_url) as url:
        results = asyncio.run(bench(args, url))
    report(results)


if __name__ == "__main__":
    main()
