r"""Benchmark: participant-connected callback → greeting decision, store round trips included.

Runs real :class:`~lkpersist.agent.SessionPersistence` controllers on real ``AgentSession``\ s (scripted
LLM, text only) and real ``rtc.Room``\ s fed with participant events, and reads each decision's
``elapsed`` (measured by the controller from the room callback to the decision: ``store.arrive`` —
the visit, the greeting claim and, for a return, the recent turns in one store call — then the restore
of the turns into the agent's chat context).

Cases per backend, with ``--agents`` controllers in the room (default 2, as issue 11 asks):
- ``new``: a first-time participant;
- ``returning``: a participant with 10 earlier turns, the agents' chat contexts reset between
  iterations so each return restores into a clean context.
The participant joins every agent's room at the same moment; ``greeter`` is the decision of the agent
that got the visit's greeting (the one the participant waits for), ``other`` the agent that joined the
visit without greeting (it reads the turns with a second call, as nobody waits on it to speak). The
measured agent runs in this process; the others each in a process of their own, as other workers do.
Baselines of the same run: ``alone``, the same return with one agent in the room; ``baseline``, one bare
read of the backend (a Redis GET; a SQLite SELECT through a worker thread).

Round trips: on its own redis-server the benchmark also counts the commands clients sent Redis between
the room callback and the decision (MONITOR, leaving out what the scripts ran inside Redis), for a
return, agent by agent.

Target (issues 3 and 11): the greeter's p99 under 5 ms on loopback Redis with 2 agents in the room.

    .venv/bin/python bench/bench_greeting.py [--iterations 2000] [--agents 2] [--redis-url URL] [--json]

Without ``--redis-url`` it starts its own redis-server on a free loopback port (like the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_connect import own_redis_server  # one way to start a throwaway server, shared by the benchmarks
from livekit import rtc
from livekit.agents import Agent, AgentSession, llm

from lkpersist.agent import GreetingDecision, SessionPersistence
from lkpersist.model.session import Turn
from lkpersist.sim.roomsim import RoomEvents
from lkpersist.sim.scripted_llm import ScriptedLLM
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore

HISTORY = 10
TARGET_P99_MS = 5.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _seed_history(store: SessionStore, identity: str, turns: int = HISTORY) -> None:
    """A returning participant: one greeted visit of ``turns`` turns, then a leave."""
    await store.connect(identity)
    await store.claim_greeting(identity)
    for index in range(turns):
        role = "user" if index % 2 == 0 else "assistant"
        await store.append_turn(
            identity, Turn(role, f"earlier line {index}", 1_700_000_000 + index, f"{identity}-{index}")
        )
    await store.disconnect(identity)


class _Room:
    """``agents`` controllers, each on its own AgentSession and room, sharing one store."""

    def __init__(self, store: SessionStore, agents: int) -> None:
        self.store, self.count = store, agents
        self.decisions: list[GreetingDecision] = []
        self.hook: Callable[[GreetingDecision], None] | None = None
        self.parts: list[tuple[AgentSession[Any], Agent, RoomEvents, SessionPersistence]] = []

    async def start(self) -> None:
        for _ in range(self.count):
            session: AgentSession[Any] = AgentSession(llm=ScriptedLLM(), vad=None, turn_handling={"turn_detection": None})
            agent = Agent(instructions="bench")
            await session.start(agent)
            room = rtc.Room()
            persistence = SessionPersistence(self.store, on_decision=self._decided, heartbeat_interval=3600)
            persistence.attach(session, room)
            self.parts.append((session, agent, RoomEvents(room), persistence))

    def _decided(self, decision: GreetingDecision) -> None:
        self.decisions.append(decision)
        if self.hook is not None:
            self.hook(decision)

    async def reset(self) -> None:
        for _, agent, _, _ in self.parts:
            await agent.update_chat_ctx(llm.ChatContext())

    def join(self, identity: str, only: int | None = None) -> None:
        for index, (_, _, events, _) in enumerate(self.parts):
            if only is None or only == index:
                events.join(identity)
                events.activate(identity)

    def leave(self, identity: str) -> None:
        for _, _, events, _ in self.parts:
            events.leave(identity)

    async def do(self, verb: str, identity: str) -> None:
        """``join``, ``leave`` or ``reset`` (the chat contexts), then wait until the agents are idle."""
        if verb == "join":
            self.join(identity)
        elif verb == "leave":
            self.leave(identity)
        else:
            await self.reset()
        await self.idle()

    async def idle(self) -> None:
        for *_, persistence in self.parts:
            await persistence.wait_idle()

    async def close(self) -> None:
        for session, *_, persistence in self.parts:
            await session.aclose()
            await persistence.aclose()


class _OtherAgent:
    """One more agent in the room, in a process of its own, as a second agent (another worker) is: it
    shares no event loop with the measured one. Driven over a pipe: join, leave, reset, then its figures."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_other_agent_main, args=(url, child), daemon=True)
        self.process.start()
        self.pipe.recv()  # started

    def send(self, verb: str, identity: str = "") -> None:
        self.pipe.send((verb, identity))

    async def done(self) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.pipe.recv)

    async def close(self) -> list[GreetingDecision]:
        self.send("close")
        decisions: list[GreetingDecision] = await self.done()
        self.process.join(timeout=30)
        return decisions


