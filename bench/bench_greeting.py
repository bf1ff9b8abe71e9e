"""Benchmark: participant-connected callback → greeting decision, store round trips included.

Runs the real :class:`~lkpersist.agent.SessionPersistence` on a real ``AgentSession`` (scripted LLM, text
only) and a real ``rtc.Room`` fed with participant events, and reads each decision's ``elapsed`` (measured
by the controller from the room callback to the decision: ``connect``, ``claim_greeting``,
``recent_turns`` and, for a return, the restore of the turns into the agent's chat context).

Two cases per backend:
- ``new``: a first-time participant (connect + claim);
- ``returning``: a participant with 10 earlier turns (connect + claim + recent_turns + restore), the
  agent's chat context reset between iterations so each return restores into a clean context.

Target (issue 3): p99 under 5 ms on loopback Redis.

    .venv/bin/python bench/bench_greeting.py [--iterations 2000] [--redis-url URL] [--json]

Without ``--redis-url`` it starts its own redis-server on a free loopback port (like the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import uuid
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


async def _run_case(store: SessionStore, iterations: int, returning: bool) -> list[float]:
    decisions: list[GreetingDecision] = []
    session: AgentSession[Any] = AgentSession(
        llm=ScriptedLLM(), vad=None, turn_handling={"turn_detection": None}
    )
    agent = Agent(instructions="bench")
    await session.start(agent)
    room = rtc.Room()
    events = RoomEvents(room)
    persistence = SessionPersistence(store, on_decision=decisions.append, heartbeat_interval=3600)
    persistence.attach(session, room)
    run = uuid.uuid4().hex[:8]
    try:
        for index in range(iterations):
            identity = f"bench-{run}-{index}"
            if returning:
                await _seed_history(store, identity)
                await agent.update_chat_ctx(llm.ChatContext())
            events.join(identity)
            events.activate(identity)
            await persistence.wait_idle()
            events.leave(identity)
            await persistence.wait_idle()
    finally:
        await session.aclose()
        await persistence.aclose()
    if returning and not all(d.returning and d.restored_turns == HISTORY for d in decisions):
        raise RuntimeError("returning case did not restore the history: the benchmark is invalid")
    return [d.elapsed * 1000 for d in decisions]


async def _bench(url: str, label: str, iterations: int) -> list[dict[str, Any]]:
    rows = []
    for case, returning in (("new", False), ("returning", True)):
        store = open_store(url)
        try:
            await _run_case(store, min(50, iterations), returning)  # warm-up
            samples = await _run_case(store, iterations, returning)
        finally:
            await store.close()
        rows.append(
            {
                "backend": label,
                "case": case,
                "n": len(samples),
                "p50_ms": round(statistics.median(samples), 3),
                "p99_ms": round(_percentile(samples, 0.99), 3),
                "max_ms": round(max(samples), 3),
            }
        )
    return rows


async def _main(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += await _bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args.iterations)
    if args.redis_url:
        prefix = f"lkpbench-{uuid.uuid4().hex[:8]}"
        rows += await _bench(f"{args.redis_url}?prefix={prefix}", "redis", args.iterations)
    else:
        with own_redis_server() as url:
            rows += await _bench(url, "redis", args.iterations)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument(
        "--redis-url", help="use this Redis (keys under a fresh prefix) instead of starting one"
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()
    rows = asyncio.run(_main(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'backend':8} {'case':10} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for row in rows:
        print(
            f"{row['backend']:8} {row['case']:10} {row['n']:>6} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['max_ms']:>8}"
        )
    redis_p99 = max(r["p99_ms"] for r in rows if r["backend"] == "redis")
    verdict = "met" if redis_p99 < TARGET_P99_MS else "MISSED"
    print(f"target p99 < {TARGET_P99_MS} ms on loopback Redis: {verdict} ({redis_p99} ms)")


if __name__ == "__main__":
    main()
