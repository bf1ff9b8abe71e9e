"""The load simulation behind ``lkpersist simulate load``: many participants against one real store.

``identities`` simulated participants come and go through ``concurrency`` concurrent tasks, each task
taking one idle participant at a time for one visit: connect, read the history back when returning (as
the agent does), add ``turns_per_visit`` turns, heartbeat, disconnect. Only the store API is used (no
livekit), so it measures the store as the agent drives it. The run stops after ``duration`` seconds or
once ``operations`` operations have started (visits in progress are finished either way).

Afterwards every participant is read back and compared with what the run did: its reconnect_count must
equal its successful connects minus one and its turn count its successful appends (capped by the
store's ``max_turns``). An operation that failed may or may not have been applied (a broken connection
after the command was sent), so it widens the accepted range instead of breaking the check. Each run's
identities carry a fresh run id (``load-<run id>-<n>``), so runs at the same time on one store never
disturb each other's checks, and they are deleted afterwards unless ``keep`` is set.

Time is the real clock. Sessions must not expire between two visits of a participant: open the store
with :data:`LOAD_TTL_POLICY` (an hour for every session); :func:`run_load` refuses shorter TTLs.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lkpersist.exceptions import InvalidInputError, LkPersistError
from lkpersist.model.session import Turn
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores.base import SessionStore

T = TypeVar("T")

LOAD_TTL_POLICY = TTLPolicy(first=3600.0, returning=3600.0, frequent=3600.0, presence_timeout=3600.0)
MIN_TTL = 600.0
HISTORY_ON_RETURN = 10
PROGRESS_INTERVAL = 0.25
OPERATIONS = ("connect", "recent_turns", "append_turn", "heartbeat", "disconnect")
MISMATCHES_SHOWN = 20


@dataclass(frozen=True)
class LoadPlan:
    """What to run: how many participants, how many at once, and for how long (seconds or operations)."""

    identities: int
    concurrency: int
    duration: float | None = None
    operations: int | None = None
    turns_per_visit: int = 2
    keep: bool = False
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        if self.identities < 1 or self.concurrency < 1 or self.turns_per_visit < 0:
            raise InvalidInputError("identities and concurrency must be at least 1, turns per visit not negative")
        if (self.duration is None) == (self.operations is None):
            raise InvalidInputError("give exactly one of a duration or a number of operations")
        if (self.duration is not None and self.duration <= 0) or (self.operations is not None and self.operations < 1):
            raise InvalidInputError("the duration must be positive and the operations at least 1")

    def identity(self, index: int) -> str:
        return f"load-{self.run_id}-{index}"


@dataclass(frozen=True)
class LoadProgress:
    """A snapshot for a progress bar: operations done, seconds elapsed, errors so far."""

    operations: int
    elapsed: float
    errors: int
    plan: LoadPlan


@dataclass
class _Ledger:
    """What the run did to one participant: successful and failed (maybe applied) connects and appends."""

    connects: int = 0
    connects_failed: int = 0
    turns: int = 0
    turns_failed: int = 0


@dataclass
class _Stats:
    """Latencies per operation kind, errors by kind, and the longest time without any success."""

    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)
    latencies: dict[str, array[float]] = field(default_factory=lambda: {op: array("d") for op in OPERATIONS})
    errors: Counter[str] = field(default_factory=Counter)
    errors_by_operation: Counter[str] = field(default_factory=Counter)
    begun: int = 0
    last_success: float = field(default_factory=time.perf_counter)
    longest_stall: float = 0.0
    error_times: list[float] = field(default_factory=list)

    async def timed(self, operation: str, call: Awaitable[T]) -> T:
        """Await ``call``; record its latency, or its error (then re-raised)."""
        self.begun += 1
        start = time.perf_counter()
        try:
            result = await call
        except LkPersistError as exc:
            self.errors[type(exc).__name__] += 1
            self.errors_by_operation[operation] += 1
            self.error_times.append(time.perf_counter() - self.started)
            raise
        end = time.perf_counter()
        self.latencies[operation].append(end - start)
        self.longest_stall = max(self.longest_stall, end - self.last_success)
        self.last_success = end
        return result

    @property
    def done(self) -> int:
        return sum(len(values) for values in self.latencies.values()) + self.error_count

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class Mismatch:
    """A participant whose stored counts fall outside what the run did."""

    identity: str
    expected_reconnects: tuple[int, int]
    reconnects: int | None
    expected_turns: tuple[int, int]
    turns: int


@dataclass
class LoadReport:
    """The summary: throughput, latency percentiles per operation, errors, and the consistency verdict."""

    plan: LoadPlan
    elapsed: float
    stats: _Stats
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.mismatches

    @property
    def operations(self) -> int:
        return self.stats.done

    @property
    def throughput(self) -> float:
        return self.operations / self.elapsed if self.elapsed > 0 else 0.0

    def latency(self) -> dict[str, dict[str, float]]:
        """Per operation kind: count and p50/p95/p99/max in milliseconds (kinds never run are left out)."""
        table = {}
        for operation, values in self.stats.latencies.items():
            if values:
                ordered = sorted(values)
                points = {f"p{p}": _percentile(ordered, p) * 1000 for p in (50, 95, 99)}
                table[operation] = {"count": len(ordered), **points, "max": ordered[-1] * 1000}
        return table

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``-o json``)."""
        return {
            "run_id": self.plan.run_id,
            "started_at": round(self.stats.started_at, 3),
            "identities": self.plan.identities,
            "concurrency": self.plan.concurrency,
            "elapsed_s": round(self.elapsed, 3),
            "operations": self.operations,
            "ops_per_s": round(self.throughput, 1),
            "latency_ms": {op: {k: round(v, 3) for k, v in row.items()} for op, row in self.latency().items()},
            "errors": {
                "total": self.stats.error_count,
                "by_kind": dict(self.stats.errors),
                "by_operation": dict(self.stats.errors_by_operation),
                "first_at_s": round(self.stats.error_times[0], 3) if self.stats.error_times else None,
                "last_at_s": round(self.stats.error_times[-1], 3) if self.stats.error_times else None,
            },
            "longest_stall_s": round(self.stats.longest_stall, 3),
            "consistency": {
                "ok": self.consistent,
                "checked": self.checked,
                "mismatches": len(self.mismatches),
                "examples": [_mismatch_dict(m) for m in self.mismatches[:MISMATCHES_SHOWN]],
            },
        }


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def _mismatch_dict(mismatch: Mismatch) -> dict[str, Any]:
    return {
        "identity": mismatch.identity,
        "expected_reconnects": list(mismatch.expected_reconnects),
        "reconnects": mismatch.reconnects,
        "expected_turns": list(mismatch.expected_turns),
        "turns": mismatch.turns,
    }