def _other_agent_main(url: str, pipe: Any) -> None:
    asyncio.run(_other_agent(url, pipe))


async def _other_agent(url: str, pipe: Any) -> None:
    store = open_store(url)
    room = _Room(store, 1)
    await room.start()
    pipe.send("started")
    loop = asyncio.get_running_loop()
    while (message := await loop.run_in_executor(None, pipe.recv))[0] != "close":
        await room.do(*message)
        pipe.send("ok")
    await room.close()
    await store.close()
    pipe.send(room.decisions)


async def _run_case(
    store: SessionStore, url: str, iterations: int, returning: bool, agents: int
) -> dict[str, list[float]]:
    """The participant joins this process's agent and the others' at once, then leaves; ``iterations`` times."""
    room = _Room(store, 1)
    await room.start()
    others = [_OtherAgent(url) for _ in range(agents - 1)]
    run = uuid.uuid4().hex[:8]
    decisions = room.decisions
    try:
        for index in range(iterations):
            identity = f"bench-{run}-{index}"
            if returning:
                await _seed_history(store, identity)
                await _everywhere(room, others, "reset", identity)
            await _everywhere(room, others, "join", identity)
            await _everywhere(room, others, "leave", identity)
    finally:
        await room.close()
        for other in others:
            decisions = [*decisions, *await other.close()]
    return _by_role(decisions, iterations, agents, returning)


async def _everywhere(room: _Room, others: list[_OtherAgent], verb: str, identity: str) -> None:
    for other in others:
        other.send(verb, identity)
    await room.do(verb, identity)
    for other in others:
        await other.done()


def _by_role(decisions: list[GreetingDecision], iterations: int, agents: int, returning: bool) -> dict[str, list[float]]:
    greeters = [d for d in decisions if d.greet]
    if len(greeters) != iterations or len(decisions) != iterations * agents:
        raise RuntimeError("not exactly one greeting per visit: the benchmark is invalid")
    if returning and not all(d.returning and d.restored_turns == HISTORY for d in greeters):
        raise RuntimeError("returning case did not restore the history: the benchmark is invalid")
    return {
        "greeter": [d.elapsed * 1000 for d in greeters],
        "other": [d.elapsed * 1000 for d in decisions if not d.greet],
    }


class _ClientCommands:
    """What clients sent Redis (MONITOR, in a thread), without the commands scripts ran inside Redis
    (``INFO stats`` counts those too, so it cannot tell one script from eighteen commands)."""

    MARK = "lkpersist-bench-mark"

    def __init__(self, url: str) -> None:
        import redis

        self.seen: list[tuple[float, str, str]] = []
        self.failed: Exception | None = None
        self._monitor = redis.Redis.from_url(url)
        self._marker = redis.Redis.from_url(url)
        threading.Thread(target=self._listen, daemon=True).start()
        self.settled()

    def _listen(self) -> None:
        try:
            with self._monitor.monitor() as monitor:  # type: ignore[no-untyped-call]
                for item in monitor.listen():
                    self.seen.append((item["time"], item["client_type"], item["command"]))
        except Exception as exc:  # noqa: BLE001 -- closed at the end; anything else is reported by settled
            self.failed = exc

    def _marks(self) -> int:
        return sum(1 for *_, command in self.seen if self.MARK in command)

    def settled(self) -> None:
        """Wait until every command sent so far has reached the log (a marker sent after them has). The
        marker is sent again until it shows: the first may run before MONITOR has started."""
        count, deadline = self._marks(), time.monotonic() + 10
        while self._marks() <= count:
            if self.failed is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MONITOR stopped answering: {self.failed!r}")
            self._marker.echo(self.MARK)
            time.sleep(0.01)

    def between(self, start: float, end: float) -> list[str]:
        self.settled()
        return [c for t, kind, c in self.seen if start <= t <= end and kind != "lua" and self.MARK not in c]

    def close(self) -> None:
        self._marker.close()
        self._monitor.close()


