"""SQLite's presence writes on the loop's own thread (lkpersist.stores.sqlite.inline): same durability,
never a wait on the loop, a bounded WAL, and the worker's way whenever the lock is taken."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.sqlite import SQLiteStore
from lkpersist.stores.sqlite.inline import CHECKPOINT_EVERY


def _open(path: Path, clock: VirtualClock, query: str = "") -> SQLiteStore:
    store = open_store(f"sqlite:///{path}{query}", clock=clock)
    assert isinstance(store, SQLiteStore)
    return store


def _inline_pragmas(store: SQLiteStore) -> list[object]:
    conn = store._db._inline._conn
    assert conn is not None, "the arrival did not run inline"
    return [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous", "busy_timeout")]


async def test_inline_writes_keep_the_stores_durability(tmp_path: Path, clock: VirtualClock) -> None:
    for query, synchronous in (("", 1), ("?synchronous=full", 2)):
        store = _open(tmp_path / f"s{synchronous}.db", clock, query)
        try:
            await store.count("all")
            await store.arrive("ann", "a")
            assert _inline_pragmas(store) == ["wal", synchronous, 0]  # never waits on the loop
        finally:
            await store.close()


async def test_a_held_write_lock_sends_the_arrival_to_the_worker(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await store.arrive("bo", "a")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        started = asyncio.get_running_loop().time()
        waiting = asyncio.ensure_future(store.arrive("bo", "b"))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # queued on the worker, waiting for the lock ...
        assert asyncio.get_running_loop().time() - started < 0.35  # ... while the loop went on
        holder.execute("COMMIT")
        holder.close()
        arrival = await asyncio.wait_for(waiting, 10)
        assert arrival.new_visit is False and sorted(c.id for c in arrival.session.connections) == ["a", "b"]
    finally:
        await store.close()


async def test_the_wal_stays_bounded_by_the_checkpoints_it_asks_for(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await store.count("all")
        wal = Path(f"{path}-wal")
        sizes = []
        for period in range(6):
            for index in range(CHECKPOINT_EVERY - (1 if period == 0 else 0)):
                await store.arrive(f"caller-{period}-{index}", "a")
                clock.advance(0.01)
            await store.count("all")  # behind the checkpoint on the worker's queue
            sizes.append(wal.stat().st_size)
        # sizes[0]: one period's commits, before any checkpoint. Without checkpoints the WAL would end at
        # about six times that; with them it is started over each period.
        assert sizes[-1] < 2 * sizes[0], sizes
    finally:
        await store.close()


async def test_another_thread_goes_through_the_worker(tmp_path: Path, clock: VirtualClock) -> None:
    store = _open(tmp_path / "s.db", clock)
    await store.arrive("cy", "main-thread")
    outcome: list[object] = []

    def elsewhere() -> None:
        outcome.append(asyncio.run(store.arrive("cy", "other-thread")).visit)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(30)
    assert outcome == [1]
    assert sorted(c.id for c in (await store.require("cy")).connections) == ["main-thread", "other-thread"]
    await store.close()