async def run_load(
    store: SessionStore, plan: LoadPlan, progress: Callable[[LoadProgress], None] | None = None
) -> LoadReport:
    """Run ``plan`` against ``store``, check every participant afterwards, clean up; return the report."""
    if min(store.ttl_policy.first, store.ttl_policy.returning, store.ttl_policy.presence_timeout) < MIN_TTL:
        raise InvalidInputError(f"open the store with ttl_policy=LOAD_TTL_POLICY (TTLs of at least {MIN_TTL:.0f} s)")
    run = _Run(store, plan)
    ticker = asyncio.create_task(_tick(run, progress)) if progress else None
    try:
        # never more tasks than participants: each task holds one, so the idle queue never starves a task
        await asyncio.gather(*(run.worker() for _ in range(min(plan.concurrency, plan.identities))))
    finally:
        if ticker:
            ticker.cancel()
    report = LoadReport(plan, time.perf_counter() - run.stats.started, run.stats)
    if progress:
        progress(LoadProgress(run.stats.done, report.elapsed, run.stats.error_count, plan))
    await _check(run, report)
    if not plan.keep:
        await _bounded(plan.concurrency, range(plan.identities), lambda index: store.delete(plan.identity(index)))
    return report


async def _tick(run: _Run, progress: Callable[[LoadProgress], None]) -> None:
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL)
        stats = run.stats
        progress(LoadProgress(stats.done, time.perf_counter() - stats.started, stats.error_count, run.plan))


