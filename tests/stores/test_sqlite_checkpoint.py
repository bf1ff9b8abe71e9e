"""The checkpoints of SQLite's inline writes: copied while the loop writes on, the WAL still started over.

The worker checkpoints in rounds while inline writes continue, then pauses them for the last frames
(lkpersist.stores.sqlite.db.Database._checkpoint_and_resume). The pause must wait for a write in flight,
or that write's frames would keep the WAL from starting over; and a checkpoint that falls behind (a
slow disk) pauses the writer after CATCH_UP_COMMITS, or the WAL would grow past a period while it runs.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.sqlite import SQLiteStore
from lkpersist.stores.sqlite.inline import CATCH_UP_COMMITS, CHECKPOINT_EVERY


def _open(path: Path, clock: VirtualClock) -> SQLiteStore:
    store = open_store(f"sqlite:///{path}", clock=clock)
    assert isinstance(store, SQLiteStore)
    return store


async def test_a_pause_waits_for_the_inline_write_in_flight(tmp_path: Path, clock: VirtualClock) -> None:
    store = _open(tmp_path / "s.db", clock)
    try:
        await store.count("all")
        writer = store._db._inline
        pausing = threading.Thread(target=writer.pause)
        waiting: list[bool] = []

        def write(conn: sqlite3.Connection) -> str:
            pausing.start()
            pausing.join(0.2)
            waiting.append(pausing.is_alive() and not writer.paused)  # the pause waits for this write
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO lkpersist_meta VALUES ('probe', 'x')")
            conn.execute("COMMIT")
            return "written"

        assert await store._db.run_short(write) == "written"
        pausing.join(10)
        assert waiting == [True]
        assert writer.paused  # the pause went through once the write had committed
        assert writer.attempt(lambda conn: None, ()) == (False, None)  # and later writes take the worker's way
    finally:
        store._db._inline.paused = False
        await store.close()


async def test_checkpoints_during_inline_writes_start_the_wal_over(tmp_path: Path, clock: VirtualClock) -> None:
    """The checkpoint runs while the loop goes on writing (nothing awaits it): the WAL still stays bounded."""
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await store.count("all")
        wal = Path(f"{path}-wal")
        sizes = []
        for period in range(8):
            for index in range(CHECKPOINT_EVERY):
                await store.arrive(f"caller-{period}-{index}", "a")
                clock.advance(0.01)
            sizes.append(wal.stat().st_size)
        await store.count("all")
        # The file keeps its largest size: one period's frames and those written while the checkpoint
        # caught up (at most CATCH_UP_COMMITS), unless a restart was missed (then two periods' and more).
        assert max(sizes) < 2 * sizes[0], sizes
    finally:
        await store.close()


async def test_only_the_last_round_of_a_checkpoint_pauses_inline_writes(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        for index in range(50):
            await store.arrive(f"caller-{index}", "a")
        writer = store._db._inline
        rounds: list[bool] = []  # per checkpoint statement: were inline writes paused?

        class Watched:
            def __init__(self, conn: sqlite3.Connection) -> None:
                self.conn = conn

            def execute(self, sql: str) -> sqlite3.Cursor:
                rounds.append(writer.paused)
                return self.conn.execute(sql)

        conn = sqlite3.connect(path, isolation_level=None)
        store._db._checkpoint_and_resume(Watched(conn))  # type: ignore[arg-type]
        conn.close()
        assert rounds[0] is False and rounds[-1] is True and rounds.count(True) == 1, rounds
        assert not writer.paused
        assert (await store.arrive("after", "a")).new_visit
        assert writer.attempt(lambda conn: "inline", ()) == (True, "inline")
    finally:
        await store.close()


def _wal_frames(path: Path) -> int:
    """The frames in the WAL now (a passive checkpoint's report; it copies them too)."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


async def test_the_write_after_a_checkpoint_starts_the_wal_over(tmp_path: Path, clock: VirtualClock) -> None:
    """Also with a subscriber polling the events on the worker: its reads must leave no snapshot open."""
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        async with store.events():
            for index in range(200):
                await store.arrive(f"caller-{index}", "a")
            await store._db.run(store._db._checkpoint_and_resume)
            await store.arrive("after", "a")
            assert store._db._inline._conn is not None  # it ran inline
            assert _wal_frames(path) < 20  # that one commit's frames only: the WAL started over
    finally:
        await store.close()


async def test_a_checkpoint_that_falls_behind_pauses_the_inline_writes(tmp_path: Path, clock: VirtualClock) -> None:
    store = _open(tmp_path / "s.db", clock)
    try:
        await store.count("all")
        writer = store._db._inline
        asked: list[int] = []
        writer._checkpoint = lambda: asked.append(writer._commits)  # asked for, never run: a stuck disk
        for index in range(CHECKPOINT_EVERY + CATCH_UP_COMMITS + 10):
            assert (await store.arrive(f"caller-{index}", "a")).new_visit
        assert asked == [CHECKPOINT_EVERY]  # once, not again while it is under way
        assert writer._commits == CHECKPOINT_EVERY + CATCH_UP_COMMITS and writer.paused  # then the worker's way
        assert writer.attempt(lambda conn: "inline", ()) == (False, None)
        writer.resume()
        assert writer.attempt(lambda conn: "inline", ()) == (True, "inline")
    finally:
        await store.close()