async def _round_trips(url: str, agents: int) -> list[int]:
    """Commands clients sent Redis between each agent's room callback and its decision, for one return
    (the agents join one after the other, so each count is one agent's alone)."""
    store = open_store(url)
    room = _Room(store, agents)
    log = _ClientCommands(url)
    counts: list[int] = []
    try:
        await room.start()
        for identity in ("round-trips-warm-up", f"round-trips-{uuid.uuid4().hex[:8]}"):
            await _seed_history(store, identity)
            counts.clear()
            for index in range(agents):
                started, decided = time.time(), [0.0]
                room.hook = lambda _d, decided=decided: decided.__setitem__(0, time.time())
                room.join(identity, only=index)
                await room.idle()
                counts.append(len(log.between(started, decided[0])))
            room.leave(identity)
            await room.idle()
    finally:
        await room.close()
        await store.close()
        log.close()
    return counts


async def _bench(url: str, label: str, iterations: int, agents: int) -> list[dict[str, Any]]:
    rows = []
    for case, returning in (("new", False), ("returning", True)):
        store = open_store(url)
        try:
            await _run_case(store, url, min(50, iterations), returning, agents)  # warm-up
            samples = await _run_case(store, url, iterations, returning, agents)
        finally:
            await store.close()
        for role, values in samples.items():
            if values:
                rows.append(_row(label, case, role, values))
    if agents > 1:  # the same return with this agent alone in the room: what the others cost it
        store = open_store(url)
        try:
            alone = await _run_case(store, url, iterations, True, 1)
        finally:
            await store.close()
        rows.append(_row(label, "returning", "alone", alone["greeter"]))
    rows.append(_row(label, "baseline", "-", await _floor(url, iterations)))
    return rows


async def _floor(url: str, iterations: int) -> list[float]:
    """The baseline, measured in this process and run: one bare read from the backend, in ms — a Redis
    GET (redis-py asyncio, hiredis: the floor of one round trip), a SQLite SELECT of one row through a
    worker thread (how the store reaches its file)."""
    samples = []
    read, close = _bare_read(url)
    for _ in range(iterations):
        started = time.perf_counter()
        await read()
        samples.append((time.perf_counter() - started) * 1000)
    await close()
    return samples


def _bare_read(url: str) -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[object]]]:
    """The baseline's read and how to close what it opened."""
    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite:///"), check_same_thread=False)

        async def select() -> object:
            return await asyncio.to_thread(lambda: db.execute("SELECT 1").fetchone())

        async def close_db() -> None:
            db.close()

        return select, close_db
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(url.split("?")[0])
    return (lambda: client.get("lkpersist-bench-floor")), client.aclose


def _row(backend: str, case: str, role: str, samples: list[float]) -> dict[str, Any]:
    return {
        "backend": backend,
        "case": case,
        "agent": role,
        "n": len(samples),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(_percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += await _bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args.iterations, args.agents)
    trips: list[int] | None = None
    if args.redis_url:
        prefix = f"lkpbench-{uuid.uuid4().hex[:8]}"
        rows += await _bench(f"{args.redis_url}?prefix={prefix}", "redis", args.iterations, args.agents)
    else:
        with own_redis_server() as url:
            rows += await _bench(url, "redis", args.iterations, args.agents)
            trips = await _round_trips(url, args.agents)  # its own server: nobody else's commands counted
    return {"agents": args.agents, "cores": os.cpu_count(), "rows": rows, "redis_commands_per_decision": trips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=2, help="controllers in the room (default 2)")
    parser.add_argument(
        "--redis-url", help="use this Redis (keys under a fresh prefix) instead of starting one"
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()
    result = asyncio.run(_main(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    rows = result["rows"]
    print(f"{args.agents} agent(s) in the room, {result['cores']} cores")
    print(f"{'backend':8} {'case':10} {'agent':8} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for row in rows:
        print(
            f"{row['backend']:8} {row['case']:10} {row['agent']:8} {row['n']:>6} {row['p50_ms']:>8} "
            f"{row['p99_ms']:>8} {row['max_ms']:>8}"
        )
    if result["redis_commands_per_decision"] is not None:
        print(f"Redis commands from room callback to decision, a return, agent by agent: "
              f"{result['redis_commands_per_decision']}")
    for backend in ("sqlite", "redis"):
        floor = next(r for r in rows if r["backend"] == backend and r["case"] == "baseline")
        for row in rows:
            if row["backend"] == backend and row["agent"] in ("greeter", "alone"):
                print(f"{backend} {row['case']} ({row['agent']}): p50 {row['p50_ms'] / floor['p50_ms']:.1f}x, "
                      f"p99 {row['p99_ms'] / floor['p99_ms']:.1f}x the bare read")
    redis_p99 = max(r["p99_ms"] for r in rows if r["backend"] == "redis" and r["agent"] == "greeter")
    verdict = "met" if redis_p99 < TARGET_P99_MS else "MISSED"
    print(f"target greeter p99 < {TARGET_P99_MS} ms on loopback Redis: {verdict} ({redis_p99} ms)")


if __name__ == "__main__":
    main()