class _Run:
    """The shared state of one run: the idle participants, the ledger and the statistics."""

    def __init__(self, store: SessionStore, plan: LoadPlan) -> None:
        self.store = store
        self.plan = plan
        self.stats = _Stats()
        self.ledger: dict[int, _Ledger] = {}
        self.idle: asyncio.Queue[int] = asyncio.Queue()
        for index in range(plan.identities):
            self.idle.put_nowait(index)
        self.deadline = None if plan.duration is None else self.stats.started + plan.duration
        self.turn_serial = 0

    def more(self) -> bool:
        if self.deadline is not None:
            return time.perf_counter() < self.deadline
        return self.stats.begun < (self.plan.operations or 0)

    async def worker(self) -> None:
        while self.more():
            index = await self.idle.get()
            try:
                await self.visit(index, self.ledger.setdefault(index, _Ledger()))
            except LkPersistError:
                pass  # counted by _Stats; the participant simply comes back later
            finally:
                self.idle.put_nowait(index)
            await asyncio.sleep(0)  # a store that never suspends (memory://) must not starve the other tasks

    async def visit(self, index: int, ledger: _Ledger) -> None:
        identity, timed = self.plan.identity(index), self.stats.timed
        try:
            connected = await timed("connect", self.store.connect(identity))
        except LkPersistError:
            ledger.connects_failed += 1
            raise
        ledger.connects += 1
        if connected.returning:
            await timed("recent_turns", self.store.recent_turns(identity, HISTORY_ON_RETURN))
        for number in range(self.plan.turns_per_visit):
            await self.talk(identity, number, ledger)
        await timed("heartbeat", self.store.heartbeat(identity))
        await timed("disconnect", self.store.disconnect(identity))

    async def talk(self, identity: str, number: int, ledger: _Ledger) -> None:
        self.turn_serial += 1
        role = "user" if number % 2 == 0 else "assistant"
        turn = Turn(role, f"turn {self.turn_serial} of a load run", time.time(), f"load-{self.turn_serial}")
        try:
            await self.stats.timed("append_turn", self.store.append_turn(identity, turn))
        except LkPersistError:
            ledger.turns_failed += 1
            raise
        ledger.turns += 1


async def _check(run: _Run, report: LoadReport) -> None:
    """Read every participant back and compare with its ledger (never-visited ones must be absent)."""
    cap = run.store.max_turns

    async def check_one(index: int) -> Any:
        identity, ledger = run.plan.identity(index), run.ledger.get(index, _Ledger())
        session = await run.store.get(identity)
        turns = len(await run.store.recent_turns(identity)) if session else 0
        low, high = ledger.connects - 1, ledger.connects + ledger.connects_failed - 1
        reconnects = None if session is None else session.reconnect_count
        turn_range = (min(ledger.turns, cap), min(ledger.turns + ledger.turns_failed, cap))
        present_ok = session is not None or ledger.connects == 0
        if not present_ok or not (reconnects is None or low <= reconnects <= high) or not (
            turn_range[0] <= turns <= turn_range[1]
        ):
            report.mismatches.append(Mismatch(identity, (max(low, 0), max(high, 0)), reconnects, turn_range, turns))

    await _bounded(run.plan.concurrency, range(run.plan.identities), check_one)
    report.checked = run.plan.identities


async def _bounded(limit: int, items: range, call: Callable[[int], Awaitable[Any]]) -> None:
    """Await ``call(item)`` for every item, ``limit`` at a time (``limit`` tasks pulling from one iterator,
    so a million participants never means a million coroutines at once)."""
    pending = iter(items)

    async def puller() -> None:
        for item in pending:
            await call(item)

    await asyncio.gather(*(puller() for _ in range(min(limit, len(items)))))


__all__ = ["LOAD_TTL_POLICY", "LoadPlan", "LoadProgress", "LoadReport", "Mismatch", "run_load"]
