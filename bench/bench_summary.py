"""Benchmark: the greeting decision while a summary is pending, against the same return without one.

Summaries are meant to stay off the greeting and reply path. This measures it with the real
:class:`~lkpersist.agent.SessionPersistence` on a real ``AgentSession`` and ``rtc.Room`` (as in
``bench_greeting.py``), for participants whose history is past the summary cap, in two cases run
alternately in the same process, on the same store, with the same seeded history:

- ``no summary``: summaries off;
- ``summary pending``: summaries on. The participant arrives (a summary of their history starts in
  the background: a read of the whole history, then an LLM call the scripted model holds open), and
  ``HOLD`` later (both cases) leaves and comes back while that summary is still being written; only
  then is the model let go and the compaction made. The return's decision is the one measured, and the
  run is refused unless the summary was at the model at every measured decision. The policy's
  ``settle`` is 0 here, so the summary reaches the model within ``HOLD``; with the default (2 s) its
  reads cannot meet a refresh's rejoin at all.

``--concurrent`` measures a harsher case instead: the model takes ``--llm-delay`` seconds per summary,
the loop never waits for them and returns come back at once, so about ``llm-delay / iteration time`` are in flight in the process
at any moment, their store calls and decoding sharing the event loop (and SQLite's store thread) with
the arrivals measured.

It reports p50 and p99 of each case (callback → greeting decision) and their ratio, per backend, beside
the ratio of the no-summary case run twice in each round: the noise the first ratio is to be read against.

    .venv/bin/python bench/bench_summary.py [--iterations 1000] [--rounds 10] [--concurrent] [--json]
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

from bench_connect import own_redis_server
from bench_greeting import _percentile, _seed_history
from livekit import rtc
from livekit.agents import Agent, AgentSession, llm

from lkpersist.agent import GreetingDecision, SessionPersistence
from lkpersist.agent.summaries import Summaries
from lkpersist.sim.roomsim import RoomEvents
from lkpersist.sim.scripted_llm import ScriptedLLM
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore

POLICY = Summaries(cap=20, keep=5, check_every=10, settle=0)
HOLD = 0.02
"""Seconds between an arrival and the measured return, in both cases."""
HISTORY = POLICY.cap + 5  # past the cap: every return has a summary to write
RESTORE = 20


async def _run_case(
    store: SessionStore, iterations: int, pending: bool, args: argparse.Namespace
) -> list[float]:
    decisions: list[GreetingDecision] = []
    gate = asyncio.Event()
    model = ScriptedLLM(summary_delay=args.llm_delay) if args.concurrent else ScriptedLLM(summary_gate=gate)
    session: AgentSession[Any] = AgentSession(llm=model, vad=None, turn_handling={"turn_detection": None})
    agent = Agent(instructions="bench")
    await session.start(agent)
    events = RoomEvents(rtc.Room())
    persistence = SessionPersistence(
        store,
        on_decision=decisions.append,
        heartbeat_interval=3600,
        restore_turns=RESTORE,
        summaries=POLICY if pending else None,
    )
    persistence.attach(session, events.room)
    run = uuid.uuid4().hex[:8]
    identities = [f"bench-{run}-{index}" for index in range(iterations)]
    for identity in identities:
        await _seed_history(store, identity, HISTORY)
    measured: list[GreetingDecision] = []
    try:
        for index, identity in enumerate(identities):
            gate.clear()
            await _visit(persistence, agent, events, identity)
            if not args.concurrent:  # a return while this participant's summary is being written
                await asyncio.sleep(HOLD)
                events.leave(identity)
                await _visit(persistence, agent, events, identity)
                written, asked = persistence.conversation.summariser.written, len(model.summary_calls)
                if pending and (written != index or asked != index + 1):
                    raise RuntimeError("no summary was at the model at the return: the benchmark is invalid")
            measured.append(decisions[-1])
            gate.set()
            events.leave(identity)
            await persistence.wait_idle(summaries=not args.concurrent)
        await persistence.wait_idle()
        written = persistence.conversation.summariser.written
    finally:
        await session.aclose()
        await persistence.aclose()
    if not all(d.returning and d.restored_turns == RESTORE for d in measured):
        raise RuntimeError("the returns did not restore their history: the benchmark is invalid")
    if pending and written < iterations:
        raise RuntimeError(f"only {written} of {iterations} summaries were written: the benchmark is invalid")
    return [d.elapsed * 1000 for d in measured]


async def _visit(persistence: SessionPersistence, agent: Agent, events: RoomEvents, identity: str) -> None:
    """One arrival into a clean chat context (so each restores its history), summaries left running."""
    await agent.update_chat_ctx(llm.ChatContext())
    events.join(identity)
    events.activate(identity)
    await persistence.wait_idle(summaries=False)


CASES = (("no_summary", False), ("summary_pending", True), ("no_summary_again", False))
"""Run in this order every round; the second no-summary case measures the noise (the same case twice)."""


async def _bench(url: str, label: str, args: argparse.Namespace) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name, _ in CASES}
    store = open_store(url)
    try:
        await _run_case(store, 20, True, args)  # warm-up, both paths
        await _run_case(store, 20, False, args)
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits every case alike
            for name, pending in CASES:
                samples[name] += await _run_case(store, args.iterations // args.rounds, pending, args)
    finally:
        await store.close()
    row: dict[str, Any] = {"backend": label, "case": "concurrent" if args.concurrent else "pending"}
    row["n"] = len(samples["summary_pending"])
    for name, _ in CASES:
        row[f"{name}_p50_ms"] = round(statistics.median(samples[name]), 3)
        row[f"{name}_p99_ms"] = round(_percentile(samples[name], 0.99), 3)
    for quantile in ("p50", "p99"):
        base = row[f"no_summary_{quantile}_ms"]
        row[f"{quantile}_ratio"] = round(row[f"summary_pending_{quantile}_ms"] / base, 3)
        row[f"{quantile}_noise"] = round(row[f"no_summary_again_{quantile}_ms"] / base, 3)
    return row


async def _main(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(await _bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args))
    with own_redis_server() as url:
        rows.append(await _bench(url, "redis", args))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=1000, help="returns measured per case")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the two cases")
    parser.add_argument("--llm-delay", type=float, default=0.05, help="--concurrent: seconds per summary")
    parser.add_argument("--concurrent", action="store_true", help="never wait for summaries (many in flight)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()
    rows = asyncio.run(_main(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'backend':8} {'case':16} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        for name, _ in CASES:
            print(f"{r['backend']:8} {name:16} {r[f'{name}_p50_ms']:>8} {r[f'{name}_p99_ms']:>8}")
        print(
            f"{r['backend']:8} pending / none: p50 {r['p50_ratio']}, p99 {r['p99_ratio']}; "
            f"noise (none again / none): p50 {r['p50_noise']}, p99 {r['p99_noise']} ({r['case']}, n={r['n']})"
        )

if __name__ == "__main__":
    main()
